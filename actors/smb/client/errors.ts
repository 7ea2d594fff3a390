/**
 * The failure kinds of the SMB client (STYLE.md item 6). A refused request is the codec's
 * SmbStatusError and a bad signature or decryption the crypto's SmbIntegrityError; these are the
 * transport's and the session's own.
 */
import { errorClass } from "../../../base/errors.ts";

/** The server could not be reached: refused, no route, or the connect took past its deadline. */
export class SmbUnreachableError extends errorClass("UNREACHABLE") {}

/** The connection dropped (or was closed) while a request was in flight. */
export class SmbConnectionLostError extends errorClass("CONNECTION_LOST") {}

/** A request, or the whole connect, did not finish within its deadline. */
export class SmbTimeoutError extends errorClass("TIMEOUT") {}

/** The server granted no credits to send a request with, within its deadline (MS-SMB2 3.2.4.1.2). */
export class SmbNoCreditsError extends errorClass("SMB_NO_CREDITS") {}

/** Client and server share no dialect, signing or cipher the options allow. */
export class SmbNegotiationError extends errorClass("SMB_NEGOTIATION_FAILED") {}

/** The server refused the account (the message names it and the status, never the password). */
export class SmbAuthError extends errorClass("AUTH_FAILED") {}

/** Options or arguments the client refuses before sending anything (a path with `..`, a NUL). */
export class SmbConfigError extends errorClass("CONFIG_INVALID") {}

/** A server's answer over a cap of the client's (a directory listing that never ends). */
export class SmbOutputTooLargeError extends errorClass("OUTPUT_TOO_LARGE") {}
