/**
 * SESSION_SETUP request and response (MS-SMB2 2.2.5, 2.2.6). The security buffer is a GSS token
 * (SPNEGO wrapping NTLMSSP) carried here as opaque bytes: its codec lives elsewhere.
 */
import { ByteWriter, check, decoding } from "../../wire/bytes.ts";
import { Cap, bodyReader, bufferAt, headerOffset } from "./body.ts";

/** Flags of the request (MS-SMB2 2.2.5). */
export const SessionSetupFlag = { BINDING: 0x01 } as const;

/** SessionFlags of the response (MS-SMB2 2.2.6). */
export const SessionFlag = { IS_GUEST: 0x0001, IS_NULL: 0x0002, ENCRYPT_DATA: 0x0004 } as const;

const REQUEST_SIZE = 25;
const RESPONSE_SIZE = 9;

/** MS-SMB2 2.2.5. */
export interface SessionSetupRequest {
  readonly flags: number;
  /** One byte: SecurityMode's SIGNING_ENABLED and SIGNING_REQUIRED bits. */
  readonly securityMode: number;
  /** Only DFS is defined here; the rest is reserved. */
  readonly capabilities: number;
  readonly channel: number;
  readonly previousSessionId: bigint;
  readonly securityBuffer: Buffer;
}

/** MS-SMB2 2.2.6. */
export interface SessionSetupResponse {
  readonly sessionFlags: number;
  readonly securityBuffer: Buffer;
}

/** Encodes the body of a SESSION_SETUP request. */
export function encodeSessionSetupRequest(req: SessionSetupRequest): Buffer {
  check(
    req.securityBuffer.length <= Cap.SECURITY_BUFFER,
    "SESSION_SETUP request: security buffer over its cap",
  );
  return new ByteWriter(REQUEST_SIZE + req.securityBuffer.length)
    .u16le(REQUEST_SIZE)
    .u8(req.flags)
    .u8(req.securityMode)
    .u32le(req.capabilities)
    .u32le(req.channel)
    .u16le(headerOffset(REQUEST_SIZE - 1))
    .u16le(req.securityBuffer.length)
    .u64le(req.previousSessionId)
    .bytes(req.securityBuffer)
    .toBuffer();
}

/** Decodes a whole SESSION_SETUP request message (header and body). */
export function decodeSessionSetupRequest(message: Buffer): SessionSetupRequest {
  return decoding("SESSION_SETUP request", () => {
    const r = bodyReader(message, "SESSION_SETUP request", REQUEST_SIZE);
    const flags = r.u8();
    const securityMode = r.u8();
    const capabilities = r.u32le();
    const channel = r.u32le();
    const offset = r.u16le();
    const length = r.u16le();
    const previousSessionId = r.u64le();
    const securityBuffer = bufferAt(r, offset, length, Cap.SECURITY_BUFFER, "security buffer");
    return { flags, securityMode, capabilities, channel, previousSessionId, securityBuffer };
  });
}

/** Encodes the body of a SESSION_SETUP response. */
export function encodeSessionSetupResponse(res: SessionSetupResponse): Buffer {
  check(
    res.securityBuffer.length <= Cap.SECURITY_BUFFER,
    "SESSION_SETUP response: security buffer over its cap",
  );
  return new ByteWriter(RESPONSE_SIZE + res.securityBuffer.length)
    .u16le(RESPONSE_SIZE)
    .u16le(res.sessionFlags)
    .u16le(headerOffset(RESPONSE_SIZE - 1))
    .u16le(res.securityBuffer.length)
    .bytes(res.securityBuffer)
    .toBuffer();
}

/** Decodes a whole SESSION_SETUP response message (header and body). */
export function decodeSessionSetupResponse(message: Buffer): SessionSetupResponse {
  return decoding("SESSION_SETUP response", () => {
    const r = bodyReader(message, "SESSION_SETUP response", RESPONSE_SIZE);
    const sessionFlags = r.u16le();
    const offset = r.u16le();
    const length = r.u16le();
    return {
      sessionFlags,
      securityBuffer: bufferAt(r, offset, length, Cap.SECURITY_BUFFER, "security buffer"),
    };
  });
}
