/**
 * CREATE request and response (MS-SMB2 2.2.13, 2.2.14): opening or creating a file, a directory or
 * a named pipe. Create contexts (2.2.13.2) are carried as their raw bytes, 8-byte aligned after
 * the name.
 */
import { ByteWriter, check, decoding } from "../../wire/bytes.ts";
import {
  Cap,
  NONE,
  ONE_ZERO,
  bodyReader,
  bufferAt,
  checkFits,
  endOf,
  headerOffset,
  readTrailer,
  textAt,
} from "./body.ts";

/** Access mask bits (MS-SMB2 2.2.13.1.1, 2.2.13.1.2). */
export const Access = {
  FILE_READ_DATA: 0x00000001,
  FILE_LIST_DIRECTORY: 0x00000001,
  FILE_WRITE_DATA: 0x00000002,
  FILE_ADD_FILE: 0x00000002,
  FILE_APPEND_DATA: 0x00000004,
  FILE_ADD_SUBDIRECTORY: 0x00000004,
  FILE_READ_EA: 0x00000008,
  FILE_WRITE_EA: 0x00000010,
  FILE_EXECUTE: 0x00000020,
  FILE_TRAVERSE: 0x00000020,
  FILE_DELETE_CHILD: 0x00000040,
  FILE_READ_ATTRIBUTES: 0x00000080,
  FILE_WRITE_ATTRIBUTES: 0x00000100,
  DELETE: 0x00010000,
  READ_CONTROL: 0x00020000,
  WRITE_DAC: 0x00040000,
  WRITE_OWNER: 0x00080000,
  SYNCHRONIZE: 0x00100000,
  ACCESS_SYSTEM_SECURITY: 0x01000000,
  MAXIMUM_ALLOWED: 0x02000000,
  GENERIC_ALL: 0x10000000,
  GENERIC_EXECUTE: 0x20000000,
  GENERIC_WRITE: 0x40000000,
  GENERIC_READ: 0x80000000,
} as const;

/** File attributes (MS-FSCC 2.6). */
export const FileAttribute = {
  READONLY: 0x00000001,
  HIDDEN: 0x00000002,
  SYSTEM: 0x00000004,
  DIRECTORY: 0x00000010,
  ARCHIVE: 0x00000020,
  NORMAL: 0x00000080,
  TEMPORARY: 0x00000100,
  SPARSE_FILE: 0x00000200,
  REPARSE_POINT: 0x00000400,
  COMPRESSED: 0x00000800,
  OFFLINE: 0x00001000,
  NOT_CONTENT_INDEXED: 0x00002000,
  ENCRYPTED: 0x00004000,
} as const;

/** ShareAccess (MS-SMB2 2.2.13). */
export const ShareAccess = { READ: 0x1, WRITE: 0x2, DELETE: 0x4 } as const;

/** CreateDisposition (MS-SMB2 2.2.13). */
export const CreateDisposition = {
  SUPERSEDE: 0,
  OPEN: 1,
  CREATE: 2,
  OPEN_IF: 3,
  OVERWRITE: 4,
  OVERWRITE_IF: 5,
} as const;

/** CreateOptions (MS-SMB2 2.2.13). */
export const CreateOption = {
  DIRECTORY_FILE: 0x00000001,
  WRITE_THROUGH: 0x00000002,
  SEQUENTIAL_ONLY: 0x00000004,
  NO_INTERMEDIATE_BUFFERING: 0x00000008,
  SYNCHRONOUS_IO_ALERT: 0x00000010,
  SYNCHRONOUS_IO_NONALERT: 0x00000020,
  NON_DIRECTORY_FILE: 0x00000040,
  COMPLETE_IF_OPLOCKED: 0x00000100,
  NO_EA_KNOWLEDGE: 0x00000200,
  RANDOM_ACCESS: 0x00000800,
  DELETE_ON_CLOSE: 0x00001000,
  OPEN_BY_FILE_ID: 0x00002000,
  OPEN_FOR_BACKUP_INTENT: 0x00004000,
  NO_COMPRESSION: 0x00008000,
  OPEN_REPARSE_POINT: 0x00200000,
  OPEN_NO_RECALL: 0x00400000,
} as const;

/** ImpersonationLevel (MS-SMB2 2.2.13). */
export const ImpersonationLevel = { ANONYMOUS: 0, IDENTIFICATION: 1, IMPERSONATION: 2, DELEGATE: 3 } as const;

/** RequestedOplockLevel and OplockLevel (MS-SMB2 2.2.13, 2.2.14). */
export const OplockLevel = { NONE: 0x00, II: 0x01, EXCLUSIVE: 0x08, BATCH: 0x09, LEASE: 0xff } as const;

/** CreateAction (MS-SMB2 2.2.14). */
export const CreateAction = { SUPERSEDED: 0, OPENED: 1, CREATED: 2, OVERWRITTEN: 3 } as const;

/** MS-SMB2 2.2.13. */
export interface CreateRequest {
  readonly requestedOplockLevel: number;
  readonly impersonationLevel: number;
  readonly desiredAccess: number;
  readonly fileAttributes: number;
  readonly shareAccess: number;
  readonly createDisposition: number;
  readonly createOptions: number;
  /** Relative to the share, without a leading backslash; empty for the share's root. */
  readonly name: string;
  /** Raw create contexts (MS-SMB2 2.2.13.2), empty for none. */
  readonly createContexts: Buffer;
  /** Padding after the name or contexts, when not the encoder's (one zero byte when both are empty). */
  readonly trailer?: Buffer;
}

/** MS-SMB2 2.2.14. */
export interface CreateResponse {
  readonly oplockLevel: number;
  readonly flags: number;
  readonly createAction: number;
  readonly creationTime: bigint;
  readonly lastAccessTime: bigint;
  readonly lastWriteTime: bigint;
  readonly changeTime: bigint;
  readonly allocationSize: bigint;
  readonly endOfFile: bigint;
  readonly fileAttributes: number;
  /** 16 bytes: Persistent then Volatile (MS-SMB2 2.2.14.1). */
  readonly fileId: Buffer;
  readonly createContexts: Buffer;
  readonly trailer?: Buffer;
}

const REQUEST_FIXED = 56;
const RESPONSE_FIXED = 88;

/** Checks a 16-byte SMB2_FILEID (MS-SMB2 2.2.14.1). */
export function checkFileId(fileId: Buffer): Buffer {
  check(fileId.length === 16, `a FileId of ${fileId.length} bytes, not 16`);
  return fileId;
}

/** Encodes the body of a CREATE request. */
export function encodeCreateRequest(req: CreateRequest): Buffer {
  const name = Buffer.from(req.name, "utf16le");
  check(name.length <= Cap.NAME, "CREATE: name over its cap");
  check(req.createContexts.length <= Cap.CONTEXTS, "CREATE: create contexts over their cap");
  const w = new ByteWriter(REQUEST_FIXED + name.length + req.createContexts.length + 8)
    .u16le(REQUEST_FIXED + 1)
    .u8(0) // SecurityFlags: reserved
    .u8(req.requestedOplockLevel)
    .u32le(req.impersonationLevel)
    .u64le(0n) // SmbCreateFlags: reserved
    .u64le(0n)
    .u32le(req.desiredAccess)
    .u32le(req.fileAttributes)
    .u32le(req.shareAccess)
    .u32le(req.createDisposition)
    .u32le(req.createOptions)
    .u16le(headerOffset(REQUEST_FIXED))
    .u16le(name.length)
    .u32le(0)
    .u32le(req.createContexts.length)
    .bytes(name);
  if (req.createContexts.length > 0) {
    w.align(8);
    w.patchU32le(48, headerOffset(w.length));
    w.bytes(req.createContexts);
  }
  const empty = name.length === 0 && req.createContexts.length === 0;
  return w.bytes(req.trailer ?? (empty ? ONE_ZERO : NONE)).toBuffer();
}

/** Decodes a whole CREATE request message. */
export function decodeCreateRequest(message: Buffer): CreateRequest {
  return decoding("CREATE request", () => {
    const r = bodyReader(message, "CREATE request", REQUEST_FIXED + 1);
    r.skip(1, "SecurityFlags");
    const requestedOplockLevel = r.u8();
    const impersonationLevel = r.u32le();
    r.skip(16, "SmbCreateFlags and Reserved");
    const desiredAccess = r.u32le();
    const fileAttributes = r.u32le();
    const shareAccess = r.u32le();
    const createDisposition = r.u32le();
    const createOptions = r.u32le();
    const nameOffset = r.u16le();
    const nameLength = r.u16le();
    const contextsOffset = r.u32le();
    const contextsLength = r.u32le();
    const name = textAt(r, nameOffset, nameLength, "name");
    const createContexts = bufferAt(r, contextsOffset, contextsLength, Cap.CONTEXTS, "create contexts");
    const end = Math.max(
      headerOffset(REQUEST_FIXED),
      endOf(nameOffset, nameLength),
      endOf(contextsOffset, contextsLength),
    );
    const trailer = readTrailer(r, end, nameLength === 0 && contextsLength === 0 ? ONE_ZERO : NONE);
    const req: CreateRequest = {
      requestedOplockLevel,
      impersonationLevel,
      desiredAccess,
      fileAttributes,
      shareAccess,
      createDisposition,
      createOptions,
      name,
      createContexts,
    };
    return trailer ? { ...req, trailer } : req;
  });
}

/** Encodes the body of a CREATE response. */
export function encodeCreateResponse(res: CreateResponse): Buffer {
  checkFits(res.createContexts.length, 32, "CreateContextsLength");
  check(res.createContexts.length <= Cap.CONTEXTS, "CREATE response: create contexts over their cap");
  const contexts = res.createContexts.length;
  return new ByteWriter(RESPONSE_FIXED + contexts)
    .u16le(RESPONSE_FIXED + 1)
    .u8(res.oplockLevel)
    .u8(res.flags)
    .u32le(res.createAction)
    .u64le(res.creationTime)
    .u64le(res.lastAccessTime)
    .u64le(res.lastWriteTime)
    .u64le(res.changeTime)
    .u64le(res.allocationSize)
    .u64le(res.endOfFile)
    .u32le(res.fileAttributes)
    .u32le(0)
    .bytes(checkFileId(res.fileId))
    .u32le(contexts === 0 ? 0 : headerOffset(RESPONSE_FIXED))
    .u32le(contexts)
    .bytes(res.createContexts)
    .bytes(res.trailer ?? NONE)
    .toBuffer();
}

/** Decodes a whole CREATE response message. */
export function decodeCreateResponse(message: Buffer): CreateResponse {
  return decoding("CREATE response", () => {
    const r = bodyReader(message, "CREATE response", RESPONSE_FIXED + 1);
    const oplockLevel = r.u8();
    const flags = r.u8();
    const createAction = r.u32le();
    const creationTime = r.u64le();
    const lastAccessTime = r.u64le();
    const lastWriteTime = r.u64le();
    const changeTime = r.u64le();
    const allocationSize = r.u64le();
    const endOfFile = r.u64le();
    const fileAttributes = r.u32le();
    r.skip(4, "Reserved2");
    const fileId = Buffer.from(r.bytes(16, "FileId"));
    const offset = r.u32le();
    const length = r.u32le();
    const createContexts = bufferAt(r, offset, length, Cap.CONTEXTS, "create contexts");
    const trailer = readTrailer(r, Math.max(headerOffset(RESPONSE_FIXED), endOf(offset, length)), NONE);
    const res: CreateResponse = {
      oplockLevel,
      flags,
      createAction,
      creationTime,
      lastAccessTime,
      lastWriteTime,
      changeTime,
      allocationSize,
      endOfFile,
      fileAttributes,
      fileId,
      createContexts,
    };
    return trailer ? { ...res, trailer } : res;
  });
}
