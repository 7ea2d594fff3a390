/**
 * The file information classes a client reads and sets (MS-FSCC 2.4, 2.5), carried in the buffers
 * of QUERY_INFO and SET_INFO: FileBasicInformation, FileStandardInformation, FileAllInformation,
 * FileFsSizeInformation, FileEndOfFileInformation, FileDispositionInformation and the SMB2 form of
 * FileRenameInformation. Each decoder takes the info buffer alone.
 */
import { ByteReader, ByteWriter, check, decoding } from "../../wire/bytes.ts";
import { Cap } from "./body.ts";

/** InfoType (MS-SMB2 2.2.37). */
export const InfoType = { FILE: 0x01, FILESYSTEM: 0x02, SECURITY: 0x03, QUOTA: 0x04 } as const;

/** FileInformationClass values (MS-FSCC 2.4). */
export const FileInfoClass = {
  FileDirectoryInformation: 1,
  FileFullDirectoryInformation: 2,
  FileBothDirectoryInformation: 3,
  FileBasicInformation: 4,
  FileStandardInformation: 5,
  FileInternalInformation: 6,
  FileEaInformation: 7,
  FileAccessInformation: 8,
  FileNameInformation: 9,
  FileRenameInformation: 10,
  FileNamesInformation: 12,
  FileDispositionInformation: 13,
  FilePositionInformation: 14,
  FileModeInformation: 16,
  FileAlignmentInformation: 17,
  FileAllInformation: 18,
  FileAllocationInformation: 19,
  FileEndOfFileInformation: 20,
  FileNetworkOpenInformation: 34,
  FileIdBothDirectoryInformation: 37,
  FileIdFullDirectoryInformation: 38,
} as const;

/** FsInformationClass values (MS-FSCC 2.5). */
export const FsInfoClass = {
  FileFsVolumeInformation: 1,
  FileFsSizeInformation: 3,
  FileFsDeviceInformation: 4,
  FileFsAttributeInformation: 5,
  FileFsFullSizeInformation: 7,
} as const;

/** MS-FSCC 2.4.7 (times are FILETIME: 100 ns since 1601, 0 for "do not change" on set). */
export interface FileBasicInformation {
  readonly creationTime: bigint;
  readonly lastAccessTime: bigint;
  readonly lastWriteTime: bigint;
  readonly changeTime: bigint;
  readonly fileAttributes: number;
}

/** MS-FSCC 2.4.41. */
export interface FileStandardInformation {
  readonly allocationSize: bigint;
  readonly endOfFile: bigint;
  readonly numberOfLinks: number;
  readonly deletePending: boolean;
  readonly directory: boolean;
}

/** MS-FSCC 2.4.2. */
export interface FileAllInformation {
  readonly basic: FileBasicInformation;
  readonly standard: FileStandardInformation;
  readonly indexNumber: bigint;
  readonly eaSize: number;
  readonly accessFlags: number;
  readonly currentByteOffset: bigint;
  readonly mode: number;
  readonly alignmentRequirement: number;
  readonly fileName: string;
}

/** MS-FSCC 2.5.8. */
export interface FileFsSizeInformation {
  readonly totalAllocationUnits: bigint;
  readonly availableAllocationUnits: bigint;
  readonly sectorsPerAllocationUnit: number;
  readonly bytesPerSector: number;
}

/** MS-FSCC 2.4.37.2: the SMB2 form of FileRenameInformation (InfoType FILE, class 10). */
export interface FileRenameInformation {
  readonly replaceIfExists: boolean;
  /** 0 over SMB2 (MS-SMB2 3.3.5.21.1: the name is relative to the share). */
  readonly rootDirectory: bigint;
  readonly fileName: string;
}

const BASIC_SIZE = 40;
const STANDARD_SIZE = 24;
const ALL_FIXED = 100;

function writeBasic(w: ByteWriter, v: FileBasicInformation): ByteWriter {
  return w
    .u64le(v.creationTime)
    .u64le(v.lastAccessTime)
    .u64le(v.lastWriteTime)
    .u64le(v.changeTime)
    .u32le(v.fileAttributes)
    .u32le(0);
}

function readBasic(r: ByteReader): FileBasicInformation {
  const v = {
    creationTime: r.u64le(),
    lastAccessTime: r.u64le(),
    lastWriteTime: r.u64le(),
    changeTime: r.u64le(),
    fileAttributes: r.u32le(),
  };
  r.skip(4, "reserved");
  return v;
}

function writeStandard(w: ByteWriter, v: FileStandardInformation): ByteWriter {
  return w
    .u64le(v.allocationSize)
    .u64le(v.endOfFile)
    .u32le(v.numberOfLinks)
    .u8(v.deletePending ? 1 : 0)
    .u8(v.directory ? 1 : 0)
    .u16le(0);
}

function readStandard(r: ByteReader): FileStandardInformation {
  const v = {
    allocationSize: r.u64le(),
    endOfFile: r.u64le(),
    numberOfLinks: r.u32le(),
    deletePending: r.u8() !== 0,
    directory: r.u8() !== 0,
  };
  r.skip(2, "reserved");
  return v;
}

/** Encodes FileBasicInformation (40 bytes). */
export function encodeFileBasicInformation(v: FileBasicInformation): Buffer {
  return writeBasic(new ByteWriter(BASIC_SIZE), v).toBuffer();
}

/** Decodes FileBasicInformation from the start of an info buffer. */
export function decodeFileBasicInformation(buffer: Buffer): FileBasicInformation {
  return decoding("FileBasicInformation", () => readBasic(new ByteReader(buffer, "FileBasicInformation")));
}

/** Encodes FileStandardInformation (24 bytes). */
export function encodeFileStandardInformation(v: FileStandardInformation): Buffer {
  return writeStandard(new ByteWriter(STANDARD_SIZE), v).toBuffer();
}

/** Decodes FileStandardInformation from the start of an info buffer. */
export function decodeFileStandardInformation(buffer: Buffer): FileStandardInformation {
  return decoding("FileStandardInformation", () =>
    readStandard(new ByteReader(buffer, "FileStandardInformation")),
  );
}

/** Encodes FileAllInformation. */
export function encodeFileAllInformation(v: FileAllInformation): Buffer {
  const name = Buffer.from(v.fileName, "utf16le");
  check(name.length <= Cap.NAME, "FileAllInformation: name over its cap");
  const w = new ByteWriter(ALL_FIXED + name.length);
  writeBasic(w, v.basic);
  writeStandard(w, v.standard);
  return w
    .u64le(v.indexNumber)
    .u32le(v.eaSize)
    .u32le(v.accessFlags)
    .u64le(v.currentByteOffset)
    .u32le(v.mode)
    .u32le(v.alignmentRequirement)
    .u32le(name.length)
    .bytes(name)
    .toBuffer();
}

/** Decodes FileAllInformation; a name cut short by STATUS_BUFFER_OVERFLOW is a malformed packet. */
export function decodeFileAllInformation(buffer: Buffer): FileAllInformation {
  return decoding("FileAllInformation", () => {
    const r = new ByteReader(buffer, "FileAllInformation");
    const basic = readBasic(r);
    const standard = readStandard(r);
    const indexNumber = r.u64le();
    const eaSize = r.u32le();
    const accessFlags = r.u32le();
    const currentByteOffset = r.u64le();
    const mode = r.u32le();
    const alignmentRequirement = r.u32le();
    const nameLength = r.u32le();
    check(nameLength <= Cap.NAME, `FileAllInformation: a name of ${nameLength} bytes, over its cap`);
    const fileName = r.utf16le(nameLength, "FileName");
    return {
      basic,
      standard,
      indexNumber,
      eaSize,
      accessFlags,
      currentByteOffset,
      mode,
      alignmentRequirement,
      fileName,
    };
  });
}

/** Encodes FileFsSizeInformation (24 bytes). */
export function encodeFileFsSizeInformation(v: FileFsSizeInformation): Buffer {
  return new ByteWriter(24)
    .u64le(v.totalAllocationUnits)
    .u64le(v.availableAllocationUnits)
    .u32le(v.sectorsPerAllocationUnit)
    .u32le(v.bytesPerSector)
    .toBuffer();
}

/** Decodes FileFsSizeInformation. */
export function decodeFileFsSizeInformation(buffer: Buffer): FileFsSizeInformation {
  return decoding("FileFsSizeInformation", () => {
    const r = new ByteReader(buffer, "FileFsSizeInformation");
    return {
      totalAllocationUnits: r.u64le(),
      availableAllocationUnits: r.u64le(),
      sectorsPerAllocationUnit: r.u32le(),
      bytesPerSector: r.u32le(),
    };
  });
}

/** Encodes FileEndOfFileInformation (MS-FSCC 2.4.14): the new size. */
export function encodeFileEndOfFileInformation(endOfFile: bigint): Buffer {
  return new ByteWriter(8).u64le(endOfFile).toBuffer();
}

/** Decodes FileEndOfFileInformation. */
export function decodeFileEndOfFileInformation(buffer: Buffer): bigint {
  return decoding("FileEndOfFileInformation", () =>
    new ByteReader(buffer, "FileEndOfFileInformation").u64le(),
  );
}

/** Encodes FileDispositionInformation (MS-FSCC 2.4.11): delete on close. */
export function encodeFileDispositionInformation(deletePending: boolean): Buffer {
  return Buffer.from([deletePending ? 1 : 0]);
}

/** Decodes FileDispositionInformation. */
export function decodeFileDispositionInformation(buffer: Buffer): boolean {
  return decoding(
    "FileDispositionInformation",
    () => new ByteReader(buffer, "FileDispositionInformation").u8() !== 0,
  );
}

/** Encodes FileRenameInformation, type 2 (MS-FSCC 2.4.37.2). */
export function encodeFileRenameInformation(v: FileRenameInformation): Buffer {
  const name = Buffer.from(v.fileName, "utf16le");
  check(name.length <= Cap.NAME, "FileRenameInformation: name over its cap");
  return new ByteWriter(20 + name.length)
    .u8(v.replaceIfExists ? 1 : 0)
    .zeros(7)
    .u64le(v.rootDirectory)
    .u32le(name.length)
    .bytes(name)
    .toBuffer();
}

/** Decodes FileRenameInformation, type 2. */
export function decodeFileRenameInformation(buffer: Buffer): FileRenameInformation {
  return decoding("FileRenameInformation", () => {
    const r = new ByteReader(buffer, "FileRenameInformation");
    const replaceIfExists = r.u8() !== 0;
    r.skip(7, "reserved");
    const rootDirectory = r.u64le();
    const length = r.u32le();
    check(length <= Cap.NAME, `FileRenameInformation: a name of ${length} bytes, over its cap`);
    return { replaceIfExists, rootDirectory, fileName: r.utf16le(length, "FileName") };
  });
}
