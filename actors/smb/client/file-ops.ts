/**
 * File and directory operations on a tree, each a CREATE, what the operation needs, and a CLOSE:
 * stat from CREATE's own answer (MS-SMB2 2.2.14 carries size and attributes), listing with
 * QUERY_DIRECTORY, deletion by delete-on-close (MS-SMB2 2.2.13 FILE_DELETE_ON_CLOSE), renaming
 * and resizing with SET_INFO.
 */
import { Command } from "../codec/header.ts";
import { Access, CreateDisposition, CreateOption, FileAttribute } from "../codec/create.ts";
import { NtStatus, SmbStatusError } from "../codec/status.ts";
import {
  encodeFileEndOfFileInformation,
  encodeFileRenameInformation,
  FileInfoClass,
  InfoType,
} from "../codec/file-info.ts";
import {
  decodeDirectoryEntries,
  decodeQueryDirectoryResponse,
  encodeQueryDirectoryRequest,
  QueryDirectoryFlag,
} from "../codec/query-directory.ts";
import { encodeSetInfoRequest } from "../codec/set-info.ts";
import { check } from "../../wire/bytes.ts";
import { RemotePathRefusedError } from "../../remote-errors.ts";
import { Budget } from "./budget.ts";
import type { CallOptions } from "./connection.ts";
import { SmbOutputTooLargeError } from "./errors.ts";
import { joinWirePath } from "./paths.ts";
import { isMissing, type TreeIo } from "./tree-io.ts";

/** What stat says. */
export interface FileStat {
  readonly size: bigint;
  readonly directory: boolean;
}

/** One entry of a listing. */
export interface DirectoryEntry {
  readonly name: string;
  readonly size: bigint;
  readonly directory: boolean;
  /** A junction or symbolic link itself (FILE_ATTRIBUTE_REPARSE_POINT, MS-FSCC 2.6). */
  readonly reparsePoint: boolean;
}

/** Entries one listing returns at most: a bound on what a server can make the client hold. */
const MAX_LISTING = 100_000;
/** Depth of removeTree at most. */
const MAX_DEPTH = 64;

const ANY_KIND = 0;

/**
 * A name a listing may hold: one component. The server's names build the next path of removeTree,
 * so a separator, a stream (`:`), NUL or an empty name would reach somewhere else (MS-FSCC 2.1.5.2).
 */
const ENTRY_NAME = /^[^\\/:\0]+$/;

/** The body of a SET_INFO of file information (MS-SMB2 2.2.39). */
function setInfo(fileId: Buffer, fileInfoClass: number, buffer: Buffer): Buffer {
  return encodeSetInfoRequest({
    infoType: InfoType.FILE,
    fileInfoClass,
    buffer,
    additionalInformation: 0,
    fileId,
  });
}

/** Size and kind from CREATE's answer; undefined when nothing is at `path`. */
export async function stat(io: TreeIo, path: string, options: CallOptions): Promise<FileStat | undefined> {
  const budget = new Budget(options);
  try {
    return await io.withOpen(
      path,
      { access: Access.FILE_READ_ATTRIBUTES, options: ANY_KIND },
      () => budget.next(),
      (f) => Promise.resolve({ size: f.directory ? 0n : f.endOfFile, directory: f.directory }),
    );
  } catch (err) {
    if (isMissing(err)) return undefined;
    throw err;
  }
}

/** The entries of a directory (QUERY_DIRECTORY until STATUS_NO_MORE_FILES), without "." and "..". */
export async function list(io: TreeIo, path: string, options: CallOptions): Promise<DirectoryEntry[]> {
  const budget = new Budget(options);
  const spec = {
    access: Access.FILE_LIST_DIRECTORY | Access.FILE_READ_ATTRIBUTES | Access.SYNCHRONIZE,
    options: CreateOption.DIRECTORY_FILE,
  };
  return io.withOpen(
    path,
    spec,
    () => budget.next(),
    async (dir) => {
      const out: DirectoryEntry[] = [];
      const outputBufferLength = Math.min(io.maxTransact, 64 * 1024);
      for (let first = true; ; first = false) {
        const body = encodeQueryDirectoryRequest({
          fileInformationClass: FileInfoClass.FileDirectoryInformation,
          flags: first ? QueryDirectoryFlag.RESTART_SCANS : 0,
          fileIndex: 0,
          fileId: dir.fileId,
          pattern: "*",
          outputBufferLength,
        });
        const response = await io.call(
          Command.QUERY_DIRECTORY,
          body,
          `QUERY_DIRECTORY ${path || "\\"}`,
          budget.next(),
          {
            payloadSize: outputBufferLength,
            ok: [NtStatus.NO_MORE_FILES],
          },
        );
        if (response.header.status >>> 0 === NtStatus.NO_MORE_FILES) return out;
        const { output } = decodeQueryDirectoryResponse(response.message);
        for (const e of decodeDirectoryEntries(output, FileInfoClass.FileDirectoryInformation)) {
          if (e.fileName === "." || e.fileName === "..") continue;
          check(ENTRY_NAME.test(e.fileName), `${path}: a listed name ${JSON.stringify(e.fileName)}`);
          const directory = (e.fileAttributes & FileAttribute.DIRECTORY) !== 0;
          const reparsePoint = (e.fileAttributes & FileAttribute.REPARSE_POINT) !== 0;
          out.push({ name: e.fileName, size: directory ? 0n : e.endOfFile, directory, reparsePoint });
        }
        if (out.length > MAX_LISTING)
          throw new SmbOutputTooLargeError(`${path}: over ${MAX_LISTING} entries`);
      }
    },
  );
}

/** Creates each missing directory of `path` (CREATE with FILE_OPEN_IF: an existing one is fine). */
export async function mkdirp(io: TreeIo, path: string, options: CallOptions): Promise<void> {
  const budget = new Budget(options);
  let prefix = "";
  // Each level is opened if it is there and created if not (OPEN, then CREATE): not OPEN_IF, which
  // some servers (impacket's) carry out on a directory as a truncating open and refuse.
  const open = (at: string, disposition: number) =>
    io.withOpen(
      at,
      {
        access: Access.FILE_READ_ATTRIBUTES | Access.SYNCHRONIZE,
        disposition,
        options: CreateOption.DIRECTORY_FILE,
        attributes: FileAttribute.DIRECTORY,
      },
      () => budget.next(),
      async () => {},
    );
  for (const part of path.split("\\").filter((p) => p !== "")) {
    prefix = joinWirePath(prefix, part);
    try {
      await open(prefix, CreateDisposition.OPEN);
      continue;
    } catch (err) {
      if (!isMissing(err)) throw err;
    }
    try {
      await open(prefix, CreateDisposition.CREATE);
    } catch (err) {
      // Made by someone else between the two: it is there now.
      if (!(err instanceof SmbStatusError && err.status === NtStatus.OBJECT_NAME_COLLISION)) throw err;
      await open(prefix, CreateDisposition.OPEN);
    }
  }
}

/** What {@link mkdir} found or made. */
export interface MadeDirectory {
  /** This call created it (CreateAction FILE_CREATED, MS-SMB2 2.2.14). */
  readonly created: boolean;
  /** What is there is a junction or a symbolic link to a directory, opened as itself. */
  readonly reparsePoint: boolean;
}

/**
 * Creates the directory `path` unless one is there already (FILE_OPEN_IF; its parent must
 * exist), and says which. A junction or symbolic link there is opened as itself and reported,
 * never followed, so a caller can refuse a directory that someone else made point elsewhere.
 */
export async function mkdir(io: TreeIo, path: string, options: CallOptions): Promise<MadeDirectory> {
  const budget = new Budget(options);
  // OPEN, then CREATE when missing (as mkdirp): whether this call made it is then known from the
  // disposition that succeeded, not from CreateAction, which some servers (impacket's) only echo.
  const open = (disposition: number) =>
    io.withOpen(
      path,
      {
        access: Access.FILE_READ_ATTRIBUTES | Access.SYNCHRONIZE,
        disposition,
        options: CreateOption.DIRECTORY_FILE | CreateOption.OPEN_REPARSE_POINT,
        attributes: FileAttribute.DIRECTORY,
      },
      () => budget.next(),
      (f) =>
        Promise.resolve({ created: disposition === CreateDisposition.CREATE, reparsePoint: f.reparsePoint }),
    );
  try {
    return await open(CreateDisposition.OPEN);
  } catch (err) {
    if (!isMissing(err)) throw err;
  }
  try {
    return await open(CreateDisposition.CREATE);
  } catch (err) {
    if (!(err instanceof SmbStatusError && err.status === NtStatus.OBJECT_NAME_COLLISION)) throw err;
    return open(CreateDisposition.OPEN);
  }
}

/** Opens `path` for deletion with delete-on-close, and closes it; missing is no error. */
async function deleteOnClose(io: TreeIo, path: string, kind: number, budget: Budget): Promise<void> {
  try {
    const spec = {
      access: Access.DELETE | Access.FILE_READ_ATTRIBUTES,
      // A junction or symbolic link is deleted itself, never what it points to.
      options: kind | CreateOption.DELETE_ON_CLOSE | CreateOption.OPEN_REPARSE_POINT,
    };
    await io.withOpen(
      path,
      spec,
      () => budget.next(),
      async () => {},
    );
  } catch (err) {
    if (!isMissing(err)) throw err;
  }
}

/** Deletes a file by delete-on-close; a missing one is no error. */
export async function remove(io: TreeIo, path: string, options: CallOptions): Promise<void> {
  await deleteOnClose(io, path, CreateOption.NON_DIRECTORY_FILE, new Budget(options));
}

/**
 * Deletes a directory depth first, or a file; a missing one is no error. The share's root is
 * refused. A junction or symbolic link (MS-FSCC 2.1.2) is deleted as a link and never walked into:
 * one planted in the tree by someone with less right than the account must not point the
 * deletion at system files.
 */
export async function removeTree(io: TreeIo, path: string, options: CallOptions): Promise<void> {
  const budget = new Budget(options);
  let held = 0;
  const walk = async (at: string, depth: number): Promise<void> => {
    if (depth > MAX_DEPTH)
      throw new RemotePathRefusedError(`${path}: deeper than ${MAX_DEPTH} levels; refusing to remove it`);
    let found: { directory: boolean; reparsePoint: boolean } | undefined;
    try {
      found = await io.withOpen(
        at,
        { access: Access.FILE_READ_ATTRIBUTES, options: CreateOption.OPEN_REPARSE_POINT },
        () => budget.next(),
        (f) => Promise.resolve({ directory: f.directory, reparsePoint: f.reparsePoint }),
      );
    } catch (err) {
      if (isMissing(err)) return;
      throw err;
    }
    if (found.directory && !found.reparsePoint) {
      const entries = await list(io, at, budget.next());
      // Each level's listing is held while the levels under it are walked: their sum is capped
      // as one listing is, or a server could make 64 levels of MAX_LISTING entries each.
      held += entries.length;
      if (held > MAX_LISTING)
        throw new SmbOutputTooLargeError(`${path}: over ${MAX_LISTING} entries listed along one branch`);
      for (const e of entries) await walk(joinWirePath(at, e.name), depth + 1);
      held -= entries.length;
    }
    await deleteOnClose(
      io,
      at,
      found.directory ? CreateOption.DIRECTORY_FILE : CreateOption.NON_DIRECTORY_FILE,
      budget,
    );
  };
  if (path === "") throw new RemotePathRefusedError("removing a share's root is refused");
  await walk(path, 0);
}

/** Renames within the share (FileRenameInformation); `replace` overwrites an existing target. */
export async function rename(
  io: TreeIo,
  from: string,
  to: string,
  options: CallOptions & { readonly replace?: boolean },
): Promise<void> {
  const budget = new Budget(options);
  const spec = {
    access: Access.DELETE | Access.FILE_READ_ATTRIBUTES | Access.SYNCHRONIZE,
    options: ANY_KIND,
  };
  await io.withOpen(
    from,
    spec,
    () => budget.next(),
    async (f) => {
      const info = encodeFileRenameInformation({
        replaceIfExists: options.replace === true,
        rootDirectory: 0n,
        fileName: to,
      });
      const body = setInfo(f.fileId, FileInfoClass.FileRenameInformation, info);
      await io.call(Command.SET_INFO, body, `RENAME ${from} to ${to}`, budget.next());
    },
  );
}

/** Truncates or extends a file (FileEndOfFileInformation). */
export async function setSize(io: TreeIo, path: string, size: bigint, options: CallOptions): Promise<void> {
  const budget = new Budget(options);
  const spec = {
    access: Access.FILE_WRITE_DATA | Access.SYNCHRONIZE,
    options: CreateOption.NON_DIRECTORY_FILE,
  };
  await io.withOpen(
    path,
    spec,
    () => budget.next(),
    async (f) => {
      const info = encodeFileEndOfFileInformation(size);
      const body = setInfo(f.fileId, FileInfoClass.FileEndOfFileInformation, info);
      await io.call(Command.SET_INFO, body, `SET END OF FILE ${path}`, budget.next());
    },
  );
}
