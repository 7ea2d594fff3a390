/**
 * SET_INFO request and response (MS-SMB2 2.2.39, 2.2.40): resizing, deleting and renaming through
 * the information classes of file-info.ts, whose encoders build the buffer.
 */
import { ByteWriter, check, decoding } from "../../wire/bytes.ts";
import { Cap, NONE, ONE_ZERO, bodyReader, bufferAt, endOf, headerOffset, readTrailer } from "./body.ts";
import { checkFileId } from "./create.ts";

/** MS-SMB2 2.2.39. */
export interface SetInfoRequest {
  readonly infoType: number;
  readonly fileInfoClass: number;
  readonly buffer: Buffer;
  readonly additionalInformation: number;
  readonly fileId: Buffer;
  readonly trailer?: Buffer;
}

/** MS-SMB2 2.2.40: nothing but StructureSize. */
export type SetInfoResponse = Record<string, never>;

/** Encodes the body of a SET_INFO request. */
export function encodeSetInfoRequest(req: SetInfoRequest): Buffer {
  check(req.buffer.length <= Cap.CONTEXTS, "SET_INFO request: buffer over its cap");
  return new ByteWriter(32 + req.buffer.length + 1)
    .u16le(33)
    .u8(req.infoType)
    .u8(req.fileInfoClass)
    .u32le(req.buffer.length)
    .u16le(headerOffset(32))
    .u16le(0)
    .u32le(req.additionalInformation)
    .bytes(checkFileId(req.fileId))
    .bytes(req.buffer)
    .bytes(req.trailer ?? (req.buffer.length === 0 ? ONE_ZERO : NONE))
    .toBuffer();
}

/** Decodes a whole SET_INFO request message. */
export function decodeSetInfoRequest(message: Buffer): SetInfoRequest {
  return decoding("SET_INFO request", () => {
    const r = bodyReader(message, "SET_INFO request", 33);
    const infoType = r.u8();
    const fileInfoClass = r.u8();
    const length = r.u32le();
    const offset = r.u16le();
    r.skip(2, "reserved");
    const additionalInformation = r.u32le();
    const fileId = Buffer.from(r.bytes(16, "FileId"));
    const buffer = bufferAt(r, offset, length, Cap.CONTEXTS, "buffer");
    const end = Math.max(headerOffset(32), endOf(offset, length));
    const trailer = readTrailer(r, end, length === 0 ? ONE_ZERO : NONE);
    const req = { infoType, fileInfoClass, buffer, additionalInformation, fileId };
    return trailer ? { ...req, trailer } : req;
  });
}

/** Encodes the body of a SET_INFO response. */
export function encodeSetInfoResponse(_: SetInfoResponse = {}): Buffer {
  return new ByteWriter(2).u16le(2).toBuffer();
}

/** Decodes a whole SET_INFO response message. */
export function decodeSetInfoResponse(message: Buffer): SetInfoResponse {
  return decoding("SET_INFO response", () => {
    bodyReader(message, "SET_INFO response", 2);
    return {};
  });
}
