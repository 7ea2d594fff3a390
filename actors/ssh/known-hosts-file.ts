/**
 * A known_hosts file shared by every connection of a process, without serialising the fleet:
 * lookups read a cached parse (re-read only when the file's identity, size or mtime changed) and
 * run concurrently; only appends of new hosts (policy accept-new) queue, per file.
 *
 * Appends take turns in two rings: a queue per file in this process, then a lock file beside it
 * (`known_hosts.lock`, file-lock.ts) across processes. Holding both, the file is re-read, so two
 * connections or two sumac processes meeting the same new host add one line: the second finds the
 * first's line and agrees with it (same key) or refuses the host (another key), never adding a
 * second. An append is one `write(2)` of one whole line on a descriptor opened with O_APPEND, so
 * a writer that takes no lock (ssh itself) never interleaves with it either.
 */
import { mkdir, open, stat } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { SshKnownHostsError } from "./errors.ts";
import { acquireFileLock } from "./file-lock.ts";
import {
  checkHostKey,
  formatKnownHostsLine,
  parseKnownHosts,
  type HostKeyStatus,
  type ParsedKnownHosts,
} from "./known-hosts.ts";

/** Default cap on the size of a known_hosts file (OpenSSH has none; 100k hosts fit in 16 MiB). */
export const DEFAULT_KNOWN_HOSTS_MAX_BYTES = 16 * 1024 * 1024;

export interface KnownHostsFileOptions {
  readonly path: string;
  /** A larger file is refused with `KNOWN_HOSTS_INVALID` (default 16 MiB). */
  readonly maxBytes?: number;
  /** Write new hosts hashed (`|1|...`, as with `HashKnownHosts yes`; default true). */
  readonly hashNewEntries?: boolean;
  /** How long an append waits for another process's lock (default 10 s). */
  readonly lockTimeoutMs?: number;
  /** A lock older than this is taken over (default 30 s). */
  readonly staleLockMs?: number;
}

/** What an append found once it had the file to itself. */
export type AppendOutcome =
  | { readonly kind: "added" }
  /** Already recorded with this key (another connection or process added it first). */
  | { readonly kind: "present" }
  /** Recorded meanwhile with another key, or revoked: the caller refuses the host. */
  | { readonly kind: "conflict"; readonly status: HostKeyStatus };

// Process-wide on purpose: the file is a process-wide resource, and two KnownHostsFile objects for
// one path (say, two jobs in one worker) must still take turns. Holds only queue tails, per path.
const appendQueues = new Map<string, Promise<unknown>>();

function queued<T>(path: string, work: () => Promise<T>): Promise<T> {
  const tail = appendQueues.get(path) ?? Promise.resolve();
  const next = tail.then(work, work);
  const settled = next.then(
    () => undefined,
    () => undefined,
  );
  appendQueues.set(path, settled);
  void settled.then(() => {
    if (appendQueues.get(path) === settled) appendQueues.delete(path);
  });
  return next;
}

interface Snapshot {
  readonly id: string;
  readonly parsed: ParsedKnownHosts;
}

/** known_hosts for lookups and accept-new appends; create one per file in the composition root. */
export class KnownHostsFile {
  readonly path: string;
  readonly #maxBytes: number;
  readonly #hashed: boolean;
  readonly #lockTimeoutMs: number | undefined;
  readonly #staleLockMs: number | undefined;
  #snapshot: Promise<Snapshot> | undefined;

  constructor(options: KnownHostsFileOptions) {
    this.path = resolve(options.path);
    this.#maxBytes = options.maxBytes ?? DEFAULT_KNOWN_HOSTS_MAX_BYTES;
    this.#hashed = options.hashNewEntries ?? true;
    this.#lockTimeoutMs = options.lockTimeoutMs;
    this.#staleLockMs = options.staleLockMs;
  }

  /** The parsed file (empty when it does not exist), re-read when it changed on disk. */
  async read(): Promise<ParsedKnownHosts> {
    const id = await this.#identity();
    const current = this.#snapshot;
    if (current) {
      const snap = await current.catch(() => undefined);
      if (snap?.id === id) return snap.parsed;
    }
    // Concurrent callers that saw the same change share one read.
    const next = this.#load();
    this.#snapshot = next;
    return (await next).parsed;
  }

  /**
   * Records `key` for `name` unless the file (read afresh) already has it, or has another key
   * for that name (then nothing is written and the outcome is `conflict`). Waits for the other
   * processes' appends (the lock file) up to its deadline; `signal` gives up sooner.
   */
  append(
    name: string,
    key: Buffer,
    options: { signal?: AbortSignal | undefined } = {},
  ): Promise<AppendOutcome> {
    return queued(this.path, async () => {
      await mkdir(dirname(this.path), { recursive: true, mode: 0o700 }).catch(() => undefined);
      const release = await acquireFileLock(`${this.path}.lock`, {
        signal: options.signal,
        ...(this.#lockTimeoutMs === undefined ? {} : { timeoutMs: this.#lockTimeoutMs }),
        ...(this.#staleLockMs === undefined ? {} : { staleMs: this.#staleLockMs }),
      });
      try {
        return await this.#appendLocked(name, key);
      } finally {
        await release();
      }
    });
  }

  async #appendLocked(name: string, key: Buffer): Promise<AppendOutcome> {
    const { parsed } = await this.#load();
    const status = checkHostKey(parsed.entries, name, key);
    if (status.kind === "known") return { kind: "present" };
    if (status.kind !== "unknown") return { kind: "conflict", status };
    const line = formatKnownHostsLine(name, key, this.#hashed);
    const bytes = Buffer.from(parsed.endsWithNewline ? line : `\n${line}`);
    let handle;
    try {
      handle = await open(this.path, "a", 0o600);
      const { bytesWritten } = await handle.write(bytes, 0, bytes.length);
      if (bytesWritten !== bytes.length) throw new Error(`short write (${bytesWritten} of ${bytes.length})`);
    } catch (error) {
      throw new SshKnownHostsError(`cannot add ${name} to ${this.path}: ${(error as Error).message}`, {
        cause: error,
      });
    } finally {
      await handle?.close();
    }
    this.#snapshot = undefined;
    return { kind: "added" };
  }

  async #identity(): Promise<string> {
    try {
      const st = await stat(this.path, { bigint: true });
      return `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}`;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return "missing";
      throw this.#unreadable(error);
    }
  }

  #unreadable(error: unknown): SshKnownHostsError {
    return new SshKnownHostsError(`cannot read ${this.path}: ${(error as Error).message}`, { cause: error });
  }

  async #load(): Promise<Snapshot> {
    let handle;
    try {
      handle = await open(this.path, "r");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") {
        return { id: "missing", parsed: parseKnownHosts("") };
      }
      throw this.#unreadable(error);
    }
    try {
      const st = await handle.stat({ bigint: true });
      if (!st.isFile()) throw new SshKnownHostsError(`${this.path} is not a regular file`);
      const id = `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}`;
      if (st.size > BigInt(this.#maxBytes)) {
        throw new SshKnownHostsError(
          `${this.path} is larger than ${this.#maxBytes} bytes; refusing to parse it (raise the limit or prune the file)`,
        );
      }
      // Exactly the size fstat saw: appends are whole lines, so that prefix is consistent, and a
      // line added since changes the identity, which makes the next lookup read again.
      const buf = Buffer.alloc(Number(st.size));
      let length = 0;
      while (length < buf.length) {
        const { bytesRead } = await handle.read(buf, length, buf.length - length, length);
        if (bytesRead === 0) break;
        length += bytesRead;
      }
      return { id, parsed: parseKnownHosts(buf.subarray(0, length).toString("utf8")) };
    } catch (error) {
      throw error instanceof SshKnownHostsError ? error : this.#unreadable(error);
    } finally {
      await handle.close();
    }
  }
}
