/** ECHO request and response (MS-SMB2 2.2.28, 2.2.29): a message that keeps an idle connection alive, and tells a live server from a dead one, with an empty body. */
import { decodeReservedOnly, encodeReservedOnly } from "./body.ts";

/** MS-SMB2 2.2.28: nothing but a reserved field. */
export type EchoRequest = Record<string, never>;
/** MS-SMB2 2.2.29: nothing but a reserved field. */
export type EchoResponse = Record<string, never>;

/** Encodes the body of a ECHO request. */
export function encodeEchoRequest(_: EchoRequest = {}): Buffer {
  return encodeReservedOnly();
}

/** Decodes a whole ECHO request message. */
export function decodeEchoRequest(message: Buffer): EchoRequest {
  return decodeReservedOnly(message, "ECHO request");
}

/** Encodes the body of a ECHO response. */
export function encodeEchoResponse(_: EchoResponse = {}): Buffer {
  return encodeReservedOnly();
}

/** Decodes a whole ECHO response message. */
export function decodeEchoResponse(message: Buffer): EchoResponse {
  return decodeReservedOnly(message, "ECHO response");
}
