/**
 * CANCEL request (MS-SMB2 2.2.30): asks the server to stop a pending request, named by the
 * MessageId (or, once the interim response came, the AsyncId) of the header. It has no response.
 */
import { decodeReservedOnly, encodeReservedOnly } from "./body.ts";

/** MS-SMB2 2.2.30: nothing but a reserved field. */
export type CancelRequest = Record<string, never>;

/** Encodes the body of a CANCEL request. */
export function encodeCancelRequest(_: CancelRequest = {}): Buffer {
  return encodeReservedOnly();
}

/** Decodes a whole CANCEL request message. */
export function decodeCancelRequest(message: Buffer): CancelRequest {
  return decodeReservedOnly(message, "CANCEL request");
}
