/**
 * Runs a detect or install command on the target: `/bin/sh -c` (Windows comes later), a clean
 * environment (the agent's own environment may hold what the service manager or SSH session put
 * there, and commands must not depend on it), output capped, stopped with its whole process group
 * when the signal aborts: SIGTERM first, so that an installer can undo what it started, then
 * SIGKILL after a grace.
 */
import { spawn } from "node:child_process";
import { KILL_GRACE_MS } from "../protocol/deadlines.ts";
import { CommandFailedError } from "../protocol/errors.ts";

/** The environment every command gets. */
export const CLEAN_ENV: Readonly<Record<string, string>> = {
  PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
  LANG: "C",
  LC_ALL: "C",
  HOME: "/",
};

export interface CommandOptions {
  readonly cwd: string;
  readonly signal: AbortSignal;
  /** Bytes of stdout and of stderr kept, each; more is counted but dropped. */
  readonly maxOutputBytes: number;
  /** Receives each complete output line (cut at maxLineChars), e.g. to stream it to the log. */
  readonly onLine?: (stream: "stdout" | "stderr", line: string) => void;
  readonly maxLineChars?: number;
  /** Between SIGTERM and SIGKILL to the process group once the signal aborts; default KILL_GRACE_MS. */
  readonly killGraceMs?: number;
}

export interface CommandResult {
  /** The exit code, or -1 when killed by a signal. */
  readonly exitCode: number;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
  /** True when stdout or stderr went past maxOutputBytes. */
  readonly truncated: boolean;
  readonly durationMs: number;
}

/**
 * Runs `command` with `/bin/sh -c`; resolves when it exits, whatever its exit code. When `signal`
 * aborts, the process group gets SIGTERM, and SIGKILL if it has not ended `killGraceMs` later; the
 * promise rejects with the signal's reason once the command has ended (or, should something of it
 * escape its group and hold its output open, shortly after the SIGKILL).
 */
export function runCommand(command: string, options: CommandOptions): Promise<CommandResult> {
  const { cwd, signal, maxOutputBytes, onLine, maxLineChars = 2000 } = options;
  const killGraceMs = options.killGraceMs ?? KILL_GRACE_MS;
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(signal.reason as Error);
      return;
    }
    const started = performance.now();
    // detached: its own process group, so a deadline kills the shell's children too.
    const child = spawn("/bin/sh", ["-c", command], {
      cwd,
      env: CLEAN_ENV,
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
    });
    const kept = { stdout: [] as Buffer[], stderr: [] as Buffer[] };
    const sizes = { stdout: 0, stderr: 0 };
    const partial = { stdout: "", stderr: "" };
    let truncated = false;

    const collect = (stream: "stdout" | "stderr") => (chunk: Buffer) => {
      const room = maxOutputBytes - sizes[stream];
      if (room > 0) kept[stream].push(chunk.subarray(0, room));
      if (chunk.byteLength > room) truncated = true;
      sizes[stream] += chunk.byteLength;
      if (onLine === undefined) return;
      const lines = (partial[stream] + chunk.toString("utf8")).split("\n");
      partial[stream] = (lines.pop() ?? "").slice(0, maxLineChars);
      for (const line of lines) onLine(stream, line.slice(0, maxLineChars));
    };
    child.stdout.on("data", collect("stdout"));
    child.stderr.on("data", collect("stderr"));

    const group = (name: NodeJS.Signals): void => {
      if (child.pid === undefined) return;
      try {
        process.kill(-child.pid, name);
      } catch {
        // Already gone.
      }
    };
    let exited = false;
    let settled = false;
    let killTimer: NodeJS.Timeout | undefined;
    let giveUpTimer: NodeJS.Timeout | undefined;
    const kill = () => {
      group("SIGTERM");
      killTimer = setTimeout(() => {
        group("SIGKILL");
        // The group is dead; output held open by something that left it must not hold the stop.
        giveUpTimer = setTimeout(() => {
          if (!exited) return;
          settled = true;
          reject(signal.reason as Error);
        }, 2000);
      }, killGraceMs);
    };
    signal.addEventListener("abort", kill, { once: true });
    child.once("exit", () => (exited = true));
    const clear = () => {
      signal.removeEventListener("abort", kill);
      clearTimeout(killTimer);
      clearTimeout(giveUpTimer);
    };

    child.on("error", (cause) => {
      clear();
      reject(new CommandFailedError(`cannot run /bin/sh in ${cwd}: ${cause.message}`, { cause }));
    });
    child.on("close", (code, exitSignal) => {
      clear();
      if (settled) return;
      if (onLine !== undefined)
        for (const stream of ["stdout", "stderr"] as const)
          if (partial[stream] !== "") onLine(stream, partial[stream]);
      if (signal.aborted) {
        reject(signal.reason as Error);
        return;
      }
      resolve({
        exitCode: code ?? -1,
        signal: exitSignal,
        stdout: Buffer.concat(kept.stdout).toString("utf8"),
        stderr: Buffer.concat(kept.stderr).toString("utf8"),
        truncated,
        durationMs: Math.round(performance.now() - started),
      });
    });
  });
}
