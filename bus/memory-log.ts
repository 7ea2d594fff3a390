/**
 * Persistence of the in-process Bus under its state directory: one append-only file per KV bucket,
 * event stream and work queue, one JSON array per line.
 *
 * Durability: a write's promise resolves only after its line is written and `fdatasync`ed. Writes
 * that arrive while a sync is under way are written and synced together by the next one (group
 * commit), so concurrent writers share the cost of a sync and a lone writer waits for one; they
 * share one promise too, not one each. With `sync: false` a write resolves once its line is
 * written to the file (it survives the process, not a crash of the machine); snapshots are still
 * synced before they replace the file, so a compaction never loses what was there.
 *
 * Crashes: a last line that is cut short (or otherwise unreadable) is a write that was never
 * acknowledged; loading ignores it and truncates the file to the last whole line, so later appends
 * do not glue onto it. An unreadable line before the last is damage, not a crash, and fails the
 * load with `StateFileError` naming the file and line.
 *
 * Files grow with every write; the owner calls `snapshot` from time to time to replace a file with
 * the current state (written to a temporary file, synced, renamed over, directory synced).
 */
import { errorClass } from "../base/errors.ts";
import {
  chmodSync,
  closeSync,
  existsSync,
  fdatasync,
  fsync,
  ftruncateSync,
  mkdirSync,
  open,
  openSync,
  readSync,
  rename,
  close,
  write,
  writeSync,
} from "node:fs";
import { dirname } from "node:path";
import { promisify } from "node:util";
import { BusError } from "./bus.ts";

function writeAsync(fd: number, buffer: Uint8Array): Promise<number> {
  return new Promise((resolve, reject) => write(fd, buffer, (err, n) => (err ? reject(err) : resolve(n))));
}
const fdatasyncAsync = promisify(fdatasync);
const fsyncAsync = promisify(fsync);
const openAsync = promisify(open);
const closeAsync = promisify(close);
const renameAsync = promisify(rename);

/** Longest line accepted when loading: a 1 MiB payload in base64 plus its key and framing. */
export const MAX_LINE_BYTES = 2 * 1024 * 1024;
const CHUNK = 1024 * 1024;
const NEWLINE = 0x0a;

/** A state file that cannot be loaded (damaged before its last line, or a line over the limit). */
export class StateFileError extends errorClass("BAD_STATE_FILE") {
  readonly path: string;
  readonly line: number;
  constructor(path: string, line: number, message: string, options?: ErrorOptions) {
    super(`${path}:${line}: ${message}`, options);
    this.path = path;
    this.line = line;
  }
}

/** Creates the directory (and parents) private to the owner: mode 0700. */
export function privateDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
}

/** Bytes as text for a log line. */
export function toBase64(data: Uint8Array): string {
  return Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString("base64");
}

/** A log line's text as bytes; throws on anything but a string. */
export function fromBase64(value: unknown): Uint8Array {
  if (typeof value !== "string") throw new TypeError("expected base64 text");
  return new Uint8Array(Buffer.from(value, "base64"));
}

/** An integer field of a record; throws on anything else. */
export function int(value: unknown): number {
  if (!Number.isSafeInteger(value)) throw new TypeError(`expected an integer, got ${String(value)}`);
  return value as number;
}

/** A string field of a record; throws on anything else. */
export function str(value: unknown): string {
  if (typeof value !== "string") throw new TypeError(`expected a string, got ${typeof value}`);
  return value;
}

/**
 * Reads the log at `path` (if any), calling `onRecord` for each whole line in order; `onRecord`
 * throws on a record it cannot use. Returns the number of records loaded.
 */
export function loadLog(path: string, onRecord: (record: unknown[]) => void): number {
  if (!existsSync(path)) return 0;
  const fd = openSync(path, "r+");
  try {
    const chunk = Buffer.allocUnsafe(CHUNK);
    let parts: Buffer[] = [];
    let partLength = 0;
    let offset = 0;
    /** Byte offset just past the last line that loaded. */
    let good = 0;
    let lineNo = 0;
    let records = 0;
    let bad: { line: number; error: unknown } | undefined;
    const take = (line: Buffer, end: number): void => {
      lineNo++;
      if (bad) {
        // A damaged line followed by more lines: not a torn tail.
        throw new StateFileError(path, bad.line, "unreadable line before the end of the file", {
          cause: bad.error,
        });
      }
      try {
        const record: unknown = JSON.parse(line.toString("utf8"));
        if (!Array.isArray(record)) throw new TypeError("a line is not a JSON array");
        onRecord(record);
        records++;
        good = end;
      } catch (error) {
        if (error instanceof StateFileError) throw error;
        bad = { line: lineNo, error };
      }
    };
    for (;;) {
      const n = readSync(fd, chunk, 0, CHUNK, offset);
      if (n === 0) break;
      let start = 0;
      for (let i = chunk.indexOf(NEWLINE, 0); i !== -1 && i < n; i = chunk.indexOf(NEWLINE, start)) {
        const piece = chunk.subarray(start, i);
        const line = parts.length === 0 ? piece : Buffer.concat([...parts, piece]);
        parts = [];
        partLength = 0;
        take(line, offset + i + 1);
        start = i + 1;
      }
      if (start < n) {
        parts.push(Buffer.from(chunk.subarray(start, n)));
        partLength += n - start;
      }
      if (partLength > MAX_LINE_BYTES) {
        throw new StateFileError(path, lineNo + 1, `a line is longer than ${MAX_LINE_BYTES} bytes`);
      }
      offset += n;
    }
    // What follows the last newline, and a last line that did not load, are a torn write.
    if (good < offset) ftruncateSync(fd, good);
    return records;
  } finally {
    closeSync(fd);
  }
}

/**
 * The writes queued for one flush: lines to append, after replacing the file with `snapshot` when
 * one was queued. Every write of a batch shares its promise (one per flush, not one per write).
 */
interface Batch {
  snapshot: Buffer | undefined;
  lines: string[];
  readonly done: Promise<void>;
  readonly resolve: () => void;
  readonly reject: (err: unknown) => void;
}

function newBatch(): Batch {
  let resolve!: () => void;
  let reject!: (err: unknown) => void;
  const done = new Promise<void>((res, rej) => ((resolve = res), (reject = rej)));
  // A batch whose writers all went away must not report an unhandled rejection.
  done.catch(() => undefined);
  return { snapshot: undefined, lines: [], done, resolve, reject };
}

/** An append-only log file with group commit; see the file comment. */
export class AppendLog {
  readonly #path: string;
  #fd: number;
  #queued: Batch | undefined;
  #flushing: Promise<void> | undefined;
  #failed: Error | undefined;
  #closed = false;
  #sync: boolean;

  constructor(path: string, options: { readonly sync?: boolean } = {}) {
    privateDir(dirname(path));
    this.#path = path;
    this.#sync = options.sync ?? true;
    this.#fd = openSync(path, "a", 0o600);
    chmodSync(path, 0o600);
  }

  /** Makes later flushes sync (fdatasync) their lines before they resolve. */
  syncFromNowOn(): void {
    this.#sync = true;
  }

  /** Appends one record; resolves once it is on disk. */
  append(record: readonly unknown[]): Promise<void> {
    return this.appendLine(JSON.stringify(record));
  }

  /**
   * Appends one record given as its JSON text (a JSON array, no newline), for callers that build
   * the text themselves; resolves once it is on disk.
   */
  appendLine(json: string): Promise<void> {
    const batch = this.#batch();
    if (batch === undefined) return this.#refusal();
    batch.lines.push(json);
    return batch.done;
  }

  /** Replaces the file with `records` (the whole current state); resolves once that is on disk. */
  snapshot(records: readonly (readonly unknown[])[]): Promise<void> {
    const batch = this.#batch();
    if (batch === undefined) return this.#refusal();
    // The snapshot holds the effect of the lines queued before it: they need not be written.
    batch.snapshot = Buffer.from(records.map((r) => `${JSON.stringify(r)}\n`).join(""));
    batch.lines = [];
    return batch.done;
  }

  /** The batch the next flush writes; undefined once the log failed or closed. */
  #batch(): Batch | undefined {
    if (this.#failed || this.#closed) return undefined;
    const batch = (this.#queued ??= newBatch());
    this.#flushing ??= this.#flush();
    return batch;
  }

  #refusal(): Promise<void> {
    if (this.#failed) {
      return Promise.reject(
        new BusError("BUS_UNAVAILABLE", `${this.#path}: an earlier write failed`, { cause: this.#failed }),
      );
    }
    return Promise.reject(new BusError("BUS_CLOSED", `${this.#path}: closed`));
  }

  async #flush(): Promise<void> {
    // Lets the writes of the current turn of the event loop join the first batch.
    await Promise.resolve();
    for (let batch = this.#queued; batch !== undefined; batch = this.#queued) {
      this.#queued = undefined;
      try {
        if (batch.snapshot) await this.#replace(batch.snapshot);
        if (batch.lines.length > 0) {
          let buf = Buffer.from(`${batch.lines.join("\n")}\n`);
          if (this.#sync) {
            while (buf.length > 0) buf = buf.subarray(await writeAsync(this.#fd, buf));
            await fdatasyncAsync(this.#fd);
          } else {
            // Into the page cache, a few µs: no round trip through the thread pool, whose wait
            // left the event loop idle while every writer waited for the batch.
            while (buf.length > 0) buf = buf.subarray(writeSync(this.#fd, buf));
          }
        }
        batch.resolve();
      } catch (err) {
        this.#failed = err instanceof Error ? err : new Error(String(err));
        const failure = new BusError("BUS_UNAVAILABLE", `${this.#path}: write failed`, { cause: err });
        batch.reject(failure);
        // Queued while this batch was written (the awaits above): refused as well.
        (this.#queued as Batch | undefined)?.reject(failure);
        this.#queued = undefined;
      }
    }
    this.#flushing = undefined;
  }

  /** Writes `content` to a temporary file, syncs it and renames it over the log. */
  async #replace(content: Buffer): Promise<void> {
    const tmp = `${this.#path}.tmp`;
    const fd = await openAsync(tmp, "w", 0o600);
    try {
      let buf = content;
      while (buf.length > 0) buf = buf.subarray(await writeAsync(fd, buf));
      await fdatasyncAsync(fd);
    } finally {
      await closeAsync(fd);
    }
    await renameAsync(tmp, this.#path);
    const dir = await openAsync(dirname(this.#path), "r");
    try {
      await fsyncAsync(dir);
    } finally {
      await closeAsync(dir);
    }
    const old = this.#fd;
    this.#fd = await openAsync(this.#path, "a", 0o600);
    await closeAsync(old);
  }

  /** Waits for queued writes, then closes the file. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    while (this.#flushing) await this.#flushing;
    closeSync(this.#fd);
  }
}
