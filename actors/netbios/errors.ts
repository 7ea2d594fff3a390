/**
 * The failures of NetBIOS name resolution and of the session service, one class each, with codes
 * from base/error-codes.ts. Messages name the name and where it was asked.
 */
import { errorClass } from "../../base/errors.ts";

/** No name server or host answered for the name, or one said it does not know it. */
export class NetbiosNameNotFoundError extends errorClass("NETBIOS_NAME_NOT_FOUND") {}

/** A query or a session could not be sent or opened: refused, no route, a name DNS does not know. */
export class NetbiosUnreachableError extends errorClass("UNREACHABLE") {}

/** Options that cannot be used: no address to ask, a name that is not a NetBIOS name. */
export class NetbiosConfigError extends errorClass("CONFIG_INVALID") {}

/** The server closed the connection before it answered the session request. */
export class NetbiosConnectionLostError extends errorClass("CONNECTION_LOST") {}

/**
 * The server answered the session request with a NEGATIVE SESSION RESPONSE (RFC 1002 4.3.4). It is
 * UNREACHABLE-coded (the server refused us), and carries the response's code so a caller can act
 * on it: on 0x82 (called name not present) after `*SMBSERVER`, ask again with the server's real
 * name (from a node status) rather than retry the same request.
 */
export class NetbiosSessionRefusedError extends errorClass("UNREACHABLE") {
  /** The response's ERROR_CODE, one of NegativeSessionCode in practice. */
  readonly sessionErrorCode: number;

  constructor(sessionErrorCode: number, message: string, options?: ErrorOptions) {
    super(message, options);
    this.sessionErrorCode = sessionErrorCode;
  }
}
