/** FLUSH request and response (MS-SMB2 2.2.17, 2.2.18): write a file's cached data to disk. */
import { ByteWriter, decoding } from "../../wire/bytes.ts";
import { bodyReader, decodeReservedOnly, encodeReservedOnly } from "./body.ts";
import { checkFileId } from "./create.ts";

/** MS-SMB2 2.2.17. */
export interface FlushRequest {
  readonly fileId: Buffer;
}

/** MS-SMB2 2.2.18: nothing but a reserved field. */
export type FlushResponse = Record<string, never>;

/** Encodes the body of a FLUSH request. */
export function encodeFlushRequest(req: FlushRequest): Buffer {
  return new ByteWriter(24).u16le(24).u16le(0).u32le(0).bytes(checkFileId(req.fileId)).toBuffer();
}

/** Decodes a whole FLUSH request message. */
export function decodeFlushRequest(message: Buffer): FlushRequest {
  return decoding("FLUSH request", () => {
    const r = bodyReader(message, "FLUSH request", 24);
    r.skip(6, "reserved");
    return { fileId: Buffer.from(r.bytes(16, "FileId")) };
  });
}

/** Encodes the body of a FLUSH response. */
export function encodeFlushResponse(_: FlushResponse = {}): Buffer {
  return encodeReservedOnly();
}

/** Decodes a whole FLUSH response message. */
export function decodeFlushResponse(message: Buffer): FlushResponse {
  return decodeReservedOnly(message, "FLUSH response");
}
