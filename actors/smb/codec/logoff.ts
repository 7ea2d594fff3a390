/** LOGOFF request and response (MS-SMB2 2.2.7, 2.2.8): a message that ends the session, with an empty body. */
import { decodeReservedOnly, encodeReservedOnly } from "./body.ts";

/** MS-SMB2 2.2.7: nothing but a reserved field. */
export type LogoffRequest = Record<string, never>;
/** MS-SMB2 2.2.8: nothing but a reserved field. */
export type LogoffResponse = Record<string, never>;

/** Encodes the body of a LOGOFF request. */
export function encodeLogoffRequest(_: LogoffRequest = {}): Buffer {
  return encodeReservedOnly();
}

/** Decodes a whole LOGOFF request message. */
export function decodeLogoffRequest(message: Buffer): LogoffRequest {
  return decodeReservedOnly(message, "LOGOFF request");
}

/** Encodes the body of a LOGOFF response. */
export function encodeLogoffResponse(_: LogoffResponse = {}): Buffer {
  return encodeReservedOnly();
}

/** Decodes a whole LOGOFF response message. */
export function decodeLogoffResponse(message: Buffer): LogoffResponse {
  return decodeReservedOnly(message, "LOGOFF response");
}
