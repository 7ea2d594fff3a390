/**
 * Runs a detect or install command on the target: `/bin/sh -c` on Linux, `cmd /d /s /c` on
 * Windows (command-shell.ts), a clean environment (the agent's own environment may hold what the
 * service manager or SSH session put there, and commands must not depend on it), output capped,
 * stopped with everything it started when the signal aborts. On Linux that is its process group:
 * SIGTERM first, so that an installer can undo what it started, then SIGKILL after a grace. On
 * Windows, which has no such signal for a console program, `taskkill /F /T` ends the tree at once,
 * and again after the grace for what it may have missed.
 */
import { spawn } from "node:child_process";
import { createCommandRunner } from "../../base/command.ts";
import { KILL_GRACE_MS } from "../protocol/deadlines.ts";
import { CommandFailedError } from "../protocol/errors.ts";
import { shellInvocation, taskkillArgv } from "./command-shell.ts";

export { CLEAN_ENV } from "./command-shell.ts";

/** taskkill's own deadline: it ends a tree in well under a second. */
const TASKKILL_TIMEOUT_MS = 10_000;

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
 * Runs `command` with `/bin/sh -c` (Windows: cmd); resolves when it exits, whatever its exit code.
 * When `signal` aborts, the process group gets SIGTERM, and SIGKILL if it has not ended
 * `killGraceMs` later (Windows: taskkill of its tree at both times); the promise rejects with the
 * signal's reason once the command has ended (or, should something of it escape its group and
 * hold its output open, shortly after the SIGKILL).
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
    const windows = process.platform === "win32";
    const shell = shellInvocation(command, process.platform, process.env);
    // detached on Linux: its own process group, so a deadline kills the shell's children too.
    const child = spawn(shell.file, shell.args, {
      cwd,
      env: shell.env,
      detached: shell.detached,
      windowsVerbatimArguments: shell.windowsVerbatimArguments,
      windowsHide: true,
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
      if (windows) {
        // No process groups, and no SIGTERM for a console program: taskkill ends the tree.
        const taskkill = createCommandRunner({ timeoutMs: TASKKILL_TIMEOUT_MS });
        void taskkill(taskkillArgv(child.pid, process.env)).catch(() => undefined);
        return;
      }
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
      reject(new CommandFailedError(`cannot run ${shell.file} in ${cwd}: ${cause.message}`, { cause }));
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
