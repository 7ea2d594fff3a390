/**
 * The host-wide lock that every sumac process holds while it lists and then changes the `inet
 * sumac` table (docs/firewall.md "One host, several sumac processes"). nftables cannot delete a
 * table only when it is empty, and rule handles start again in a table made anew, so a decision
 * taken on a listing holds only while no other process changes the table: each takes this lock
 * across its listing and its transaction.
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
import { withDeadline } from "../../base/deadline.ts";
import { firstLine } from "./command.ts";
import { FirewallError } from "./firewall.ts";

/** Where the nftables backend's lock lives unless told otherwise (root's, like the table). */
export const DEFAULT_NFT_LOCK_PATH = "/run/sumac/nft.lock";
/** How long a call waits for the lock: a holder runs at most two nft processes of 10 s each. */
export const DEFAULT_LOCK_WAIT_MS = 30_000;

/** Releases a lock taken by {@link HostLock.acquire}; settles once the file is closed. */
export type Release = () => Promise<void>;

export interface HostLock {
  /**
   * Waits for the lock. Rejects with `TIMEOUT` past its deadline, with the signal's reason when
   * aborted, `FIREWALL_TOOL_MISSING` without a `flock` program, `FIREWALL_NOT_PERMITTED` when the
   * lock file cannot be opened for lack of rights.
   */
  acquire(signal?: AbortSignal): Promise<Release>;
}

/**
 * A lock on `path` (its directory made when missing, mode 0755; the file mode 0600, never through
 * a symbolic link).
 */
export function createFlockLock(
  options: { readonly path?: string; readonly waitMs?: number } = {},
): HostLock {
  const path = options.path ?? DEFAULT_NFT_LOCK_PATH;
  const waitMs = options.waitMs ?? DEFAULT_LOCK_WAIT_MS;

  async function openFile(): Promise<FileHandle> {
    try {
      await mkdir(dirname(path), { recursive: true, mode: 0o755 });
      return await open(path, constants.O_RDWR | constants.O_CREAT | constants.O_NOFOLLOW, 0o600);
    } catch (cause) {
      const code = (cause as NodeJS.ErrnoException).code ?? "";
      const why = `cannot open the firewall lock ${path}: ${(cause as Error).message}`;
      if (code === "EACCES" || code === "EPERM" || code === "EROFS")
        throw new FirewallError("FIREWALL_NOT_PERMITTED", why, { cause });
      throw new FirewallError("FIREWALL_TOOL_FAILED", why, { cause });
    }
  }

  /** Runs `flock --exclusive 3` on the file's description; settles when the child has exited. */
  function lock(file: FileHandle, stop: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      const child = spawn("flock", ["--exclusive", "3"], { stdio: ["ignore", "ignore", "pipe", file.fd] });
      let stderr = "";
      child.stderr?.setEncoding("utf8");
      child.stderr?.on("data", (chunk: string) => {
        if (stderr.length < 4096) stderr += chunk;
      });
      const kill = (): void => void child.kill("SIGKILL");
      stop.addEventListener("abort", kill, { once: true });
      let failed: Error | undefined;
      child.on("error", (error: NodeJS.ErrnoException) => {
        failed =
          error.code === "ENOENT"
            ? new FirewallError(
                "FIREWALL_TOOL_MISSING",
                "flock (util-linux) is not installed: sumac's nftables backend locks the host's table with it",
              )
            : new FirewallError("FIREWALL_TOOL_FAILED", `flock ${path}: ${error.message}`);
      });
      child.on("close", (exitCode) => {
        stop.removeEventListener("abort", kill);
        if (failed !== undefined) return reject(failed);
        if (stop.aborted) return reject(stop.reason as Error);
        if (exitCode === 0) return resolve();
        const said = firstLine(stderr) || `exit code ${String(exitCode)}`;
        reject(new FirewallError("FIREWALL_TOOL_FAILED", `flock ${path}: ${said}`));
      });
    });
  }

  return {
    async acquire(signal?: AbortSignal): Promise<Release> {
      if (signal?.aborted === true) throw signal.reason;
      const file = await openFile();
      const timeout = new FirewallError(
        "TIMEOUT",
        `the firewall lock ${path} was not free within ${waitMs} ms (another sumac changing the table)`,
      );
      try {
        // Settles only once flock has exited, so that closing the file below releases the lock
        // even when flock took it just as it was killed.
        await withDeadline({ ms: waitMs, timeout, signal, waitForWork: true }, (stop) => lock(file, stop));
      } catch (error) {
        await file.close();
        throw error;
      }
      let released: Promise<void> | undefined;
      return () => (released ??= file.close());
    },
  };
}
