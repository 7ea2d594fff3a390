/**
 * One process at a time per state directory: two in-process buses appending to the same files
 * would interleave their revisions and sequences. The lock is a file holding the owner's pid,
 * created exclusively; a lock left by a process that no longer runs (a crash) is taken over.
 */
import { errorClass } from "../base/errors.ts";
import { openSync, readFileSync, unlinkSync, writeSync, closeSync } from "node:fs";
import { join } from "node:path";

/** The state directory is in use by another bus (in this process or another one). */
export class StateDirLockedError extends errorClass("STATE_DIR_LOCKED") {
  readonly pid: number;
  constructor(dir: string, pid: number) {
    super(`state directory ${dir} is in use by process ${pid}${pid === process.pid ? " (this one)" : ""}`);
    this.pid = pid;
  }
}

const LOCK = "LOCK";

/** Whether a process with this pid runs (EPERM: it runs under another user). */
function running(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Takes the lock of `dir`; returns the function that releases it. */
export function lockStateDir(dir: string): () => void {
  const path = join(dir, LOCK);
  for (let attempt = 0; ; attempt++) {
    try {
      const fd = openSync(path, "wx", 0o600);
      try {
        writeSync(fd, `${process.pid}\n`);
      } finally {
        closeSync(fd);
      }
      let released = false;
      return () => {
        if (released) return;
        released = true;
        try {
          unlinkSync(path);
        } catch {
          // Already gone: nothing to release.
        }
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST" || attempt > 2) throw err;
    }
    let pid = Number.NaN;
    try {
      pid = Number.parseInt(readFileSync(path, "utf8").slice(0, 32), 10);
    } catch {
      // Removed meanwhile: try again.
    }
    if (Number.isSafeInteger(pid) && pid > 0 && running(pid)) throw new StateDirLockedError(dir, pid);
    try {
      unlinkSync(path);
    } catch {
      // Another process took it over first; the next attempt finds out.
    }
  }
}
