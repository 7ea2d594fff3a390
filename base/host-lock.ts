/**
 * A host-wide lock for processes that list something shared and then change it on what they saw:
 * sumac's `inet sumac` table on a workstation (actors/firewall/host-lock.ts) and the agents'
 * `inet sumac_agent` table on a target (agent/server/firewall.ts). nftables cannot delete a table
 * only when it is empty, so a decision taken on a listing holds only while no other process
 * changes the table: each takes this lock across its listing and its change.
 *
 * It is a `flock(2)` lock on a file, taken for this process's open file description: Node has no
 * flock, so the `flock` program (util-linux, busybox) is started with that description as its fd 3
 * and locks it, then exits; the lock stays with the description, which only this process holds
 * now (Node opens files close-on-exec, so no other child inherits it). Closing the file releases
 * the lock, and so does the kernel when the process dies: no stale lock to judge.
 */
import { spawn } from "node:child_process";
import { constants } from "node:fs";
import { mkdir, open, type FileHandle } from "node:fs/promises";
import { dirname } from "node:path";
import { withDeadline } from "./deadline.ts";
import { SumacError } from "./errors.ts";
import { firstLine } from "./text.ts";

/** Why a lock could not be taken: no `flock` program, no right to open the file, anything else, time. */
export type HostLockFailure = "tool-missing" | "not-permitted" | "failed" | "timeout";

/** The codes of {@link HostLockError}, one for each {@link HostLockFailure}. */
export type HostLockErrorCode =
  "HOST_LOCK_TOOL_MISSING" | "HOST_LOCK_NOT_PERMITTED" | "HOST_LOCK_FAILED" | "TIMEOUT";

/** What a lock rejects with unless its user makes its own errors ({@link HostLockOptions.error}). */
export class HostLockError extends SumacError<HostLockErrorCode> {}

const CODES: Readonly<Record<HostLockFailure, HostLockErrorCode>> = {
  "tool-missing": "HOST_LOCK_TOOL_MISSING",
  "not-permitted": "HOST_LOCK_NOT_PERMITTED",
  failed: "HOST_LOCK_FAILED",
  timeout: "TIMEOUT",
};

/** Releases a lock taken by {@link HostLock.acquire}; settles once the file is closed. */
export type Release = () => Promise<void>;

export interface HostLock {
  /**
   * Waits for the lock. Rejects past its deadline (`timeout`), with the signal's reason when
   * aborted, and `tool-missing` without a `flock` program, `not-permitted` when the lock file
   * cannot be opened for lack of rights, `failed` otherwise.
   */
  acquire(signal?: AbortSignal): Promise<Release>;
}

export interface HostLockOptions {
  /** The lock file; its directory is made when missing (mode 0755), the file mode 0600. */
  readonly path: string;
  /** How long {@link HostLock.acquire} waits for the lock. */
  readonly waitMs: number;
  /** What the lock is, for messages: e.g. "the firewall lock". */
  readonly name: string;
  /** Who holds it when it is not free, for the timeout's message: e.g. "another sumac changing the table". */
  readonly heldBy: string;
  /** Why `flock` is needed, for the message when it is missing. */
  readonly needs: string;
  /** Makes the errors; default a {@link HostLockError} with the failure's code. */
  readonly error?: (failure: HostLockFailure, message: string, options?: ErrorOptions) => Error;
  /** The flock program; default `flock` from PATH (tests name one that does not exist). */
  readonly flock?: string;
}

/** A `flock(2)` lock on `options.path` (never through a symbolic link). */
export function createHostLock(options: HostLockOptions): HostLock {
  const { path, waitMs, name } = options;
  const flock = options.flock ?? "flock";
  const error =
    options.error ??
    ((failure: HostLockFailure, message: string, opts?: ErrorOptions): Error =>
      new HostLockError(CODES[failure], message, opts));

  async function openFile(): Promise<FileHandle> {
    try {
      await mkdir(dirname(path), { recursive: true, mode: 0o755 });
      return await open(path, constants.O_RDWR | constants.O_CREAT | constants.O_NOFOLLOW, 0o600);
    } catch (cause) {
      const code = (cause as NodeJS.ErrnoException).code ?? "";
      const why = `cannot open ${name} ${path}: ${(cause as Error).message}`;
      if (code === "EACCES" || code === "EPERM" || code === "EROFS")
        throw error("not-permitted", why, { cause });
      throw error("failed", why, { cause });
    }
  }

  /** Runs `flock --exclusive 3` on the file's description; settles when the child has exited. */
  function lock(file: FileHandle, stop: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      const child = spawn(flock, ["--exclusive", "3"], { stdio: ["ignore", "ignore", "pipe", file.fd] });
      let stderr = "";
      child.stderr?.setEncoding("utf8");
      child.stderr?.on("data", (chunk: string) => {
        if (stderr.length < 4096) stderr += chunk;
      });
      const kill = (): void => void child.kill("SIGKILL");
      stop.addEventListener("abort", kill, { once: true });
      let failed: Error | undefined;
      child.on("error", (cause: NodeJS.ErrnoException) => {
        failed =
          cause.code === "ENOENT"
            ? error("tool-missing", `flock (util-linux) is not installed: ${options.needs}`, { cause })
            : error("failed", `flock ${path}: ${cause.message}`, { cause });
      });
      child.on("close", (exitCode) => {
        stop.removeEventListener("abort", kill);
        if (failed !== undefined) return reject(failed);
        if (stop.aborted) return reject(stop.reason as Error);
        if (exitCode === 0) return resolve();
        const said = firstLine(stderr) || `exit code ${String(exitCode)}`;
        reject(error("failed", `flock ${path}: ${said}`));
      });
    });
  }

  return {
    async acquire(signal?: AbortSignal): Promise<Release> {
      if (signal?.aborted === true) throw signal.reason;
      const file = await openFile();
      const timeout = error(
        "timeout",
        `${name} ${path} was not free within ${waitMs} ms (${options.heldBy})`,
      );
      try {
        // Settles only once flock has exited, so that closing the file below releases the lock
        // even when flock took it just as it was killed.
        await withDeadline({ ms: waitMs, timeout, signal, waitForWork: true }, (stop) => lock(file, stop));
      } catch (failure) {
        await file.close();
        throw failure;
      }
      let released: Promise<void> | undefined;
      return () => (released ??= file.close());
    },
  };
}
