/**
 * Commands over an SSH connection: `runExec` (collect output, with caps and a deadline) and
 * `spawnProcess` (a long-running process whose streams stay open). Both go through sudo when
 * asked to become root (see `become.ts`), and both stop the remote command, not only the local
 * wait, at the deadline or on abort: TERM over the channel, which the `exec`ed wrapper relays to
 * the command's process group.
 */
import { endsOnce, withDeadline } from "../../base/deadline.ts";
import { PassThrough } from "node:stream";
import type { ClientChannel } from "ssh2";
import type { ExecOptions, ExecResult, RemoteProcess, SpawnOptions } from "../remote.ts";
import { SudoHandshake, wrapCommand, type BecomeConfig, type WrappedCommand } from "./become.ts";
import { SshConnectionLostError } from "./errors.ts";
import { RemoteBecomeError, RemoteOutputTooLargeError, RemoteTimeoutError } from "../remote-errors.ts";

/** What the commands need of a connection (the session provides it). */
export interface ChannelHost {
  /** Host name for messages. */
  readonly label: string;
  /** Opens an exec channel, waiting for a free channel slot; `signal` aborts the wait. */
  openExec(line: string, signal?: AbortSignal): Promise<ClientChannel>;
  /** The error that ended the connection, once it has ended. */
  lost(): Error | undefined;
}

/** Default cap on stdout and on stderr of one command. */
export const DEFAULT_MAX_OUTPUT_BYTES = 4 * 1024 * 1024;
/** The remote backstop fires this long after the caller's deadline. */
const REMOTE_GRACE_MS = 2_000;

interface ChannelInternals {
  outgoing?: { id?: unknown; state?: unknown };
  _client?: { _protocol?: { signal?: unknown } };
}

/**
 * Sends a signal request (RFC 4254 6.9) to the channel's process. ssh2's `signal()` does nothing
 * once stdin was closed (a check of its own; the protocol allows it, and OpenSSH acts on it), and
 * most commands get EOF on stdin at once, so then the request goes through ssh2's protocol object.
 * If a future ssh2 moves those internals, the remote `timeout` backstop still ends the command.
 */
function sendSignal(channel: ClientChannel, name: string): void {
  if (channel.writable) {
    channel.signal(name);
    return;
  }
  const { outgoing, _client } = channel as unknown as ChannelInternals;
  const protocol = _client?._protocol;
  const open = outgoing?.state === "open" || outgoing?.state === "eof";
  if (open && typeof outgoing.id === "number" && typeof protocol?.signal === "function") {
    (protocol.signal as (id: number, signal: string) => void).call(protocol, outgoing.id, name);
  }
}

/** Stops a remote command: a signal (TERM) to the session's process, then the channel is closed. */
export function stopChannel(channel: ClientChannel, signal = "TERM"): void {
  try {
    sendSignal(channel, signal);
  } catch {
    // The channel is already closing: its process has ended or will get EOF.
  }
  channel.close();
}

function brief(command: string): string {
  const one = command.replace(/\s+/g, " ").trim();
  return one.length > 80 ? `${one.slice(0, 80)}...` : one;
}

function signalName(name: unknown): string | null {
  return typeof name === "string" && name !== "" ? name.replace(/^SIG/, "") : null;
}

/** Feeds stderr through sudo's handshake; calls `ready` once the command itself runs. */
function followSudo(
  channel: ClientChannel,
  wrapped: WrappedCommand,
  become: false | BecomeConfig,
  handlers: { ready: (rest: Buffer) => void; fail: (error: Error) => void; stderr: (chunk: Buffer) => void },
  label: string,
): SudoHandshake | undefined {
  if (!wrapped.sudo || become === false) {
    channel.stderr.on("data", handlers.stderr);
    handlers.ready(Buffer.alloc(0));
    return undefined;
  }
  const handshake = new SudoHandshake(wrapped.sudo);
  let started = false;
  channel.stderr.on("data", (chunk: Buffer) => {
    if (started) return handlers.stderr(chunk);
    const step = handshake.feed(chunk);
    if (step.kind === "send-password") channel.write(`${become.password ?? ""}\n`);
    else if (step.kind === "refused")
      handlers.fail(new RemoteBecomeError(`sudo on ${label}: ${step.reason}`));
    else if (step.kind === "ready") {
      started = true;
      handlers.ready(step.rest);
    }
  });
  return handshake;
}

/** Runs `command` to completion, collecting its output. */
export function runExec(
  host: ChannelHost,
  command: string,
  options: ExecOptions,
  become: false | BecomeConfig,
): Promise<ExecResult> {
  const { signal, timeoutMs } = options;
  const cap = options.maxOutputBytes ?? DEFAULT_MAX_OUTPUT_BYTES;
  // Made when the timer is armed, so its stack names the caller (STYLE.md item 7).
  const timeout = new RemoteTimeoutError(
    `command on ${host.label} did not finish within ${timeoutMs} ms and was stopped: ${brief(command)}`,
  );
  const wrapped = wrapCommand(command, { become, remoteTimeoutMs: timeoutMs + REMOTE_GRACE_MS });
  const run = (stop: AbortSignal) =>
    new Promise<ExecResult>((resolve, reject) => {
      // At the deadline, on abort, or on a failure of its own, the command is stopped on the target.
      let channel: ClientChannel | undefined;
      const end = endsOnce(stop, reject, () => channel && stopChannel(channel));
      const fail = end.fail;
      let started = false;
      let handshake: SudoHandshake | undefined;
      let exit: { code: number | null; signal: string | null } | undefined;
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      const sizes = { out: 0, err: 0 };

      const collect = (into: Buffer[], which: "out" | "err") => (chunk: Buffer) => {
        sizes[which] += chunk.length;
        if (sizes[which] > cap) {
          const stream = which === "out" ? "stdout" : "stderr";
          fail(
            new RemoteOutputTooLargeError(
              `command on ${host.label} printed more than ${cap} bytes on ${stream} and was stopped: ${brief(command)}`,
            ),
          );
        } else into.push(chunk);
      };

      host.openExec(wrapped.line, stop).then(
        (ch) => {
          if (end.done) return stopChannel(ch);
          channel = ch;
          ch.on("error", (error: Error) =>
            fail(new SshConnectionLostError(`channel to ${host.label} failed`, { cause: error })),
          );
          ch.on("data", collect(out, "out"));
          ch.on("exit", (code: number | null, sig?: string) => {
            exit = { code: typeof code === "number" ? code : null, signal: signalName(sig) };
          });
          ch.on("close", () => {
            if (!started && handshake) {
              return fail(new RemoteBecomeError(`sudo on ${host.label} refused: ${handshake.said()}`));
            }
            if (!exit) {
              const lost = host.lost();
              return fail(
                new SshConnectionLostError(
                  `connection to ${host.label} ended while running: ${brief(command)}`,
                  {
                    cause: lost,
                  },
                ),
              );
            }
            if (!end.succeed()) return;
            resolve({
              exitCode: exit.code,
              signal: exit.signal,
              stdout: Buffer.concat(out).toString("utf8"),
              stderr: Buffer.concat(err).toString("utf8"),
            });
          });
          const onStderr = collect(err, "err");
          handshake = followSudo(
            ch,
            wrapped,
            become,
            {
              ready: (rest) => {
                started = true;
                if (rest.length > 0) onStderr(rest);
                ch.end(options.stdin ?? "");
              },
              fail,
              stderr: onStderr,
            },
            host.label,
          );
        },
        (error: Error) => fail(error),
      );
    });
  return withDeadline({ ms: timeoutMs, timeout, signal }, run);
}

/** Starts a long-running `command`; resolves once it runs (after sudo, with `become`). */
export function spawnProcess(
  host: ChannelHost,
  command: string,
  options: SpawnOptions,
  become: false | BecomeConfig,
): Promise<RemoteProcess> {
  const { signal, startTimeoutMs } = options;
  const timeout = new RemoteTimeoutError(
    `process on ${host.label} did not start within ${startTimeoutMs} ms and was stopped: ${brief(command)}`,
  );
  const wrapped = wrapCommand(command, { become });
  const start = (stop: AbortSignal) =>
    new Promise<RemoteProcess>((resolve, reject) => {
      // Until it has started: at the deadline, on abort, or on a failure, the process is stopped.
      let channel: ClientChannel | undefined;
      const end = endsOnce(stop, reject, () => channel && stopChannel(channel));
      const fail = end.fail;

      host.openExec(wrapped.line, stop).then(
        (ch) => {
          if (end.done) return stopChannel(ch);
          channel = ch;
          const stderr = new PassThrough();
          let exit: { exitCode: number | null; signal: string | null } = { exitCode: null, signal: null };
          ch.on("exit", (code: number | null, sig?: string) => {
            exit = { exitCode: typeof code === "number" ? code : null, signal: signalName(sig) };
          });
          const exited = new Promise<{ exitCode: number | null; signal: string | null }>((settle) => {
            ch.on("close", () => {
              stderr.end();
              settle(exit);
            });
          });
          ch.on("error", (error: Error) => {
            fail(new SshConnectionLostError(`channel to ${host.label} failed`, { cause: error }));
            stderr.destroy(error);
          });
          const handshake = followSudo(
            ch,
            wrapped,
            become,
            {
              ready: (rest) => {
                if (!end.succeed()) return;
                if (rest.length > 0) stderr.write(rest);
                const kill = (sig: "TERM" | "KILL" | "INT" | "HUP" = "TERM"): void => stopChannel(ch, sig);
                // Once started, an abort stops the process rather than failing the start.
                signal?.addEventListener("abort", () => kill(), { once: true });
                resolve({ stdin: ch, stdout: ch, stderr, exited, kill });
              },
              fail,
              stderr: (chunk) => stderr.write(chunk),
            },
            host.label,
          );
          void exited.then(() => {
            if (handshake) fail(new RemoteBecomeError(`sudo on ${host.label} refused: ${handshake.said()}`));
            else fail(new SshConnectionLostError(`process on ${host.label} ended before it started`));
          });
        },
        (error: Error) => fail(error),
      );
    });
  // Started just as the deadline passed or the caller gave up: nobody else will stop it.
  return withDeadline({ ms: startTimeoutMs, timeout, signal, dispose: (process) => process.kill() }, start);
}
