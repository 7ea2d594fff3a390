/**
 * Files of the local transport, with node:fs: the run directory under the run root and the same
 * safety rules as over SSH (actors/ssh/files.ts): every path strictly inside the run root, a root
 * that is not a symbolic link nor writable by group or others, owned by root or this user; removal
 * refuses a path that resolves outside the root. Uploads go to a temporary name, are hashed while
 * written, renamed into place and read back to check the SHA-256.
 */
import { createHash, randomBytes } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { chmod, lstat, mkdir, realpath, rename, rm } from "node:fs/promises";
import { Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { posix } from "node:path";
import type { FileOpOptions, PutOptions, PutResult } from "../remote.ts";
import {
  RemotePathRefusedError,
  RemoteHashMismatchError,
  RemoteTimeoutError,
  RemoteUploadError,
} from "../remote-errors.ts";
import { checkRunName, insideRunRoot } from "../ssh/files.ts";

/** Deadline of the small operations when none is given (as over SSH). */
export const DEFAULT_OP_TIMEOUT_MS = 30_000;
/** Deadline of an upload and its check when none is given. */
export const DEFAULT_PUT_TIMEOUT_MS = 5 * 60_000;

/** A signal that aborts on the caller's signal or at the deadline, and the error for each. */
function deadline(what: string, options: FileOpOptions | undefined, defaultMs: number) {
  const ms = options?.timeoutMs ?? defaultMs;
  const timeout = new RemoteTimeoutError(`${what} did not finish within ${ms} ms`);
  const timer = AbortSignal.timeout(ms);
  const signal = options?.signal ? AbortSignal.any([options.signal, timer]) : timer;
  const reason = (): Error => (timer.aborted ? timeout : (options?.signal?.reason as Error));
  return { signal, reason };
}

/** Runs `work`; rejects with the abort reason as soon as the signal fires (node:fs cannot stop most calls). */
async function bounded<T>(
  what: string,
  options: FileOpOptions | undefined,
  defaultMs: number,
  work: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  const { signal, reason } = deadline(what, options, defaultMs);
  if (signal.aborted) throw reason();
  let onAbort = (): void => undefined;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(reason());
    signal.addEventListener("abort", onAbort, { once: true });
  });
  try {
    return await Promise.race([work(signal), aborted]);
  } catch (error) {
    throw signal.aborted ? reason() : error;
  } finally {
    signal.removeEventListener("abort", onAbort);
  }
}

const uid = (): number => process.getuid?.() ?? 0;

async function checkRoot(root: string): Promise<void> {
  await mkdir(root, { recursive: true, mode: 0o755 });
  const info = await lstat(root);
  if (info.isSymbolicLink() || !info.isDirectory())
    throw new RemotePathRefusedError(`${root} is a symbolic link or not a directory`);
  if (info.uid !== 0 && info.uid !== uid())
    throw new RemotePathRefusedError(`${root} belongs to uid ${info.uid}, neither root nor this user`);
  if ((info.mode & 0o022) !== 0)
    throw new RemotePathRefusedError(
      `${root} is writable by group or others (mode ${(info.mode & 0o777).toString(8)})`,
    );
}

/** Makes (or reuses) `<root>/<run>` and its `subdirs`, mode 0700, owned by this user; returns its path. */
export function createRunDir(
  root: string,
  run: string,
  options?: FileOpOptions & { subdirs?: readonly string[] },
): Promise<string> {
  const dir = insideRunRoot(root, posix.join(root, checkRunName(run)));
  const subdirs = (options?.subdirs ?? []).map((s) => insideRunRoot(root, posix.join(dir, checkRunName(s))));
  return bounded(`preparing ${dir}`, options, DEFAULT_OP_TIMEOUT_MS, async () => {
    await checkRoot(root);
    try {
      await mkdir(dir, { mode: 0o700 });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      const info = await lstat(dir);
      if (info.isSymbolicLink() || !info.isDirectory() || info.uid !== uid())
        throw new RemotePathRefusedError(`${dir} exists and is not this user's directory`, { cause: error });
    }
    await chmod(dir, 0o700);
    for (const sub of subdirs) {
      await mkdir(sub, { mode: 0o700 }).catch((error: unknown) => {
        if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      });
      const info = await lstat(sub);
      if (info.isSymbolicLink() || !info.isDirectory() || info.uid !== uid())
        throw new RemotePathRefusedError(`${sub} exists and is not this user's directory`);
      await chmod(sub, 0o700);
    }
    return dir;
  });
}

export function makeDir(
  root: string,
  path: string,
  options?: FileOpOptions & { mode?: number },
): Promise<void> {
  const p = insideRunRoot(root, path);
  return bounded(`creating ${p}`, options, DEFAULT_OP_TIMEOUT_MS, async () => {
    await mkdir(p, { recursive: true, mode: options?.mode ?? 0o700 });
  });
}

async function sha256Of(path: string, signal: AbortSignal): Promise<string> {
  const hash = createHash("sha256");
  await pipeline(createReadStream(path), hash, { signal });
  return hash.digest("hex");
}

/** Copies `source` to `path` (inside the root) with the mode asked, checked by SHA-256. */
export function putFile(
  root: string,
  source: string | Buffer,
  path: string,
  options: PutOptions,
): Promise<PutResult> {
  const p = insideRunRoot(root, path);
  if (!Number.isInteger(options.mode) || options.mode < 0 || options.mode > 0o7777)
    return Promise.reject(
      new RemoteUploadError(`mode ${String(options.mode)} for ${p} is not a permission mode`),
    );
  const part = `${p}.${randomBytes(6).toString("hex")}.part`;
  return bounded(`upload to ${p}`, options, DEFAULT_PUT_TIMEOUT_MS, async (signal) => {
    const hash = createHash("sha256");
    let bytes = 0;
    const counter = new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        hash.update(chunk);
        bytes += chunk.byteLength;
        callback(null, chunk);
      },
    });
    try {
      const input = typeof source === "string" ? createReadStream(source) : Readable.from([source]);
      try {
        await pipeline(input, counter, createWriteStream(part, { mode: 0o600, flags: "wx" }), { signal });
      } catch (cause) {
        if (signal.aborted) throw cause;
        throw new RemoteUploadError(
          `cannot copy ${typeof source === "string" ? source : "the content"} to ${p}: ${(cause as Error).message}`,
          { cause },
        );
      }
      const sha256 = hash.digest("hex");
      if (options.sha256 !== undefined && options.sha256 !== sha256)
        throw new RemoteHashMismatchError(
          `${p}: the content has SHA-256 ${sha256}, expected ${options.sha256}`,
        );
      await chmod(part, options.mode);
      await rename(part, p);
      // Read back, as the SSH transport checks on the target (unless what uses it checks it).
      if (options.checkOnTarget === false) return { bytes, sha256 };
      const written = await sha256Of(p, signal);
      if (written !== sha256)
        throw new RemoteHashMismatchError(`${p}: the written file differs from what was sent`);
      return { bytes, sha256 };
    } finally {
      await rm(part, { force: true });
    }
  });
}

/**
 * The path to remove, or undefined when there is none; refused when its directory resolves
 * (symbolic links followed) outside the root.
 */
export async function removable(root: string, path: string): Promise<string | undefined> {
  const p = insideRunRoot(root, path);
  try {
    await lstat(p);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
  const realRoot = await realpath(root);
  const realDir = await realpath(posix.dirname(p));
  if (!`${realDir}/`.startsWith(`${realRoot}/`))
    throw new RemotePathRefusedError(`${p} resolves outside ${root} (${realDir}); refusing to remove it`);
  return p;
}

/** Removes `path` with node:fs (this user's rights); a missing path is no error. */
export function removeOwn(root: string, path: string, options?: FileOpOptions): Promise<void> {
  return bounded(`removing ${path}`, options, DEFAULT_OP_TIMEOUT_MS, async () => {
    const p = await removable(root, path);
    if (p !== undefined) await rm(p, { recursive: true, force: true });
  });
}
