/**
 * IOCTL request and response (MS-SMB2 2.2.31, 2.2.32), and the two FSCTLs a client sends: named
 * pipe transactions (FSCTL_PIPE_TRANSCEIVE, DCE/RPC over IPC$) and the 3.0/3.0.2 negotiation check
 * (FSCTL_VALIDATE_NEGOTIATE_INFO, 2.2.31.4 and 2.2.32.6).
 */
import { ByteReader, ByteWriter, check, decoding } from "../../wire/bytes.ts";
import { Cap, NONE, ONE_ZERO, bodyReader, bufferAt, endOf, headerOffset, readTrailer } from "./body.ts";
import { checkFileId } from "./create.ts";

/** CtlCode values (MS-SMB2 2.2.31, MS-FSCC 2.3). */
export const CtlCode = {
  FSCTL_DFS_GET_REFERRALS: 0x00060194,
  FSCTL_PIPE_PEEK: 0x0011400c,
  FSCTL_PIPE_WAIT: 0x00110018,
  FSCTL_PIPE_TRANSCEIVE: 0x0011c017,
  FSCTL_VALIDATE_NEGOTIATE_INFO: 0x00140204,
  FSCTL_QUERY_NETWORK_INTERFACE_INFO: 0x001401fc,
} as const;

/** Flags (MS-SMB2 2.2.31): set for an FSCTL, clear for an IOCTL. */
export const IoctlFlag = { IS_IOCTL: 0x00000000, IS_FSCTL: 0x00000001 } as const;

/** The FileId of requests not bound to an open (VALIDATE_NEGOTIATE_INFO, DFS referrals). */
export const NO_FILE_ID: Buffer = Buffer.alloc(16, 0xff);

/** MS-SMB2 2.2.31. */
export interface IoctlRequest {
  readonly ctlCode: number;
  readonly fileId: Buffer;
  readonly input: Buffer;
  readonly maxInputResponse: number;
  /** Output the client sends (always empty for the FSCTLs here). */
  readonly output: Buffer;
  readonly maxOutputResponse: number;
  readonly flags: number;
  readonly trailer?: Buffer;
}

/** MS-SMB2 2.2.32. */
export interface IoctlResponse {
  readonly ctlCode: number;
  readonly fileId: Buffer;
  readonly input: Buffer;
  readonly output: Buffer;
  readonly flags: number;
  readonly trailer?: Buffer;
}

/** Writes input then output (8-byte aligned after input) from body position `fixed`. */
function writeBuffers(
  w: ByteWriter,
  fixed: number,
  input: Buffer,
  output: Buffer,
  offsetsAt: [number, number],
): void {
  check(input.length <= Cap.OUTPUT && output.length <= Cap.OUTPUT, "IOCTL: a buffer over its cap");
  w.patchU32le(offsetsAt[0], headerOffset(fixed)).bytes(input);
  if (output.length > 0) {
    if (input.length > 0) w.align(8);
    w.patchU32le(offsetsAt[1], headerOffset(w.length));
  } else w.patchU32le(offsetsAt[1], headerOffset(fixed));
  w.bytes(output);
}

/** Encodes the body of an IOCTL request. */
export function encodeIoctlRequest(req: IoctlRequest): Buffer {
  const w = new ByteWriter(56 + req.input.length + req.output.length + 8)
    .u16le(57)
    .u16le(0)
    .u32le(req.ctlCode)
    .bytes(checkFileId(req.fileId))
    .u32le(0) // InputOffset, patched
    .u32le(req.input.length)
    .u32le(req.maxInputResponse)
    .u32le(0) // OutputOffset, patched
    .u32le(req.output.length)
    .u32le(req.maxOutputResponse)
    .u32le(req.flags)
    .u32le(0);
  const empty = req.input.length === 0 && req.output.length === 0;
  // With no buffer at all, both offsets stay 0, as Samba's client sends them.
  if (!empty) writeBuffers(w, 56, req.input, req.output, [24, 36]);
  return w.bytes(req.trailer ?? (empty ? ONE_ZERO : NONE)).toBuffer();
}

/** Decodes a whole IOCTL request message. */
export function decodeIoctlRequest(message: Buffer): IoctlRequest {
  return decoding("IOCTL request", () => {
    const r = bodyReader(message, "IOCTL request", 57);
    r.skip(2, "reserved");
    const ctlCode = r.u32le();
    const fileId = Buffer.from(r.bytes(16, "FileId"));
    const inputOffset = r.u32le();
    const inputCount = r.u32le();
    const maxInputResponse = r.u32le();
    const outputOffset = r.u32le();
    const outputCount = r.u32le();
    const maxOutputResponse = r.u32le();
    const flags = r.u32le();
    r.skip(4, "reserved2");
    const input = bufferAt(r, inputOffset, inputCount, Cap.OUTPUT, "input");
    const output = bufferAt(r, outputOffset, outputCount, Cap.OUTPUT, "output");
    const end = Math.max(headerOffset(56), endOf(inputOffset, inputCount), endOf(outputOffset, outputCount));
    const trailer = readTrailer(r, end, inputCount === 0 && outputCount === 0 ? ONE_ZERO : NONE);
    const req = { ctlCode, fileId, input, maxInputResponse, output, maxOutputResponse, flags };
    return trailer ? { ...req, trailer } : req;
  });
}

/** Encodes the body of an IOCTL response. */
export function encodeIoctlResponse(res: IoctlResponse): Buffer {
  const w = new ByteWriter(48 + res.input.length + res.output.length + 8)
    .u16le(49)
    .u16le(0)
    .u32le(res.ctlCode)
    .bytes(checkFileId(res.fileId))
    .u32le(0)
    .u32le(res.input.length)
    .u32le(0)
    .u32le(res.output.length)
    .u32le(res.flags)
    .u32le(0);
  writeBuffers(w, 48, res.input, res.output, [24, 32]);
  const empty = res.input.length === 0 && res.output.length === 0;
  return w.bytes(res.trailer ?? (empty ? ONE_ZERO : NONE)).toBuffer();
}

/** Decodes a whole IOCTL response message. */
export function decodeIoctlResponse(message: Buffer): IoctlResponse {
  return decoding("IOCTL response", () => {
    const r = bodyReader(message, "IOCTL response", 49);
    r.skip(2, "reserved");
    const ctlCode = r.u32le();
    const fileId = Buffer.from(r.bytes(16, "FileId"));
    const inputOffset = r.u32le();
    const inputCount = r.u32le();
    const outputOffset = r.u32le();
    const outputCount = r.u32le();
    const flags = r.u32le();
    r.skip(4, "reserved2");
    const input = bufferAt(r, inputOffset, inputCount, Cap.OUTPUT, "input");
    const output = bufferAt(r, outputOffset, outputCount, Cap.OUTPUT, "output");
    const end = Math.max(headerOffset(48), endOf(inputOffset, inputCount), endOf(outputOffset, outputCount));
    const trailer = readTrailer(r, end, inputCount === 0 && outputCount === 0 ? ONE_ZERO : NONE);
    const res = { ctlCode, fileId, input, output, flags };
    return trailer ? { ...res, trailer } : res;
  });
}

/** VALIDATE_NEGOTIATE_INFO request (MS-SMB2 2.2.31.4): what the client sent in NEGOTIATE. */
export interface ValidateNegotiateInfoRequest {
  readonly capabilities: number;
  readonly guid: Buffer;
  readonly securityMode: number;
  readonly dialects: readonly number[];
}

/** VALIDATE_NEGOTIATE_INFO response (MS-SMB2 2.2.32.6): what the server answered. */
export interface ValidateNegotiateInfoResponse {
  readonly capabilities: number;
  readonly guid: Buffer;
  readonly securityMode: number;
  readonly dialect: number;
}

/** Encodes the IOCTL input of FSCTL_VALIDATE_NEGOTIATE_INFO. */
export function encodeValidateNegotiateInfoRequest(v: ValidateNegotiateInfoRequest): Buffer {
  check(v.guid.length === 16, "VALIDATE_NEGOTIATE_INFO: a GUID of 16 bytes");
  check(v.dialects.length <= Cap.DIALECTS, "VALIDATE_NEGOTIATE_INFO: too many dialects");
  const w = new ByteWriter(24 + 2 * v.dialects.length)
    .u32le(v.capabilities)
    .bytes(v.guid)
    .u16le(v.securityMode)
    .u16le(v.dialects.length);
  for (const d of v.dialects) w.u16le(d);
  return w.toBuffer();
}

/** Decodes the IOCTL input of FSCTL_VALIDATE_NEGOTIATE_INFO (the input bytes alone). */
export function decodeValidateNegotiateInfoRequest(input: Buffer): ValidateNegotiateInfoRequest {
  return decoding("VALIDATE_NEGOTIATE_INFO request", () => {
    const r = new ByteReader(input, "VALIDATE_NEGOTIATE_INFO request");
    const capabilities = r.u32le();
    const guid = Buffer.from(r.bytes(16, "Guid"));
    const securityMode = r.u16le();
    const count = r.u16le();
    check(count <= Cap.DIALECTS, `VALIDATE_NEGOTIATE_INFO request: ${count} dialects`);
    r.need(count * 2, "dialects");
    const dialects: number[] = [];
    for (let i = 0; i < count; i++) dialects.push(r.u16le());
    check(r.remaining === 0, "VALIDATE_NEGOTIATE_INFO request: bytes after the dialects");
    return { capabilities, guid, securityMode, dialects };
  });
}

/** Encodes the IOCTL output of FSCTL_VALIDATE_NEGOTIATE_INFO. */
export function encodeValidateNegotiateInfoResponse(v: ValidateNegotiateInfoResponse): Buffer {
  check(v.guid.length === 16, "VALIDATE_NEGOTIATE_INFO: a GUID of 16 bytes");
  return new ByteWriter(24)
    .u32le(v.capabilities)
    .bytes(v.guid)
    .u16le(v.securityMode)
    .u16le(v.dialect)
    .toBuffer();
}

/** Decodes the IOCTL output of FSCTL_VALIDATE_NEGOTIATE_INFO (the output bytes alone). */
export function decodeValidateNegotiateInfoResponse(output: Buffer): ValidateNegotiateInfoResponse {
  return decoding("VALIDATE_NEGOTIATE_INFO response", () => {
    const r = new ByteReader(output, "VALIDATE_NEGOTIATE_INFO response");
    check(r.remaining === 24, `VALIDATE_NEGOTIATE_INFO response: ${r.remaining} bytes, not 24`);
    const capabilities = r.u32le();
    const guid = Buffer.from(r.bytes(16, "Guid"));
    return { capabilities, guid, securityMode: r.u16le(), dialect: r.u16le() };
  });
}
