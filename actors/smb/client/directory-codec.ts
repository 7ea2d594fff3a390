/**
 * The few QUERY_DIRECTORY and SET_INFO shapes the client sends (MS-SMB2 2.2.33, 2.2.34, 2.2.39)
 * with the information classes it uses (MS-FSCC 2.4.10 FileDirectoryInformation, 2.4.37
 * FileRenameInformation, 2.4.14 FileEndOfFileInformation). Pure functions: the client's own until
 * the general codecs of actors/smb/codec cover them.
 */
import { ByteReader, ByteWriter, check, decoding } from "../../wire/bytes.ts";
import { HEADER_SIZE } from "../codec/header.ts";

/** FileInformationClass values (MS-FSCC 2.4). */
export const FileInfoClass = {
  DIRECTORY: 1,
  RENAME: 10,
  END_OF_FILE: 20,
} as const;

/** QUERY_DIRECTORY Flags (MS-SMB2 2.2.33). */
export const QueryDirectoryFlag = { RESTART_SCANS: 0x01 } as const;

/** SET_INFO InfoType (MS-SMB2 2.2.39): file information. */
const INFO_FILE = 0x01;

/** Entries read from one QUERY_DIRECTORY answer, at most. */
const MAX_ENTRIES = 16 * 1024;
/** The largest output decoded. */
const MAX_OUTPUT = 1024 * 1024 + 64 * 1024;

/** One entry of FileDirectoryInformation. */
export interface DirectoryInformation {
  readonly name: string;
  readonly endOfFile: bigint;
  readonly fileAttributes: number;
}

/** The body of a QUERY_DIRECTORY request for `pattern` ("*": everything). */
export function encodeQueryDirectoryRequest(req: {
  readonly infoClass: number;
  readonly flags: number;
  readonly fileId: Buffer;
  readonly pattern: string;
  readonly outputBufferLength: number;
}): Buffer {
  check(req.fileId.length === 16, "QUERY_DIRECTORY: a FileId of 16 bytes");
  const name = Buffer.from(req.pattern, "utf16le");
  return new ByteWriter(32 + name.length)
    .u16le(33)
    .u8(req.infoClass)
    .u8(req.flags)
    .u32le(0) // FileIndex
    .bytes(req.fileId)
    .u16le(HEADER_SIZE + 32)
    .u16le(name.length)
    .u32le(req.outputBufferLength)
    .bytes(name)
    .toBuffer();
}

/** The output buffer of a QUERY_DIRECTORY response message (MS-SMB2 2.2.34). */
export function decodeQueryDirectoryResponse(message: Buffer): Buffer {
  return decoding("QUERY_DIRECTORY response", () => {
    const r = new ByteReader(message, "QUERY_DIRECTORY response", HEADER_SIZE);
    check(r.u16le() === 9, "QUERY_DIRECTORY response: StructureSize is not 9");
    const offset = r.u16le();
    const length = r.u32le();
    if (length === 0) return Buffer.alloc(0);
    check(offset >= HEADER_SIZE + 8, `QUERY_DIRECTORY response: OutputBufferOffset ${offset} in the header`);
    return Buffer.from(r.slice(offset, length, MAX_OUTPUT, "output buffer"));
  });
}

/** The entries of a FileDirectoryInformation buffer (MS-FSCC 2.4.10), chained by NextEntryOffset. */
export function decodeDirectoryInformation(buffer: Buffer): DirectoryInformation[] {
  return decoding("FileDirectoryInformation", () => {
    const out: DirectoryInformation[] = [];
    let at = 0;
    while (at < buffer.length) {
      check(out.length < MAX_ENTRIES, `FileDirectoryInformation: over ${MAX_ENTRIES} entries`);
      const r = new ByteReader(buffer, "FileDirectoryInformation", at);
      const next = r.u32le();
      r.skip(4 + 8 * 4, "FileIndex and times");
      const endOfFile = r.u64le();
      r.skip(8, "AllocationSize");
      const fileAttributes = r.u32le();
      const nameLength = r.u32le();
      const name = r.utf16le(nameLength, "FileName");
      out.push({ name, endOfFile, fileAttributes });
      if (next === 0) break;
      check(next % 8 === 0 && next >= 64 + nameLength, `FileDirectoryInformation: NextEntryOffset ${next}`);
      at += next;
    }
    return out;
  });
}

/** The body of a SET_INFO request setting file information `infoClass` to `info`. */
export function encodeSetInfoRequest(req: {
  readonly infoClass: number;
  readonly fileId: Buffer;
  readonly info: Buffer;
}): Buffer {
  check(req.fileId.length === 16, "SET_INFO: a FileId of 16 bytes");
  return new ByteWriter(32 + req.info.length)
    .u16le(33)
    .u8(INFO_FILE)
    .u8(req.infoClass)
    .u32le(req.info.length)
    .u16le(HEADER_SIZE + 32)
    .u16le(0)
    .u32le(0) // AdditionalInformation
    .bytes(req.fileId)
    .bytes(req.info)
    .toBuffer();
}

/** FileRenameInformation for SMB2 (MS-FSCC 2.4.37.2): the new name is share-relative. */
export function encodeRenameInformation(newName: string, replace: boolean): Buffer {
  const name = Buffer.from(newName, "utf16le");
  return new ByteWriter(20 + name.length)
    .u8(replace ? 1 : 0)
    .zeros(7)
    .u64le(0n) // RootDirectory
    .u32le(name.length)
    .bytes(name)
    .toBuffer();
}

/** FileEndOfFileInformation (MS-FSCC 2.4.14). */
export function encodeEndOfFileInformation(size: bigint): Buffer {
  return new ByteWriter(8).u64le(size).toBuffer();
}
