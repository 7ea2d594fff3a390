/**
 * Running a firewall tool (`nft`, `netsh`) as an argv, never a shell string, with a deadline, an
 * AbortSignal and a cap on what it may print. The backends take a {@link CommandRunner} so that
 * unit tests feed recorded outputs and the integration test prefixes `ip netns exec NS`.
 *
 * Like `agent/server/firewall.ts`'s `createNftRunner`, plus the signal and the output cap that a
 * long-running workstation process needs (a `show rule` on a Windows host can print megabytes).
 */
import { withDeadline } from "../../base/deadline.ts";
import { spawn } from "node:child_process";
import { FirewallError } from "./firewall.ts";

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

/** The first line of a tool's complaint, for error messages (never the whole output). */
export function firstLine(s: string): string {
  const line = s.trim().split(/\r?\n/, 1)[0] ?? "";
  return line.length > 300 ? `${line.slice(0, 300)}...` : line;
}

/**
 * The error for a failed run of `tool`: no binary, killed at the deadline, output too large, the
 * host refusing (`notPermitted` matched in the output: nft and netsh exit 1 for everything), or
 * any other failure.
 */
export function toolFailure(what: string, out: CommandOutcome, notPermitted: RegExp): FirewallError {
  const said = firstLine(out.stderr) || firstLine(out.stdout) || `exit code ${String(out.exitCode)}`;
  const message = `${what}: ${said}`;
  if (out.missing === true) return new FirewallError("FIREWALL_TOOL_MISSING", message);
  if (out.timedOut === true) return new FirewallError("TIMEOUT", message);
  if (out.tooLarge === true) return new FirewallError("FIREWALL_TOOL_FAILED", message);
  if (notPermitted.test(out.stderr) || notPermitted.test(out.stdout))
    return new FirewallError("FIREWALL_NOT_PERMITTED", message);
  return new FirewallError("FIREWALL_TOOL_FAILED", message);
}

/** Runs calls one at a time in arrival order: a backend lists, then changes, and must not interleave. */
export function createSerialQueue(): <T>(work: () => Promise<T>) => Promise<T> {
  let tail: Promise<unknown> = Promise.resolve();
  return (work) => {
    const next = tail.then(work, work);
    tail = next.catch(() => undefined);
    return next;
  };
}
