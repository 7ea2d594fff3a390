/**
 * Commands on this machine for the local transport: `/bin/sh -c` in a child process that leads its
 * own process group, so a deadline or an abort stops the command and everything it started (TERM,
 * then KILL after 5 s), as `timeout -k` does over SSH.
 *
 * `become` as root changes nothing; otherwise the command runs through `sudo -n` (never asking for
 * a password). sudo's own words are told from the command's by a random marker the wrapped shell
 * prints on stderr first: no marker means sudo refused (`BECOME_FAILED`).
 */
import { endsOnce, withDeadline } from "../../base/deadline.ts";
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { PassThrough } from "node:stream";
import type { ExecOptions, ExecResult, RemoteProcess, SpawnOptions } from "../remote.ts";
import {
  RemoteBecomeError,
  RemoteCommandError,
  RemoteOutputTooLargeError,
  RemoteTimeoutError,
} from "../remote-errors.ts";

/** Cap on stdout and on stderr of `exec`, each (as over SSH). */
export const DEFAULT_MAX_OUTPUT_BYTES = 4 * 1024 * 1024;
/** Grace between TERM and KILL when a command is stopped. */
const KILL_AFTER_MS = 5_000;
/** Largest amount of sudo chatter read before the marker. */
const MAX_SUDO_BYTES = 64 * 1024;

/** How the local transport becomes root. */
export interface LocalBecome {
  /** True when this process is root (default: `process.getuid() === 0`). */
  readonly isRoot: boolean;
  /** The sudo program (default `sudo` on PATH). */
  readonly sudo: string;
}

interface Launch {
  readonly file: string;
  readonly args: string[];
  /** Set when sudo wraps the command: the line the shell prints once sudo let it run. */
  readonly marker?: string;
}

function launch(command: string, become: boolean | undefined, how: LocalBecome): Launch {
  if (become !== true || how.isRoot) return { file: "/bin/sh", args: ["-c", command] };
  const marker = `sumac-become-${randomBytes(12).toString("hex")}`;
  return {
    file: how.sudo,
    args: ["-n", "--", "/bin/sh", "-c", `echo ${marker} >&2; exec /bin/sh -c "$1"`, "sh", command],
    marker,
  };
}

/** Sends `signal` to the child's process group (it leads one), or to the child alone. */
export function stopChild(child: ChildProcess, signal: NodeJS.Signals = "SIGTERM"): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    child.kill(signal);
  }
}

function terminate(child: ChildProcess): void {
  stopChild(child, "SIGTERM");
  setTimeout(() => stopChild(child, "SIGKILL"), KILL_AFTER_MS).unref();
}

function startFailure(file: string, error: NodeJS.ErrnoException, becoming: boolean): Error {
  const what = `cannot run ${file}: ${error.code ?? error.message}`;
  return becoming
    ? new RemoteBecomeError(`${what} (needed to become root as a user other than root)`, { cause: error })
    : new RemoteCommandError(what, { cause: error });
}

function sudoRefusal(stderr: string): RemoteBecomeError {
  const words = stderr.trim().split("\n").slice(-2).join("; ").slice(0, 300);
  return new RemoteBecomeError(
    `sudo -n refused to run the command as root on this machine: ${words || "no reason given"}; ` +
      "run sumac as root, or allow the user passwordless sudo",
  );
}

/** Runs `command` and collects its output; see {@link ExecOptions}. */
export function execLocal(
  command: string,
  options: ExecOptions,
  how: LocalBecome,
  track: Set<ChildProcess>,
): Promise<ExecResult> {
  const { file, args, marker } = launch(command, options.become, how);
  const max = options.maxOutputBytes ?? DEFAULT_MAX_OUTPUT_BYTES;
  const timeout = new RemoteTimeoutError(
    `local command did not finish within ${options.timeoutMs} ms; it was stopped`,
  );
  const run = (stop: AbortSignal) =>
    new Promise<ExecResult>((resolve, reject) => {
      const child = spawn(file, args, { detached: true, stdio: ["pipe", "pipe", "pipe"] });
      track.add(child);
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      let outBytes = 0;
      let errBytes = 0;
      let failure: Error | undefined;
      // The call settles when the process has closed, after a failure too.
      const fail = (error: Error): void => {
        failure ??= error;
        terminate(child);
      };
      stop.addEventListener("abort", () => fail(stop.reason as Error), { once: true });
      const tooLarge = (): void =>
        fail(new RemoteOutputTooLargeError(`local command wrote more than ${max} bytes on stdout or stderr`));
      child.stdout.on("data", (chunk: Buffer) => {
        outBytes += chunk.byteLength;
        if (outBytes > max) tooLarge();
        else out.push(chunk);
      });
      child.stderr.on("data", (chunk: Buffer) => {
        errBytes += chunk.byteLength;
        if (errBytes > max + (marker === undefined ? 0 : MAX_SUDO_BYTES)) tooLarge();
        else err.push(chunk);
      });
      child.on("error", (error: NodeJS.ErrnoException) => {
        failure ??= startFailure(file, error, marker !== undefined);
      });
      child.on("close", (code, signal) => {
        track.delete(child);
        if (failure !== undefined) return reject(failure);
        let stderr = Buffer.concat(err).toString("utf8");
        if (marker !== undefined) {
          const at = stderr.indexOf(`${marker}\n`);
          if (at < 0) return reject(sudoRefusal(stderr));
          stderr = stderr.slice(at + marker.length + 1);
        }
        resolve({
          exitCode: code,
          signal: signal === null ? null : signal.replace(/^SIG/, ""),
          stdout: Buffer.concat(out).toString("utf8"),
          stderr,
        });
      });
      child.stdin.on("error", () => undefined);
      child.stdin.end(options.stdin ?? "");
    });
  return withDeadline({ ms: options.timeoutMs, timeout, signal: options.signal, waitForWork: true }, run);
}

/** Starts `command` with its streams open; resolves once it runs (after sudo let it, with `become`). */
export async function spawnLocal(
  command: string,
  options: SpawnOptions,
  how: LocalBecome,
  track: Set<ChildProcess>,
): Promise<RemoteProcess> {
  options.signal?.throwIfAborted();
  const { file, args, marker } = launch(command, options.become, how);
  const timeout = new RemoteTimeoutError(`local command did not start within ${options.startTimeoutMs} ms`);
  const child = spawn(file, args, { detached: true, stdio: ["pipe", "pipe", "pipe"] });
  track.add(child);
  const exited = new Promise<{ exitCode: number | null; signal: string | null }>((resolve) =>
    child.once("close", (code, signal) => {
      track.delete(child);
      resolve({ exitCode: code, signal: signal === null ? null : signal.replace(/^SIG/, "") });
    }),
  );
  child.stdin.on("error", () => undefined);
  // With sudo, stderr is handed on only after the marker; before it, it is sudo's.
  const stderr = marker === undefined ? child.stderr : new PassThrough();
  const started = (stop: AbortSignal) =>
    new Promise<void>((resolve, reject) => {
      let sudoSaid = "";
      const end = endsOnce(stop, reject, () => terminate(child));
      const done = (error?: Error): void => {
        if (error !== undefined) end.fail(error);
        else if (end.succeed()) resolve();
      };
      child.once("error", (error: NodeJS.ErrnoException) =>
        done(startFailure(file, error, marker !== undefined)),
      );
      if (marker === undefined) {
        child.once("spawn", () => done());
        return;
      }
      const onData = (chunk: Buffer): void => {
        sudoSaid += chunk.toString("utf8");
        const at = sudoSaid.indexOf(`${marker}\n`);
        if (at >= 0) {
          child.stderr.off("data", onData);
          const rest = sudoSaid.slice(at + marker.length + 1);
          if (rest !== "") (stderr as PassThrough).write(rest);
          child.stderr.pipe(stderr as PassThrough);
          done();
        } else if (sudoSaid.length > MAX_SUDO_BYTES) done(sudoRefusal(sudoSaid.slice(-300)));
      };
      child.stderr.on("data", onData);
      void exited.then(() => done(sudoRefusal(sudoSaid)));
    });
  await withDeadline(
    // Started just as the deadline passed or the caller gave up: nobody will stop it but this.
    { ms: options.startTimeoutMs, timeout, signal: options.signal, dispose: () => terminate(child) },
    started,
  );
  options.signal?.addEventListener("abort", () => terminate(child), { once: true });
  return {
    stdin: child.stdin,
    stdout: child.stdout,
    stderr,
    exited,
    kill: (signal = "TERM") => stopChild(child, `SIG${signal}`),
  };
}
