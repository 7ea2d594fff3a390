/**
 * The failures of SMB's authentication, one class per kind (STYLE.md item 6). A malformed token is
 * actors/wire's MalformedPacketError. None of them ever carries the password.
 */
import { errorClass } from "../../../base/errors.ts";

/** The account of an SMB target is not `DOMAIN\user`, `user@domain` or `user`. */
export class SmbAccountError extends errorClass("CONFIG_INVALID") {}

/** The server turned the authentication down (SPNEGO negState reject). */
export class SmbAuthRejectedError extends errorClass("AUTH_FAILED") {}

/** The server offers no NTLMSSP, or NTLM without the security this client requires. */
export class SmbAuthNegotiationError extends errorClass("SMB_NEGOTIATION_FAILED") {}

/** The server's SPNEGO mechListMIC does not verify: its answer was tampered with, or its keys differ. */
export class SmbAuthIntegrityError extends errorClass("SMB_INTEGRITY_FAILED") {}
