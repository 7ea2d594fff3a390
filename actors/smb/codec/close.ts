/** CLOSE request and response (MS-SMB2 2.2.15, 2.2.16). */
import { ByteWriter, decoding } from "../../wire/bytes.ts";
import { bodyReader } from "./body.ts";
import { checkFileId } from "./create.ts";

/** Flags (MS-SMB2 2.2.15): ask for the attributes in the response. */
export const CloseFlag = { POSTQUERY_ATTRIB: 0x0001 } as const;

/** MS-SMB2 2.2.15. */
export interface CloseRequest {
  readonly flags: number;
  readonly fileId: Buffer;
}

/** MS-SMB2 2.2.16: the attributes are zeros unless POSTQUERY_ATTRIB was asked and is set here. */
export interface CloseResponse {
  readonly flags: number;
  readonly creationTime: bigint;
  readonly lastAccessTime: bigint;
  readonly lastWriteTime: bigint;
  readonly changeTime: bigint;
  readonly allocationSize: bigint;
  readonly endOfFile: bigint;
  readonly fileAttributes: number;
}

/** Encodes the body of a CLOSE request. */
export function encodeCloseRequest(req: CloseRequest): Buffer {
  return new ByteWriter(24).u16le(24).u16le(req.flags).u32le(0).bytes(checkFileId(req.fileId)).toBuffer();
}

/** Decodes a whole CLOSE request message. */
export function decodeCloseRequest(message: Buffer): CloseRequest {
  return decoding("CLOSE request", () => {
    const r = bodyReader(message, "CLOSE request", 24);
    const flags = r.u16le();
    r.skip(4, "reserved");
    return { flags, fileId: Buffer.from(r.bytes(16, "FileId")) };
  });
}

/** Encodes the body of a CLOSE response. */
export function encodeCloseResponse(res: CloseResponse): Buffer {
  return new ByteWriter(60)
    .u16le(60)
    .u16le(res.flags)
    .u32le(0)
    .u64le(res.creationTime)
    .u64le(res.lastAccessTime)
    .u64le(res.lastWriteTime)
    .u64le(res.changeTime)
    .u64le(res.allocationSize)
    .u64le(res.endOfFile)
    .u32le(res.fileAttributes)
    .toBuffer();
}

/** Decodes a whole CLOSE response message. */
export function decodeCloseResponse(message: Buffer): CloseResponse {
  return decoding("CLOSE response", () => {
    const r = bodyReader(message, "CLOSE response", 60);
    const flags = r.u16le();
    r.skip(4, "reserved");
    return {
      flags,
      creationTime: r.u64le(),
      lastAccessTime: r.u64le(),
      lastWriteTime: r.u64le(),
      changeTime: r.u64le(),
      allocationSize: r.u64le(),
      endOfFile: r.u64le(),
      fileAttributes: r.u32le(),
    };
  });
}
