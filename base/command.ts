/**
 * Running a program as an argv, never a shell string, with a deadline, an AbortSignal and a cap on
 * what it may print: the firewall tools on the workstation (`nft`, `netsh`) and on targets (the
 * agent's `nft`). Callers take a {@link CommandRunner}, so that unit tests feed recorded outputs
 * and integration tests prefix `ip netns exec NS`.
 */
import { spawn } from "node:child_process";
import { withDeadline } from "./deadline.ts";

/** What one run of a tool gave: exit code and output, or why there is none. */
export interface CommandOutcome {
  readonly exitCode: number | null;
  readonly stdout: string;
  readonly stderr: string;
  /** No such program (ENOENT). */
  readonly missing?: boolean;
  /** Killed at the deadline. */
  readonly timedOut?: boolean;
  /** Killed because stdout and stderr together passed the cap. */
  readonly tooLarge?: boolean;
}

export interface RunOptions {
  readonly stdin?: string;
  /** Aborting kills the process and rejects with the signal's reason. */
  readonly signal?: AbortSignal;
}

/** Runs `argv[0]` with the rest as arguments. */
export type CommandRunner = (argv: readonly string[], options?: RunOptions) => Promise<CommandOutcome>;

export const DEFAULT_TIMEOUT_MS = 10_000;
export const DEFAULT_MAX_OUTPUT = 16 * 1024 * 1024;

/**
 * A runner spawning real processes. `prefix` goes before every argv (e.g.
 * `["ip", "netns", "exec", ns]`); at `timeoutMs` the process is killed and the outcome says
 * `timedOut`; past `maxOutputBytes` of output it is killed and the outcome says `tooLarge`.
 */
export function createCommandRunner(
  options: {
    readonly prefix?: readonly string[];
    readonly timeoutMs?: number;
    readonly maxOutputBytes?: number;
  } = {},
): CommandRunner {
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const maxOutput = options.maxOutputBytes ?? DEFAULT_MAX_OUTPUT;
  return (argv, runOptions = {}) => {
    const [file, ...args] = [...(options.prefix ?? []), ...argv];
    if (file === undefined) return Promise.reject(new TypeError("argv is empty"));
    const { signal } = runOptions;
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    const text = (chunks: Buffer[]): string => Buffer.concat(chunks).toString("utf8");
    const expired = new Error(`${file} did not finish within ${timeoutMs} ms`);
    const run = (stop: AbortSignal) =>
      new Promise<CommandOutcome>((resolve) => {
        const child = spawn(file, args, { stdio: ["pipe", "pipe", "pipe"] });
        let size = 0;
        // Answer at once when killing, rather than on "close", which waits for every holder of the
        // pipes (a wrapper's children too).
        const kill = (): void => {
          child.kill("SIGKILL");
          child.stdout.destroy();
          child.stderr.destroy();
        };
        stop.addEventListener("abort", kill, { once: true });
        const collect =
          (into: Buffer[]) =>
          (chunk: Buffer): void => {
            size += chunk.length;
            if (size <= maxOutput) return void into.push(chunk);
            kill();
            const note = `${file} printed more than ${maxOutput} bytes`;
            resolve({ exitCode: null, stdout: text(out), stderr: `${text(err)}${note}`, tooLarge: true });
          };
        child.stdout.on("data", collect(out));
        child.stderr.on("data", collect(err));
        child.stdin.on("error", () => undefined); // EPIPE when the tool exits before reading
        child.stdin.end(runOptions.stdin ?? "");
        child.on("error", (error: NodeJS.ErrnoException) =>
          resolve({
            exitCode: null,
            stdout: text(out),
            stderr: error.message,
            missing: error.code === "ENOENT",
          }),
        );
        child.on("close", (exitCode) => resolve({ exitCode, stdout: text(out), stderr: text(err) }));
      });
    return withDeadline({ ms: timeoutMs, timeout: expired, signal }, run).catch((error: unknown) => {
      if (error !== expired) throw error;
      return { exitCode: null, stdout: text(out), stderr: `${text(err)}${expired.message}`, timedOut: true };
    });
  };
}
