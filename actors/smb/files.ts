/**
 * The file channel of a Windows target (actors/remote.ts's FileChannel) over SMB: the run's
 * directory under `ADMIN$\Temp\sumac` by default, uploads, removal. The target machine does not
 * know whether it talks to this or to SSH.
 *
 * Paths are written as POSIX paths whose first component is the share: `/ADMIN$/Temp/sumac/<run>`
 * is `\\host\ADMIN$\Temp\sumac\<run>`. The same rule as over SSH holds: every path strictly inside
 * the run root, refused otherwise (`PATH_REFUSED`).
 *
 * Differences from SSH, on purpose:
 * - Windows files have no POSIX mode: `mode` is accepted and ignored. The run root, the run
 *   directory and what `createPrivateDir` makes get a protected DACL instead, SYSTEM and
 *   Administrators only; an existing one must be owned by one of them or the account, and so must
 *   the entries of the run root (run-dir.ts): `C:\Windows\Temp` lets ordinary users create files
 *   in its subfolders.
 * - An upload is read back for its SHA-256 only when the caller asks (`checkOnTarget: true`):
 *   every message of the transfer is signed (or encrypted), so what arrives is what was sent; a
 *   read back only re-checks the server's disk, and costs as much as the upload.
 * - An upload goes to `<name>.part` (one fixed name per file, overwritten) and is renamed into
 *   place at its end, so a retry after a lost connection replaces the partial file of the failed
 *   attempt and nothing of it is left.
 */
import { createReadStream } from "node:fs";
import { posix } from "node:path";
import type { Readable } from "node:stream";
import { createHash } from "node:crypto";
import type { FileChannel, FileOpOptions, PutOptions, PutResult } from "../remote.ts";
import { RemoteHashMismatchError, RemotePathRefusedError } from "../remote-errors.ts";
import { checkRunName, insideRunRoot } from "../ssh/files.ts";
import type { Acl, SecurityDescriptor } from "./codec/security-descriptor.ts";
import { preparePrivateDir, prepareRunDir, type ShareCall } from "./run-dir.ts";

/** Deadline of the small operations when none is given (as over SSH). */
export const DEFAULT_OP_TIMEOUT_MS = 30_000;
/** Deadline of an upload and its check when none is given. */
export const DEFAULT_PUT_TIMEOUT_MS = 5 * 60_000;
/** Where runs' directories go on a Windows target unless the job says otherwise. */
export const DEFAULT_WINDOWS_RUN_ROOT = "/ADMIN$/Temp/sumac";

/** Options of every call on a share. */
export type ShareCallOptions = ShareCall;

/** What this channel needs of one connected share (sumac's SMB client's tree implements it). */
export interface SmbShareFiles {
  writeFile(
    path: string,
    source: Buffer | Readable,
    options: ShareCallOptions,
  ): Promise<{ bytes: number; sha256: string }>;
  readFile(path: string, options: ShareCallOptions & { maxBytes: number }): Promise<Buffer>;
  stat(path: string, options: ShareCallOptions): Promise<{ size: bigint; directory: boolean } | undefined>;
  mkdirp(path: string, options: ShareCallOptions): Promise<void>;
  mkdir(path: string, options: ShareCallOptions): Promise<{ created: boolean; reparsePoint: boolean }>;
  list(path: string, options: ShareCallOptions): Promise<readonly { name: string; reparsePoint: boolean }[]>;
  getSecurity(
    path: string,
    options: ShareCallOptions & { owner?: boolean; dacl?: boolean },
  ): Promise<SecurityDescriptor>;
  setDacl(path: string, dacl: Acl, options: ShareCallOptions & { protected: boolean }): Promise<void>;
  remove(path: string, options: ShareCallOptions): Promise<void>;
  removeTree(path: string, options: ShareCallOptions): Promise<void>;
  rename(from: string, to: string, options: ShareCallOptions & { replace?: boolean }): Promise<void>;
}

/** Opens a share of the target by name (`ADMIN$`, `C$`), once per share the channel uses. */
export type ShareOpener = (share: string, options: ShareCallOptions) => Promise<SmbShareFiles>;

/** A run root as `/SHARE/dir...`: a share and at least one directory under it. */
export function checkWindowsRunRoot(root: string): string {
  const p = posix.normalize(root.replaceAll("\\", "/"));
  const parts = p.split("/").filter((s) => s !== "");
  if (!p.startsWith("/") || parts.length < 2 || parts.some((s) => s === "..") || /[\0-\x1f]/.test(p))
    throw new RemotePathRefusedError(
      `Windows run root ${JSON.stringify(root)} must be /SHARE/directory (e.g. /ADMIN$/Temp/sumac)`,
    );
  return `/${parts.join("/")}`;
}

/** The share and the share-relative path (with `\`) of a channel path. */
function split(path: string): { share: string; inShare: string } {
  const [share = "", ...rest] = path.split("/").filter((s) => s !== "");
  return { share, inShare: rest.join("\\") };
}

function callOptions(options: FileOpOptions | undefined, defaultMs: number): ShareCallOptions {
  return { timeoutMs: options?.timeoutMs ?? defaultMs, signal: options?.signal };
}

/**
 * A FileChannel over one SMB connection. `close` is called once the channel is done with; it
 * logs off and closes the connection (the caller's).
 */
/** The SMB file channel: the FileChannel, and reading a small file back from the run root. */
export interface SmbFileChannel extends FileChannel {
  /**
   * The whole of a file inside the run root (OUTPUT_TOO_LARGE over `maxBytes`), or undefined when
   * there is nothing at `remotePath`: how the agent's words come back from a Windows target.
   */
  read(remotePath: string, options: FileOpOptions & { maxBytes: number }): Promise<Buffer | undefined>;
  /** The size of a file in the run root, or undefined when there is none (or a directory). */
  size(remotePath: string, options?: FileOpOptions): Promise<number | undefined>;
  /** The names in a directory of the run root (or the root itself); none when it is not there. */
  list(remotePath: string, options?: FileOpOptions): Promise<string[]>;
  /**
   * Creates (or, when it exists and is sumac's, reuses) a directory inside the run root, each level
   * private as a run directory (run-dir.ts): made with no link followed, an existing level's owner
   * checked, the private DACL set on every level; what the last level holds is checked too.
   * Levels are safe names as run names are. Resolves to the channel path.
   *
   * @example
   * const logDir = await files.createPrivateDir(`${files.runRoot}/logs/${runId}`, { signal });
   */
  createPrivateDir(remotePath: string, options?: FileOpOptions): Promise<string>;
}

export function smbFileChannel(options: {
  readonly openShare: ShareOpener;
  readonly close: () => Promise<void>;
  readonly runRoot?: string;
  /**
   * Told when the run directory goes without its private DACL (a server without security
   * descriptors, or one that keeps another DACL); Node's process warning when not given.
   */
  readonly onWarning?: (line: string) => void;
}): SmbFileChannel {
  const runRoot = checkWindowsRunRoot(options.runRoot ?? DEFAULT_WINDOWS_RUN_ROOT);
  const warn = options.onWarning ?? ((line: string) => process.emitWarning(line, "SumacSmbWarning"));
  const shares = new Map<string, Promise<SmbShareFiles>>();
  const shareOf = (name: string, call: ShareCallOptions): Promise<SmbShareFiles> => {
    let share = shares.get(name);
    if (share === undefined) {
      share = options.openShare(name, call);
      // A failed open is not kept: the next call tries again.
      share.catch(() => shares.delete(name));
      shares.set(name, share);
    }
    return share;
  };
  const at = async (path: string, call: ShareCallOptions) => {
    const { share, inShare } = split(insideRunRoot(runRoot, path));
    return { files: await shareOf(share, call), inShare, share };
  };

  return {
    runRoot,
    async createRunDir(run, opts) {
      const call = callOptions(opts, DEFAULT_OP_TIMEOUT_MS);
      const dir = insideRunRoot(runRoot, posix.join(runRoot, checkRunName(run)));
      const { files, inShare, share } = await at(dir, call);
      const root = split(runRoot).inShare;
      const label = (path: string): string => `/${share}/${path.replaceAll("\\", "/")}`;
      const subdirs = (opts?.subdirs ?? []).map(checkRunName);
      await prepareRunDir(files, { root, dir: inShare, subdirs }, call, label, warn);
      return dir;
    },
    async createPrivateDir(remotePath, opts) {
      const call = callOptions(opts, DEFAULT_OP_TIMEOUT_MS);
      const dir = insideRunRoot(runRoot, remotePath);
      const levels = dir
        .slice(runRoot.length + 1)
        .split("/")
        .map(checkRunName);
      const { files, share } = await at(dir, call);
      const label = (path: string): string => `/${share}/${path.replaceAll("\\", "/")}`;
      await preparePrivateDir(files, { root: split(runRoot).inShare, levels }, call, label, warn);
      return dir;
    },
    async mkdir(remotePath, opts) {
      const call = callOptions(opts, DEFAULT_OP_TIMEOUT_MS);
      const { files, inShare } = await at(remotePath, call);
      await files.mkdirp(inShare, call);
    },
    async put(source, remotePath, opts: PutOptions): Promise<PutResult> {
      const call = callOptions(opts, DEFAULT_PUT_TIMEOUT_MS);
      const target = insideRunRoot(runRoot, remotePath);
      const { files, inShare } = await at(target, call);
      const part = `${inShare}.part`;
      const input = typeof source === "string" ? createReadStream(source) : source;
      try {
        const sent = await files.writeFile(part, input, call);
        if (opts.sha256 !== undefined && opts.sha256 !== sent.sha256)
          throw new RemoteHashMismatchError(
            `${target}: the content has SHA-256 ${sent.sha256}, expected ${opts.sha256}`,
          );
        await files.rename(part, inShare, { ...call, replace: true });
        if (opts.checkOnTarget === true) {
          const back = await files.readFile(inShare, { ...call, maxBytes: sent.bytes });
          const sha256 = createHash("sha256").update(back).digest("hex");
          if (back.length !== sent.bytes || sha256 !== sent.sha256)
            throw new RemoteHashMismatchError(`${target}: the written file differs from what was sent`);
        }
        return sent;
      } catch (error) {
        // Best effort within what is left of the deadline: the retry replaces it anyway.
        if (!(call.signal?.aborted ?? false))
          await files.remove(part, { timeoutMs: 5_000, signal: call.signal }).catch(() => undefined);
        throw error;
      } finally {
        if (!Buffer.isBuffer(input)) input.destroy();
      }
    },
    async remove(remotePath, opts) {
      const call = callOptions(opts, DEFAULT_OP_TIMEOUT_MS);
      const { files, inShare } = await at(remotePath, call);
      const info = await files.stat(inShare, call);
      if (info === undefined) return;
      if (info.directory) await files.removeTree(inShare, call);
      else await files.remove(inShare, call);
    },
    async read(remotePath, opts) {
      const call = callOptions(opts, DEFAULT_OP_TIMEOUT_MS);
      const { files, inShare } = await at(remotePath, call);
      const info = await files.stat(inShare, call);
      if (info === undefined || info.directory) return undefined;
      return files.readFile(inShare, { ...call, maxBytes: opts.maxBytes });
    },
    async size(remotePath, opts) {
      const call = callOptions(opts, DEFAULT_OP_TIMEOUT_MS);
      const { files, inShare } = await at(remotePath, call);
      const info = await files.stat(inShare, call);
      return info === undefined || info.directory ? undefined : Number(info.size);
    },
    async list(remotePath, opts) {
      const call = callOptions(opts, DEFAULT_OP_TIMEOUT_MS);
      const path = remotePath === runRoot ? runRoot : insideRunRoot(runRoot, remotePath);
      const { share, inShare } = split(path);
      const files = await shareOf(share, call);
      const info = await files.stat(inShare, call);
      if (info === undefined || !info.directory) return [];
      return (await files.list(inShare, call)).map((e) => e.name);
    },
    close: () => options.close(),
  };
}
