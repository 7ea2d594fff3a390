/**
 * A tree connect (MS-SMB2 3.2.4.2.4, 3.2.5.5) and what callers do on it: files on a disk share
 * (ADMIN$, C$), named pipes on IPC$.
 */
import type { Readable } from "node:stream";
import { Command } from "../codec/header.ts";
import { Dialect } from "../codec/negotiate.ts";
import {
  decodeTreeConnectResponse,
  encodeTreeConnectRequest,
  encodeTreeDisconnect,
  ShareFlag,
} from "../codec/tree-connect.ts";
import { SmbStatusError } from "../codec/status.ts";
import type { CallOptions } from "./connection.ts";
import { SmbConfigError, SmbNegotiationError } from "./errors.ts";
import {
  list,
  mkdir,
  mkdirp,
  remove,
  removeTree,
  rename,
  setSize,
  stat,
  type DirectoryEntry,
  type FileStat,
  type MadeDirectory,
} from "./file-ops.ts";
import { getSecurity, setDacl, type SecurityParts } from "./security-ops.ts";
import type { Acl, SecurityDescriptor } from "../codec/security-descriptor.ts";
import { readFile, readFileStream, writeFile } from "./file-transfer.ts";
import { wirePath } from "./paths.ts";
import { openPipe, type SmbPipe } from "./pipe.ts";
import { TreeIo, type TreeContext } from "./tree-io.ts";

export type { TreeContext } from "./tree-io.ts";
export type { DirectoryEntry, FileStat, MadeDirectory } from "./file-ops.ts";
export type { SecurityParts } from "./security-ops.ts";

/** TREE_CONNECT to `\\host\share`; the tree is encrypted when the session or the share says so. */
export async function connectTree(ctx: TreeContext, share: string, options: CallOptions): Promise<SmbTree> {
  if (!/^[^\\/:*?"<>|\0]{1,80}$/.test(share))
    throw new SmbConfigError(`a share name ${JSON.stringify(share)}`);
  const path = `\\\\${ctx.host}\\${share}`;
  const response = await ctx.conn.send(
    {
      command: Command.TREE_CONNECT,
      // MS-SMB2 3.2.4.1.1: on 3.1.1 TREE_CONNECT is signed even when the session does not sign.
      sign: ctx.negotiated.dialect === Dialect.SMB_3_1_1,
      body: encodeTreeConnectRequest({ flags: 0, path }),
      encrypt: ctx.session.encryptAll,
    },
    options,
  );
  const status = response.header.status >>> 0;
  if (status !== 0) throw new SmbStatusError(`TREE_CONNECT ${path}`, status);
  const answer = decodeTreeConnectResponse(response.message);
  const treeId = response.header.treeId ?? 0;
  const shareEncrypts = (answer.shareFlags & ShareFlag.ENCRYPT_DATA) !== 0;
  if (shareEncrypts && ctx.negotiated.cipher === undefined) {
    // MS-SMB2 3.2.5.5: a client that cannot encrypt may not use the share.
    throw new SmbNegotiationError(`${path} requires encryption, which this connection cannot do`);
  }
  return new SmbTree(new TreeIo(ctx, share, treeId, ctx.session.encryptAll || shareEncrypts));
}

/**
 * One share of a connected client. Paths are relative to the share, with `/` or `\`.
 *
 * @example
 * const tree = await client.treeConnect("ADMIN$", { timeoutMs: 10_000 });
 * await tree.mkdirp("Temp/sumac", { timeoutMs: 10_000 });
 * const { sha256 } = await tree.writeFile("Temp/sumac/a.bin", data, { timeoutMs: 60_000 });
 */
export class SmbTree {
  private readonly io: TreeIo;

  constructor(io: TreeIo) {
    this.io = io;
  }

  get share(): string {
    return this.io.share;
  }

  /** Its requests are encrypted. */
  get encrypted(): boolean {
    return this.io.encrypted;
  }

  /** The TreeId the server gave. */
  get treeId(): number {
    return this.io.treeId;
  }

  /** Creates or overwrites `path` with `source`; WRITEs are pipelined. */
  async writeFile(
    path: string,
    source: Buffer | Readable | AsyncIterable<Buffer>,
    options: CallOptions & { onProgress?: (bytes: number) => void },
  ): Promise<{ bytes: number; sha256: string }> {
    return writeFile(this.io, wirePath(path), source, options);
  }

  /** The whole file; OUTPUT_TOO_LARGE when over `maxBytes`. */
  async readFile(path: string, options: CallOptions & { maxBytes: number }): Promise<Buffer> {
    return readFile(this.io, wirePath(path), options);
  }

  /** The file chunk by chunk (READs ahead of the consumer); the handle closes when it ends or is left. */
  async *readFileStream(path: string, options: CallOptions): AsyncGenerator<Buffer> {
    yield* readFileStream(this.io, wirePath(path), options);
  }

  /** Size and kind, or undefined when there is nothing at `path`. */
  async stat(path: string, options: CallOptions): Promise<FileStat | undefined> {
    return stat(this.io, wirePath(path), options);
  }

  /** The entries of a directory, without "." and "..". */
  async list(path: string, options: CallOptions): Promise<DirectoryEntry[]> {
    return list(this.io, wirePath(path), options);
  }

  /** Creates the directory and its missing parents. */
  async mkdirp(path: string, options: CallOptions): Promise<void> {
    return mkdirp(this.io, wirePath(path), options);
  }

  /**
   * Creates one directory (its parent must exist) unless one is there; says whether this call
   * created it, and whether what is there is a junction or symbolic link (never followed).
   */
  async mkdir(path: string, options: CallOptions): Promise<MadeDirectory> {
    return mkdir(this.io, wirePath(path), options);
  }

  /**
   * The owner and/or DACL of `path` (both when neither is asked for), of a link itself when
   * `path` is one (MS-SMB2 2.2.37, InfoType SECURITY).
   */
  async getSecurity(path: string, options: CallOptions & SecurityParts): Promise<SecurityDescriptor> {
    return getSecurity(this.io, wirePath(path), options);
  }

  /**
   * Replaces the DACL of `path` (of a link itself when `path` is one); `protected` stops
   * inheritance from the parent (MS-SMB2 2.2.39, InfoType SECURITY). Read it back with
   * {@link getSecurity} to see what the server kept.
   *
   * @example
   * await tree.setDacl("Temp/sumac/run-1", privateDirectoryDacl(), { protected: true, timeoutMs: 10_000 });
   */
  async setDacl(
    path: string,
    dacl: Acl,
    options: CallOptions & { readonly protected: boolean },
  ): Promise<void> {
    return setDacl(this.io, wirePath(path), dacl, options);
  }

  /** Deletes a file (delete on close); a missing one is no error. */
  async remove(path: string, options: CallOptions): Promise<void> {
    return remove(this.io, wirePath(path), options);
  }

  /** Deletes a directory and all it holds, or a file; a missing one is no error. */
  async removeTree(path: string, options: CallOptions): Promise<void> {
    return removeTree(this.io, wirePath(path), options);
  }

  /** Renames within the share; `replace` overwrites an existing target. */
  async rename(from: string, to: string, options: CallOptions & { replace?: boolean }): Promise<void> {
    return rename(this.io, wirePath(from), wirePath(to), options);
  }

  /** Sets the file's size (truncates or extends with zeros). */
  async setSize(path: string, size: bigint | number, options: CallOptions): Promise<void> {
    return setSize(this.io, wirePath(path), BigInt(size), options);
  }

  /** Opens a named pipe (on IPC$): "svcctl", "srvsvc". */
  async openPipe(name: string, options: CallOptions): Promise<SmbPipe> {
    return openPipe(this.io, name, options);
  }

  /** TREE_DISCONNECT (MS-SMB2 2.2.11). */
  async disconnect(options: CallOptions): Promise<void> {
    await this.io.call(Command.TREE_DISCONNECT, encodeTreeDisconnect(), "TREE_DISCONNECT", options);
  }
}
