/**
 * QUERY_INFO request and response (MS-SMB2 2.2.37, 2.2.38). The output buffer is raw here; the
 * information classes it holds are decoded by file-info.ts.
 */
import { ByteWriter, check, decoding } from "../../wire/bytes.ts";
import {
  Cap,
  NONE,
  ONE_ZERO,
  bodyReader,
  bufferAt,
  decodeOutputResponse,
  encodeOutputResponse,
  endOf,
  headerOffset,
  readTrailer,
} from "./body.ts";
import { checkFileId } from "./create.ts";

export { FileInfoClass, FsInfoClass, InfoType } from "./file-info.ts";

/** Flags of a QUERY_INFO request (MS-SMB2 2.2.37), for FileFullEaInformation. */
export const QueryInfoFlag = { RESTART_SCAN: 0x1, RETURN_SINGLE_ENTRY: 0x2, INDEX_SPECIFIED: 0x4 } as const;

/** MS-SMB2 2.2.37. */
export interface QueryInfoRequest {
  readonly infoType: number;
  readonly fileInfoClass: number;
  readonly outputBufferLength: number;
  /** Input for quota and EA queries, empty otherwise. */
  readonly input: Buffer;
  readonly additionalInformation: number;
  readonly flags: number;
  readonly fileId: Buffer;
  readonly trailer?: Buffer;
}

/** MS-SMB2 2.2.38. */
export interface QueryInfoResponse {
  readonly output: Buffer;
  readonly trailer?: Buffer;
}

/** Encodes the body of a QUERY_INFO request. */
export function encodeQueryInfoRequest(req: QueryInfoRequest): Buffer {
  check(req.input.length <= Cap.CONTEXTS, "QUERY_INFO request: input over its cap");
  return new ByteWriter(40 + req.input.length + 1)
    .u16le(41)
    .u8(req.infoType)
    .u8(req.fileInfoClass)
    .u32le(req.outputBufferLength)
    .u16le(req.input.length === 0 ? 0 : headerOffset(40))
    .u16le(0)
    .u32le(req.input.length)
    .u32le(req.additionalInformation)
    .u32le(req.flags)
    .bytes(checkFileId(req.fileId))
    .bytes(req.input)
    .bytes(req.trailer ?? (req.input.length === 0 ? ONE_ZERO : NONE))
    .toBuffer();
}

/** Decodes a whole QUERY_INFO request message. */
export function decodeQueryInfoRequest(message: Buffer): QueryInfoRequest {
  return decoding("QUERY_INFO request", () => {
    const r = bodyReader(message, "QUERY_INFO request", 41);
    const infoType = r.u8();
    const fileInfoClass = r.u8();
    const outputBufferLength = r.u32le();
    const inputOffset = r.u16le();
    r.skip(2, "reserved");
    const inputLength = r.u32le();
    const additionalInformation = r.u32le();
    const flags = r.u32le();
    const fileId = Buffer.from(r.bytes(16, "FileId"));
    const input = bufferAt(r, inputOffset, inputLength, Cap.CONTEXTS, "input");
    const end = Math.max(headerOffset(40), endOf(inputOffset, inputLength));
    const trailer = readTrailer(r, end, inputLength === 0 ? ONE_ZERO : NONE);
    const req = { infoType, fileInfoClass, outputBufferLength, input, additionalInformation, flags, fileId };
    return trailer ? { ...req, trailer } : req;
  });
}

/** Encodes the body of a QUERY_INFO response. */
export function encodeQueryInfoResponse(res: QueryInfoResponse): Buffer {
  return encodeOutputResponse("QUERY_INFO response", res);
}

/** Decodes a whole QUERY_INFO response message. */
export function decodeQueryInfoResponse(message: Buffer): QueryInfoResponse {
  return decodeOutputResponse("QUERY_INFO response", message);
}
