/**
 * READ and WRITE requests and responses (MS-SMB2 2.2.19 to 2.2.22), without RDMA: Channel is
 * SMB2_CHANNEL_NONE and the channel info buffers are empty, as on TCP.
 */
import { ByteWriter, check, decoding } from "../../wire/bytes.ts";
import { Cap, NONE, ONE_ZERO, bodyReader, bufferAt, endOf, headerOffset, readTrailer } from "./body.ts";
import { checkFileId } from "./create.ts";

/** Channel (MS-SMB2 2.2.19): only NONE is used over TCP. */
export const Channel = { NONE: 0, RDMA_V1: 1, RDMA_V1_INVALIDATE: 2, RDMA_TRANSFORM: 3 } as const;

/** Flags of a READ request (MS-SMB2 2.2.19). */
export const ReadFlag = { UNBUFFERED: 0x01, REQUEST_COMPRESSED: 0x02 } as const;

/** Flags of a WRITE request (MS-SMB2 2.2.21). */
export const WriteFlag = { WRITE_THROUGH: 0x00000001, WRITE_UNBUFFERED: 0x00000002 } as const;

/** Where the data of a READ response starts (header 64 + fixed body 16). */
export const READ_DATA_OFFSET = 0x50;
/** Where the data of a WRITE request starts (header 64 + fixed body 48). */
export const WRITE_DATA_OFFSET = 0x70;

/** MS-SMB2 2.2.19. */
export interface ReadRequest {
  /** Where the client wants the data in the response, 0 for the server's choice. */
  readonly padding: number;
  readonly flags: number;
  readonly length: number;
  readonly offset: bigint;
  readonly fileId: Buffer;
  readonly minimumCount: number;
  readonly channel: number;
  readonly remainingBytes: number;
  readonly trailer?: Buffer;
}

/** MS-SMB2 2.2.20. */
export interface ReadResponse {
  readonly data: Buffer;
  readonly dataRemaining: number;
  readonly flags: number;
  readonly trailer?: Buffer;
}

/** MS-SMB2 2.2.21. */
export interface WriteRequest {
  readonly offset: bigint;
  readonly fileId: Buffer;
  readonly channel: number;
  readonly remainingBytes: number;
  readonly flags: number;
  readonly data: Buffer;
  readonly trailer?: Buffer;
}

/** MS-SMB2 2.2.22. */
export interface WriteResponse {
  readonly count: number;
  readonly remaining: number;
}

/** Encodes the body of a READ request. */
export function encodeReadRequest(req: ReadRequest): Buffer {
  return new ByteWriter(49)
    .u16le(49)
    .u8(req.padding)
    .u8(req.flags)
    .u32le(req.length)
    .u64le(req.offset)
    .bytes(checkFileId(req.fileId))
    .u32le(req.minimumCount)
    .u32le(req.channel)
    .u32le(req.remainingBytes)
    .u16le(0) // ReadChannelInfoOffset: no RDMA
    .u16le(0)
    .bytes(req.trailer ?? ONE_ZERO)
    .toBuffer();
}

/** Decodes a whole READ request message. */
export function decodeReadRequest(message: Buffer): ReadRequest {
  return decoding("READ request", () => {
    const r = bodyReader(message, "READ request", 49);
    const padding = r.u8();
    const flags = r.u8();
    const length = r.u32le();
    const offset = r.u64le();
    const fileId = Buffer.from(r.bytes(16, "FileId"));
    const minimumCount = r.u32le();
    const channel = r.u32le();
    const remainingBytes = r.u32le();
    r.skip(2, "ReadChannelInfoOffset");
    check(r.u16le() === 0, "READ request: channel info (RDMA) is not supported");
    const trailer = readTrailer(r, headerOffset(48), ONE_ZERO);
    const req = { padding, flags, length, offset, fileId, minimumCount, channel, remainingBytes };
    return trailer ? { ...req, trailer } : req;
  });
}

/** Encodes the body of a READ response, its data at {@link READ_DATA_OFFSET}. */
export function encodeReadResponse(res: ReadResponse): Buffer {
  check(res.data.length <= Cap.DATA, "READ response: data over its cap");
  return new ByteWriter(16 + res.data.length)
    .u16le(17)
    .u8(READ_DATA_OFFSET)
    .u8(0)
    .u32le(res.data.length)
    .u32le(res.dataRemaining)
    .u32le(res.flags)
    .bytes(res.data)
    .bytes(res.trailer ?? (res.data.length === 0 ? ONE_ZERO : NONE))
    .toBuffer();
}

/** Decodes a whole READ response message. */
export function decodeReadResponse(message: Buffer): ReadResponse {
  return decoding("READ response", () => {
    const r = bodyReader(message, "READ response", 17);
    const offset = r.u8();
    r.skip(1, "reserved");
    const length = r.u32le();
    const dataRemaining = r.u32le();
    const flags = r.u32le();
    const data = bufferAt(r, offset, length, Cap.DATA, "data");
    const trailer = readTrailer(
      r,
      Math.max(headerOffset(16), endOf(offset, length)),
      length === 0 ? ONE_ZERO : NONE,
    );
    return trailer ? { data, dataRemaining, flags, trailer } : { data, dataRemaining, flags };
  });
}

/**
 * The 48 fixed bytes of a WRITE request's body for `dataLength` bytes of data, for a sender that
 * appends the data itself rather than copy it into the body (an upload's MiB-sized WRITEs):
 * `encodeWriteRequest(req)` is this, then `req.data`, then the trailer (none when there is data).
 */
export function encodeWriteRequestHead(
  req: Omit<WriteRequest, "data" | "trailer">,
  dataLength: number,
): Buffer {
  check(dataLength <= Cap.DATA, "WRITE request: data over its cap");
  return new ByteWriter(48)
    .u16le(49)
    .u16le(WRITE_DATA_OFFSET)
    .u32le(dataLength)
    .u64le(req.offset)
    .bytes(checkFileId(req.fileId))
    .u32le(req.channel)
    .u32le(req.remainingBytes)
    .u16le(0) // WriteChannelInfoOffset: no RDMA
    .u16le(0)
    .u32le(req.flags)
    .toBuffer();
}

/** Encodes the body of a WRITE request, its data at {@link WRITE_DATA_OFFSET}. */
export function encodeWriteRequest(req: WriteRequest): Buffer {
  return new ByteWriter(48 + req.data.length)
    .bytes(encodeWriteRequestHead(req, req.data.length))
    .bytes(req.data)
    .bytes(req.trailer ?? (req.data.length === 0 ? ONE_ZERO : NONE))
    .toBuffer();
}

/** Decodes a whole WRITE request message. */
export function decodeWriteRequest(message: Buffer): WriteRequest {
  return decoding("WRITE request", () => {
    const r = bodyReader(message, "WRITE request", 49);
    const dataOffset = r.u16le();
    const length = r.u32le();
    const offset = r.u64le();
    const fileId = Buffer.from(r.bytes(16, "FileId"));
    const channel = r.u32le();
    const remainingBytes = r.u32le();
    r.skip(2, "WriteChannelInfoOffset");
    check(r.u16le() === 0, "WRITE request: channel info (RDMA) is not supported");
    const flags = r.u32le();
    const data = bufferAt(r, dataOffset, length, Cap.DATA, "data");
    const end = Math.max(headerOffset(48), endOf(dataOffset, length));
    const trailer = readTrailer(r, end, length === 0 ? ONE_ZERO : NONE);
    const req = { offset, fileId, channel, remainingBytes, flags, data };
    return trailer ? { ...req, trailer } : req;
  });
}

/** Encodes the body of a WRITE response. */
export function encodeWriteResponse(res: WriteResponse): Buffer {
  return new ByteWriter(16).u16le(17).u16le(0).u32le(res.count).u32le(res.remaining).u32le(0).toBuffer();
}

/** Decodes a whole WRITE response message. */
export function decodeWriteResponse(message: Buffer): WriteResponse {
  return decoding("WRITE response", () => {
    const r = bodyReader(message, "WRITE response", 17);
    r.skip(2, "reserved");
    const count = r.u32le();
    const remaining = r.u32le();
    return { count, remaining };
  });
}
