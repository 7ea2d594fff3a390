/**
 * A lock file beside a file that several processes append to (known_hosts): created with O_EXCL,
 * so one process at a time holds it, whatever host the processes run on when the directory is
 * shared. It holds `<pid> <hostname> <token>`; a holder is known to be gone when its pid is dead on
 * this host, or when the lock is older than `staleMs` (a holder keeps it for milliseconds, so an
 * old lock is one whose process died or hangs on another host). Taking over a stale lock removes
 * it only if it still holds what was judged stale.
 *
 * What a deadline or an abort leaves: nothing. A lock taken just as the caller gave up is removed.
 */
import { randomBytes } from "node:crypto";
import { constants } from "node:fs";
import { open, stat, unlink } from "node:fs/promises";
import { hostname } from "node:os";
import { setTimeout as sleep } from "node:timers/promises";
import { withDeadline } from "../../base/deadline.ts";
import { SshKnownHostsError } from "./errors.ts";

export interface FileLockOptions {
  /** How long to wait for a lock another process holds (default 10 s). */
  readonly timeoutMs?: number;
  /** A lock older than this is taken over (default 30 s). */
  readonly staleMs?: number;
  readonly signal?: AbortSignal | undefined;
}

export const DEFAULT_LOCK_TIMEOUT_MS = 10_000;
export const DEFAULT_STALE_LOCK_MS = 30_000;
/** A lock file is three short words; more is not one of ours. */
const MAX_LOCK_BYTES = 512;

/** Releases a lock: removes the file if it is still this holder's. */
export type ReleaseLock = () => Promise<void>;

interface Holder {
  readonly text: string;
  readonly pid?: number;
  readonly host?: string;
}

function parseHolder(text: string): Holder {
  const [pid, host] = text.slice(0, MAX_LOCK_BYTES).trim().split(" ");
  const n = Number(pid);
  return Number.isSafeInteger(n) && n > 0 && host ? { text, pid: n, host } : { text };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists, under another user.
    return (error as NodeJS.ErrnoException).code !== "ESRCH";
  }
}

/**
 * The lock file's first {@link MAX_LOCK_BYTES} bytes: what a holder writes is far shorter, and
 * anything else in its place (another user's file, a device) is not read further.
 */
async function readLockText(path: string): Promise<string> {
  const file = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  try {
    const buffer = Buffer.alloc(MAX_LOCK_BYTES);
    const { bytesRead } = await file.read(buffer, 0, MAX_LOCK_BYTES, 0);
    return buffer.subarray(0, bytesRead).toString("utf8");
  } finally {
    await file.close();
  }
}

async function readHolder(path: string): Promise<{ holder: Holder; ageMs: number } | undefined> {
  try {
    const [text, st] = await Promise.all([readLockText(path), stat(path)]);
    return { holder: parseHolder(text), ageMs: Date.now() - st.mtimeMs };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
}

function describeHolder(holder: Holder): string {
  return holder.pid === undefined ? "an unknown process" : `pid ${holder.pid} on ${holder.host}`;
}

/**
 * Takes the lock `lockPath` (a file made with O_EXCL), waiting while another live process holds
 * it; resolves with its release. Fails with `KNOWN_HOSTS_INVALID` when it cannot be had within the
 * deadline (the message names the holder), with the signal's reason on abort.
 */
export function acquireFileLock(lockPath: string, options: FileLockOptions = {}): Promise<ReleaseLock> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS;
  const staleMs = options.staleMs ?? DEFAULT_STALE_LOCK_MS;
  const me = `${process.pid} ${hostname()} ${randomBytes(8).toString("hex")}\n`;
  let lastHolder: Holder | undefined;
  const timeout = (): Error =>
    new SshKnownHostsError(
      `cannot lock ${lockPath} within ${timeoutMs} ms: held by ${lastHolder ? describeHolder(lastHolder) : "another process"} (remove the file if that process is gone)`,
    );
  const release: ReleaseLock = async () => {
    const now = await readLockText(lockPath).catch(() => undefined);
    if (now === me) await unlink(lockPath).catch(() => undefined);
  };

  const take = async (stop: AbortSignal): Promise<ReleaseLock> => {
    for (let attempt = 0; ; attempt++) {
      stop.throwIfAborted();
      try {
        const handle = await open(lockPath, "wx", 0o600);
        try {
          await handle.write(me);
        } finally {
          await handle.close();
        }
        if (stop.aborted) {
          await release();
          throw stop.reason as Error;
        }
        return release;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== "EEXIST") {
          if (stop.aborted) throw stop.reason as Error;
          throw new SshKnownHostsError(`cannot create the lock ${lockPath}: ${(error as Error).message}`, {
            cause: error,
          });
        }
      }
      const seen = await readHolder(lockPath).catch(() => undefined);
      if (seen === undefined) continue; // released in between: try again at once
      lastHolder = seen.holder;
      const dead =
        seen.holder.pid !== undefined && seen.holder.host === hostname() && !alive(seen.holder.pid);
      if (dead || seen.ageMs > staleMs) {
        // Removed only if it still holds what was judged stale, not a lock taken since.
        const again = await readLockText(lockPath).catch(() => undefined);
        if (again === seen.holder.text) await unlink(lockPath).catch(() => undefined);
        continue;
      }
      await sleep(Math.min(100, 5 * 2 ** Math.min(attempt, 5)), undefined, { signal: stop });
    }
  };
  return withDeadline({ ms: timeoutMs, timeout, signal: options.signal, dispose: (r) => void r() }, take);
}
