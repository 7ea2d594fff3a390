/**
 * QUERY_DIRECTORY request and response (MS-SMB2 2.2.33, 2.2.34), and the directory entries of the
 * output buffer: FileIdBothDirectoryInformation (MS-FSCC 2.4.17) and FileDirectoryInformation
 * (2.4.10), chained by NextEntryOffset.
 */
import { ByteReader, ByteWriter, check, decoding } from "../../wire/bytes.ts";
import {
  Cap,
  NONE,
  ONE_ZERO,
  bodyReader,
  checkFits,
  decodeOutputResponse,
  encodeOutputResponse,
  endOf,
  headerOffset,
  readTrailer,
  textAt,
} from "./body.ts";
import { checkFileId } from "./create.ts";
import { FileInfoClass } from "./file-info.ts";

/** Flags (MS-SMB2 2.2.33). */
export const QueryDirectoryFlag = {
  RESTART_SCANS: 0x01,
  RETURN_SINGLE_ENTRY: 0x02,
  INDEX_SPECIFIED: 0x04,
  REOPEN: 0x10,
} as const;

/** The entry classes decoded here. */
export type DirectoryInfoClass =
  typeof FileInfoClass.FileDirectoryInformation | typeof FileInfoClass.FileIdBothDirectoryInformation;

/** MS-SMB2 2.2.33. */
export interface QueryDirectoryRequest {
  readonly fileInformationClass: number;
  readonly flags: number;
  readonly fileIndex: number;
  readonly fileId: Buffer;
  /** A search pattern such as `*`. */
  readonly pattern: string;
  readonly outputBufferLength: number;
  readonly trailer?: Buffer;
}

/** MS-SMB2 2.2.34. */
export interface QueryDirectoryResponse {
  /** The entries, raw: {@link decodeDirectoryEntries} reads them. */
  readonly output: Buffer;
  readonly trailer?: Buffer;
}

/** One entry of FileDirectoryInformation or FileIdBothDirectoryInformation. */
export interface DirectoryEntry {
  readonly fileIndex: number;
  readonly creationTime: bigint;
  readonly lastAccessTime: bigint;
  readonly lastWriteTime: bigint;
  readonly changeTime: bigint;
  readonly endOfFile: bigint;
  readonly allocationSize: bigint;
  readonly fileAttributes: number;
  readonly fileName: string;
  /** FileIdBothDirectoryInformation only (0 and "" in FileDirectoryInformation). */
  readonly eaSize: number;
  readonly shortName: string;
  readonly fileId: bigint;
}

/** Encodes the body of a QUERY_DIRECTORY request. */
export function encodeQueryDirectoryRequest(req: QueryDirectoryRequest): Buffer {
  const pattern = Buffer.from(req.pattern, "utf16le");
  check(pattern.length <= Cap.NAME, "QUERY_DIRECTORY: pattern over its cap");
  return new ByteWriter(32 + pattern.length + 1)
    .u16le(33)
    .u8(req.fileInformationClass)
    .u8(req.flags)
    .u32le(req.fileIndex)
    .bytes(checkFileId(req.fileId))
    .u16le(pattern.length === 0 ? 0 : headerOffset(32))
    .u16le(pattern.length)
    .u32le(req.outputBufferLength)
    .bytes(pattern)
    .bytes(req.trailer ?? (pattern.length === 0 ? ONE_ZERO : NONE))
    .toBuffer();
}

/** Decodes a whole QUERY_DIRECTORY request message. */
export function decodeQueryDirectoryRequest(message: Buffer): QueryDirectoryRequest {
  return decoding("QUERY_DIRECTORY request", () => {
    const r = bodyReader(message, "QUERY_DIRECTORY request", 33);
    const fileInformationClass = r.u8();
    const flags = r.u8();
    const fileIndex = r.u32le();
    const fileId = Buffer.from(r.bytes(16, "FileId"));
    const offset = r.u16le();
    const length = r.u16le();
    const outputBufferLength = r.u32le();
    const pattern = textAt(r, offset, length, "pattern");
    const end = Math.max(headerOffset(32), endOf(offset, length));
    const trailer = readTrailer(r, end, length === 0 ? ONE_ZERO : NONE);
    const req = { fileInformationClass, flags, fileIndex, fileId, pattern, outputBufferLength };
    return trailer ? { ...req, trailer } : req;
  });
}

/** Encodes the body of a QUERY_DIRECTORY response. */
export function encodeQueryDirectoryResponse(res: QueryDirectoryResponse): Buffer {
  return encodeOutputResponse("QUERY_DIRECTORY response", res);
}

/** Decodes a whole QUERY_DIRECTORY response message. */
export function decodeQueryDirectoryResponse(message: Buffer): QueryDirectoryResponse {
  return decodeOutputResponse("QUERY_DIRECTORY response", message);
}

function fixedSize(infoClass: DirectoryInfoClass): number {
  return infoClass === FileInfoClass.FileIdBothDirectoryInformation ? 104 : 64;
}

/**
 * Encodes entries as a server would: each at an 8-byte boundary, NextEntryOffset 0 on the last.
 */
export function encodeDirectoryEntries(
  entries: readonly DirectoryEntry[],
  infoClass: DirectoryInfoClass,
): Buffer {
  check(entries.length <= Cap.DIRECTORY_ENTRIES, "directory entries over their cap");
  const idBoth = infoClass === FileInfoClass.FileIdBothDirectoryInformation;
  const w = new ByteWriter(256);
  entries.forEach((e, i) => {
    w.align(8);
    const start = w.length;
    const name = Buffer.from(e.fileName, "utf16le");
    check(name.length <= Cap.NAME, "directory entry: name over its cap");
    w.u32le(0) // NextEntryOffset, patched once the next entry's place is known
      .u32le(e.fileIndex)
      .u64le(e.creationTime)
      .u64le(e.lastAccessTime)
      .u64le(e.lastWriteTime)
      .u64le(e.changeTime)
      .u64le(e.endOfFile)
      .u64le(e.allocationSize)
      .u32le(e.fileAttributes)
      .u32le(name.length);
    if (idBoth) {
      const short = Buffer.from(e.shortName, "utf16le");
      check(short.length <= 24, "directory entry: a short name over 24 bytes");
      w.u32le(e.eaSize)
        .u8(short.length)
        .u8(0)
        .bytes(short)
        .zeros(24 - short.length)
        .u16le(0)
        .u64le(e.fileId);
    }
    w.bytes(name);
    if (i + 1 < entries.length) {
      const next = start + ((w.length - start + 7) & ~7);
      checkFits(next - start, 32, "NextEntryOffset");
      w.patchU32le(start, next - start);
    }
  });
  return w.toBuffer();
}

/**
 * Decodes the entries of a QUERY_DIRECTORY output. NextEntryOffset must move forward past the
 * whole entry and stay inside the buffer, so that a hostile chain can neither loop nor overlap,
 * and at most {@link Cap.DIRECTORY_ENTRIES} entries are read.
 */
export function decodeDirectoryEntries(output: Buffer, infoClass: DirectoryInfoClass): DirectoryEntry[] {
  return decoding("directory entries", () => {
    const what = "directory entries";
    const fixed = fixedSize(infoClass);
    const idBoth = infoClass === FileInfoClass.FileIdBothDirectoryInformation;
    const entries: DirectoryEntry[] = [];
    if (output.length === 0) return entries;
    let at = 0;
    for (;;) {
      check(entries.length < Cap.DIRECTORY_ENTRIES, `${what}: more than ${Cap.DIRECTORY_ENTRIES}`);
      const r = new ByteReader(output, what, at);
      r.need(fixed, "entry");
      const next = r.u32le();
      const fileIndex = r.u32le();
      const creationTime = r.u64le();
      const lastAccessTime = r.u64le();
      const lastWriteTime = r.u64le();
      const changeTime = r.u64le();
      const endOfFile = r.u64le();
      const allocationSize = r.u64le();
      const fileAttributes = r.u32le();
      const nameLength = r.u32le();
      check(nameLength <= Cap.NAME, `${what}: a name of ${nameLength} bytes, over its cap`);
      let eaSize = 0;
      let shortName = "";
      let fileId = 0n;
      if (idBoth) {
        eaSize = r.u32le();
        const shortLength = r.u8();
        r.skip(1, "reserved1");
        check(shortLength <= 24, `${what}: a short name of ${shortLength} bytes`);
        check(shortLength % 2 === 0, `${what}: a short name of odd length`);
        shortName = r.bytes(24, "ShortName").subarray(0, shortLength).toString("utf16le");
        r.skip(2, "reserved2");
        fileId = r.u64le();
      }
      const fileName = r.utf16le(nameLength, "FileName");
      entries.push({
        fileIndex,
        creationTime,
        lastAccessTime,
        lastWriteTime,
        changeTime,
        endOfFile,
        allocationSize,
        fileAttributes,
        fileName,
        eaSize,
        shortName,
        fileId,
      });
      if (next === 0) return entries;
      check(next >= fixed + nameLength, `${what}: NextEntryOffset ${next} inside its own entry`);
      check(at + next < output.length, `${what}: NextEntryOffset ${next} past the end`);
      at += next;
    }
  });
}
