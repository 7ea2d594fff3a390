/**
 * One logged-in SSH connection to a target, as the {@link RemoteShell} and {@link FileChannel}
 * the target actors use. Commands and file operations share the connection: each command is a
 * channel, and all uploads share one SFTP channel, so a run costs one login.
 *
 * OpenSSH allows 10 channels per connection (`MaxSessions`); more are refused. Channels are
 * therefore handed out from a fixed number of slots (default 8), and calls beyond that wait.
 */
import type { Client, ClientChannel, SFTPWrapper } from "ssh2";
import type {
  ExecOptions,
  ExecResult,
  FileChannel,
  FileOpOptions,
  PutOptions,
  PutResult,
  RemoteProcess,
  RemoteShell,
  SpawnOptions,
} from "../remote.ts";
import type { BecomeConfig } from "./become.ts";
import { SshConnectionLostError } from "./errors.ts";
import { RemoteCommandError } from "../remote-errors.ts";
import { runExec, spawnProcess, type ChannelHost } from "./exec.ts";
import { createRunDir, makeDir, putFile, removePath, type FileHooks, type FilesHost } from "./files.ts";

/** Counting semaphore whose waiters can be aborted or failed all at once. */
/** Refused channel opens tried again (after 50, 100, 200, 400 ms) before giving up. */
const OPEN_RETRIES = 4;

class Slots {
  #free: number;
  readonly #waiters: { grant: () => void; fail: (e: Error) => void }[] = [];

  constructor(count: number) {
    this.#free = count;
  }

  acquire(signal?: AbortSignal): Promise<() => void> {
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      const next = this.#waiters.shift();
      if (next) next.grant();
      else this.#free++;
    };
    if (this.#free > 0) {
      this.#free--;
      return Promise.resolve(release);
    }
    return new Promise((resolve, reject) => {
      const waiter = {
        grant: () => {
          signal?.removeEventListener("abort", onAbort);
          resolve(release);
        },
        fail: (e: Error) => {
          signal?.removeEventListener("abort", onAbort);
          reject(e);
        },
      };
      const onAbort = (): void => {
        const i = this.#waiters.indexOf(waiter);
        if (i >= 0) this.#waiters.splice(i, 1);
        reject(signal?.reason as Error);
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#waiters.push(waiter);
    });
  }

  failAll(error: Error): void {
    for (const w of this.#waiters.splice(0)) w.fail(error);
  }
}

export interface SshSessionConfig {
  /** Host name for messages. */
  readonly label: string;
  readonly username: string;
  /** SHA-256 fingerprint of the host key that was verified. */
  readonly hostKeyFingerprint: string;
  /** How to become root; undefined: `sudo -n` when asked. */
  readonly become?: BecomeConfig;
  readonly runRoot: string;
  /** Channels open at once (default 8; OpenSSH's MaxSessions is 10). */
  readonly maxChannels?: number;
  readonly hooks?: FileHooks;
}

/** A logged-in connection; made by `connectSsh`. Close it when the target is done. */
export class SshSession implements RemoteShell, FileChannel, ChannelHost, FilesHost {
  readonly label: string;
  readonly username: string;
  readonly hostKeyFingerprint: string;
  readonly runRoot: string;
  /** With become, where this session's uploads pass through (files.ts `uploadSpoolOf`). */
  uploadDir?: string;
  readonly hooks?: FileHooks;
  readonly #client: Client;
  readonly #become: BecomeConfig | undefined;
  readonly #slots: Slots;
  #lost: Error | undefined;
  #sftp: Promise<SFTPWrapper> | undefined;
  #uid: Promise<number> | undefined;
  readonly #closed: Promise<void>;

  constructor(client: Client, config: SshSessionConfig) {
    this.#client = client;
    this.label = config.label;
    this.username = config.username;
    this.hostKeyFingerprint = config.hostKeyFingerprint;
    this.runRoot = config.runRoot;
    this.#become = config.become;
    if (config.hooks) this.hooks = config.hooks;
    this.#slots = new Slots(config.maxChannels ?? 8);
    let lastError: Error | undefined;
    // A listener must stay: an 'error' event without one would crash the process.
    client.on("error", (error: Error) => (lastError = error));
    this.#closed = new Promise((resolve) => {
      client.once("close", () => {
        this.#lost = new SshConnectionLostError(`connection to ${this.label} closed`, { cause: lastError });
        this.#slots.failAll(this.#lost);
        resolve();
      });
    });
  }

  lost(): Error | undefined {
    return this.#lost;
  }

  async openExec(line: string, signal?: AbortSignal): Promise<ClientChannel> {
    // The server frees a session slot a moment after the client sees a channel close, so a refused
    // open (a CHANNEL_OPEN_FAILURE, which ssh2 marks with a numeric `reason`) is tried again a few
    // times before it counts as a refusal.
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.#openExecOnce(line, signal);
      } catch (error) {
        const refused = typeof (error as { cause?: { reason?: unknown } }).cause?.reason === "number";
        if (!refused || attempt >= OPEN_RETRIES || this.#lost !== undefined || signal?.aborted === true)
          throw error;
        await new Promise((resolve) => setTimeout(resolve, 50 * 2 ** attempt));
      }
    }
  }

  async #openExecOnce(line: string, signal?: AbortSignal): Promise<ClientChannel> {
    if (this.#lost) throw this.#lost;
    const release = await this.#slots.acquire(signal);
    return new Promise<ClientChannel>((resolve, reject) => {
      try {
        this.#client.exec(line, (error, channel) => {
          if (error) {
            release();
            reject(
              this.#lost ??
                new RemoteCommandError(`${this.label} refused to run a command: ${error.message}`, {
                  cause: error,
                }),
            );
            return;
          }
          channel.once("close", release);
          resolve(channel);
        });
      } catch (error) {
        release();
        reject(
          this.#lost ??
            new SshConnectionLostError(`cannot open a channel to ${this.label}`, { cause: error }),
        );
      }
    });
  }

  #becomeFor(become: boolean | undefined, isRoot: boolean): false | BecomeConfig {
    return become === true && !isRoot ? (this.#become ?? {}) : false;
  }

  async exec(command: string, options: ExecOptions): Promise<ExecResult> {
    const isRoot = options.become === true ? (await this.uid(options.signal)) === 0 : false;
    return runExec(this, command, options, this.#becomeFor(options.become, isRoot));
  }

  async spawn(command: string, options: SpawnOptions): Promise<RemoteProcess> {
    const isRoot = options.become === true ? (await this.uid(options.signal)) === 0 : false;
    return spawnProcess(this, command, options, this.#becomeFor(options.become, isRoot));
  }

  learnUid(uid: number): void {
    if (Number.isSafeInteger(uid) && uid >= 0) this.#uid ??= Promise.resolve(uid);
  }

  uid(signal?: AbortSignal): Promise<number> {
    this.#uid ??= runExec(this, "id -u", { timeoutMs: 30_000 }, false).then((r) => {
      const uid = Number(r.stdout.trim());
      if (r.exitCode !== 0 || !Number.isInteger(uid)) {
        throw new RemoteCommandError(
          `cannot tell the login user's uid on ${this.label}: ${r.stderr.trim() || r.stdout.trim()}`,
        );
      }
      return uid;
    });
    // A failed look-up is not cached: the next call asks again.
    this.#uid.catch(() => (this.#uid = undefined));
    if (!signal) return this.#uid;
    signal.throwIfAborted();
    return Promise.race([
      this.#uid,
      new Promise<never>((_, reject) =>
        signal.addEventListener("abort", () => reject(signal.reason as Error), { once: true }),
      ),
    ]);
  }

  async useBecomeForRunDir(signal?: AbortSignal): Promise<boolean> {
    // Any login but root: the agent runs as root (through `sudo -n` when no become is configured),
    // so what it runs must be root's, whether or not sudo asks this login for a password.
    return (await this.uid(signal)) !== 0;
  }

  sftp(signal?: AbortSignal): Promise<SFTPWrapper> {
    if (this.#lost) return Promise.reject(this.#lost);
    const opening = (this.#sftp ??= this.#slots.acquire(signal).then(
      (release) =>
        new Promise<SFTPWrapper>((resolve, reject) => {
          this.#client.sftp((error, sftp) => {
            if (error) {
              release();
              this.#sftp = undefined;
              reject(
                this.#lost ??
                  new RemoteCommandError(`${this.label} refused an SFTP session: ${error.message}`, {
                    cause: error,
                  }),
              );
              return;
            }
            sftp.once("close", () => {
              release();
              if (this.#sftp === opening) this.#sftp = undefined;
            });
            resolve(sftp);
          });
        }),
      (error: unknown) => {
        this.#sftp = undefined;
        throw error;
      },
    ));
    return opening;
  }

  dropSftp(sftp: SFTPWrapper): void {
    // Uploads sharing it fail too: a deadline passing usually means the connection is stuck.
    this.#sftp = undefined;
    sftp.end();
  }

  createRunDir(run: string, options?: FileOpOptions & { subdirs?: readonly string[] }): Promise<string> {
    return createRunDir(this, run, options);
  }

  mkdir(remotePath: string, options?: FileOpOptions & { mode?: number }): Promise<void> {
    return makeDir(this, remotePath, options);
  }

  put(source: string | Buffer, remotePath: string, options: PutOptions): Promise<PutResult> {
    return putFile(this, source, remotePath, options);
  }

  remove(remotePath: string, options?: FileOpOptions & { become?: boolean }): Promise<void> {
    return removePath(this, remotePath, options);
  }

  /** Ends the connection (waiting up to 5 s for a clean close, then dropping it). */
  async close(): Promise<void> {
    if (this.#lost) return;
    const timer = setTimeout(() => this.#client.destroy(), 5_000);
    this.#client.end();
    await this.#closed;
    clearTimeout(timer);
  }
}
