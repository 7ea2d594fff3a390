/**
 * NEGOTIATE request and response (MS-SMB2 2.2.3, 2.2.4): the dialect, security mode and
 * capabilities both ends agree on, and on 3.1.1 the negotiate contexts (negotiate-context.ts).
 */
import { ByteWriter, check, decoding } from "../../wire/bytes.ts";
import { Cap, bodyReader, bufferAt, headerOffset } from "./body.ts";
import { readNegotiateContexts, writeNegotiateContexts, type NegotiateContext } from "./negotiate-context.ts";

export {
  Cipher,
  HashAlgorithm,
  NegotiateContextType,
  SigningAlgorithm,
  type NegotiateContext,
} from "./negotiate-context.ts";

/** Dialect revisions (MS-SMB2 2.2.3). */
export const Dialect = {
  SMB_2_0_2: 0x0202,
  SMB_2_1: 0x0210,
  SMB_3_0: 0x0300,
  SMB_3_0_2: 0x0302,
  SMB_3_1_1: 0x0311,
  /** Only in a response to a multi-protocol SMB1 negotiate (MS-SMB2 2.2.4). */
  WILDCARD: 0x02ff,
} as const;

/** SecurityMode (MS-SMB2 2.2.3; the same bits in 2.2.4 and, on one byte, in 2.2.5). */
export const SecurityMode = { SIGNING_ENABLED: 0x0001, SIGNING_REQUIRED: 0x0002 } as const;

/** Capabilities (MS-SMB2 2.2.3, 2.2.4). */
export const Capability = {
  DFS: 0x00000001,
  LEASING: 0x00000002,
  LARGE_MTU: 0x00000004,
  MULTI_CHANNEL: 0x00000008,
  PERSISTENT_HANDLES: 0x00000010,
  DIRECTORY_LEASING: 0x00000020,
  ENCRYPTION: 0x00000040,
  NOTIFICATIONS: 0x00000080,
} as const;

const REQUEST_SIZE = 36;
const RESPONSE_SIZE = 65;

/** MS-SMB2 2.2.3. */
export interface NegotiateRequest {
  readonly securityMode: number;
  readonly capabilities: number;
  /** 16 bytes. */
  readonly clientGuid: Buffer;
  readonly dialects: readonly number[];
  /** Sent only when `dialects` holds 3.1.1; otherwise the field is ClientStartTime, sent as 0. */
  readonly negotiateContexts: readonly NegotiateContext[];
}

/** MS-SMB2 2.2.4. */
export interface NegotiateResponse {
  readonly securityMode: number;
  readonly dialectRevision: number;
  /** 16 bytes. */
  readonly serverGuid: Buffer;
  readonly capabilities: number;
  readonly maxTransactSize: number;
  readonly maxReadSize: number;
  readonly maxWriteSize: number;
  /** FILETIME. */
  readonly systemTime: bigint;
  readonly serverStartTime: bigint;
  /** The server's first GSS token (SPNEGO negTokenInit), possibly empty. */
  readonly securityBuffer: Buffer;
  /** Present only on 3.1.1. */
  readonly negotiateContexts: readonly NegotiateContext[];
}

function guid(b: Buffer, field: string): Buffer {
  check(b.length === 16, `${field} of ${b.length} bytes, not 16`);
  return b;
}

/**
 * Encodes the body of a NEGOTIATE request; the contexts' offset counts from the header before it.
 *
 * @example
 * const body = encodeNegotiateRequest({ securityMode: SecurityMode.SIGNING_ENABLED, capabilities: 0,
 *   clientGuid: randomBytes(16), dialects: [Dialect.SMB_3_1_1],
 *   negotiateContexts: [{ kind: "preauth", hashAlgorithms: [HashAlgorithm.SHA512], salt: randomBytes(32) }] });
 * const message = Buffer.concat([encodeHeader(header), body]);
 * // and on the other side, from the whole message:
 * const request = decodeNegotiateRequest(message);
 */
export function encodeNegotiateRequest(req: NegotiateRequest): Buffer {
  check(req.dialects.length > 0 && req.dialects.length <= Cap.DIALECTS, "NEGOTIATE: 1 to 64 dialects");
  const has311 = req.dialects.includes(Dialect.SMB_3_1_1);
  check(has311 || req.negotiateContexts.length === 0, "NEGOTIATE: contexts need the 3.1.1 dialect");
  const w = new ByteWriter(128)
    .u16le(REQUEST_SIZE)
    .u16le(req.dialects.length)
    .u16le(req.securityMode)
    .u16le(0)
    .u32le(req.capabilities)
    .bytes(guid(req.clientGuid, "ClientGuid"))
    .u32le(0) // NegotiateContextOffset, patched below
    .u16le(req.negotiateContexts.length)
    .u16le(0);
  for (const d of req.dialects) w.u16le(d);
  if (req.negotiateContexts.length > 0) {
    w.align(8);
    w.patchU32le(28, headerOffset(w.length));
    writeNegotiateContexts(w, req.negotiateContexts);
  }
  return w.toBuffer();
}

/** Decodes a whole NEGOTIATE request message (header and body). */
export function decodeNegotiateRequest(message: Buffer): NegotiateRequest {
  return decoding("NEGOTIATE request", () => {
    const r = bodyReader(message, "NEGOTIATE request", REQUEST_SIZE);
    const dialectCount = r.u16le();
    check(dialectCount > 0 && dialectCount <= Cap.DIALECTS, `NEGOTIATE request: ${dialectCount} dialects`);
    const securityMode = r.u16le();
    r.skip(2, "reserved");
    const capabilities = r.u32le();
    const clientGuid = Buffer.from(r.bytes(16, "ClientGuid"));
    const contextOffset = r.u32le();
    const contextCount = r.u16le();
    r.skip(2, "reserved2");
    r.need(dialectCount * 2, "dialects");
    const dialects: number[] = [];
    for (let i = 0; i < dialectCount; i++) dialects.push(r.u16le());
    const negotiateContexts = dialects.includes(Dialect.SMB_3_1_1)
      ? readNegotiateContexts(r, contextOffset, contextCount)
      : [];
    return { securityMode, capabilities, clientGuid, dialects, negotiateContexts };
  });
}

/** Encodes the body of a NEGOTIATE response. */
export function encodeNegotiateResponse(res: NegotiateResponse): Buffer {
  const is311 = res.dialectRevision === Dialect.SMB_3_1_1;
  check(is311 || res.negotiateContexts.length === 0, "NEGOTIATE response: contexts need the 3.1.1 dialect");
  check(res.securityBuffer.length <= Cap.SECURITY_BUFFER, "NEGOTIATE response: security buffer over its cap");
  const w = new ByteWriter(256)
    .u16le(RESPONSE_SIZE)
    .u16le(res.securityMode)
    .u16le(res.dialectRevision)
    .u16le(res.negotiateContexts.length)
    .bytes(guid(res.serverGuid, "ServerGuid"))
    .u32le(res.capabilities)
    .u32le(res.maxTransactSize)
    .u32le(res.maxReadSize)
    .u32le(res.maxWriteSize)
    .u64le(res.systemTime)
    .u64le(res.serverStartTime)
    .u16le(headerOffset(RESPONSE_SIZE - 1))
    .u16le(res.securityBuffer.length)
    .u32le(0) // NegotiateContextOffset, patched below
    .bytes(res.securityBuffer);
  if (res.negotiateContexts.length > 0) {
    w.align(8);
    w.patchU32le(60, headerOffset(w.length));
    writeNegotiateContexts(w, res.negotiateContexts);
  }
  return w.toBuffer();
}

/** Decodes a whole NEGOTIATE response message (header and body). */
export function decodeNegotiateResponse(message: Buffer): NegotiateResponse {
  return decoding("NEGOTIATE response", () => {
    const r = bodyReader(message, "NEGOTIATE response", RESPONSE_SIZE);
    const securityMode = r.u16le();
    const dialectRevision = r.u16le();
    const contextCount = r.u16le();
    const serverGuid = Buffer.from(r.bytes(16, "ServerGuid"));
    const capabilities = r.u32le();
    const maxTransactSize = r.u32le();
    const maxReadSize = r.u32le();
    const maxWriteSize = r.u32le();
    const systemTime = r.u64le();
    const serverStartTime = r.u64le();
    const bufferOffset = r.u16le();
    const bufferLength = r.u16le();
    const contextOffset = r.u32le();
    const securityBuffer = bufferAt(r, bufferOffset, bufferLength, Cap.SECURITY_BUFFER, "security buffer");
    const negotiateContexts =
      dialectRevision === Dialect.SMB_3_1_1 ? readNegotiateContexts(r, contextOffset, contextCount) : [];
    return {
      securityMode,
      dialectRevision,
      serverGuid,
      capabilities,
      maxTransactSize,
      maxReadSize,
      maxWriteSize,
      systemTime,
      serverStartTime,
      securityBuffer,
      negotiateContexts,
    };
  });
}
