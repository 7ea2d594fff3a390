/**
 * Key-value buckets of the in-process Bus, with NATS KV semantics: one revision counter per bucket
 * (the bucket stream's sequence), a delete leaves a marker that takes a revision, `create` succeeds
 * on a missing or deleted key, `update` compares against the key's last revision.
 *
 * Log records (`memory-log.ts`): `["P", revision, key, base64]` a put, `["D", revision, key]` a
 * delete marker, `["S", revision]` the bucket's last revision (last line of a snapshot).
 */
import { BusError, type KvEntry, type KvOptions, type KvStore, type KvWrite } from "./bus.ts";
import {
  checkKey,
  checkSize,
  closedError,
  fromLatin1,
  settle,
  toLatin1,
  tokensMatch,
} from "./memory-common.ts";
import { AppendLog, fromBase64, int, loadLog, str, toBase64 } from "./memory-log.ts";

/** A key's last entry; the value as a `toLatin1` string. */
class Entry {
  readonly bytes: string;
  readonly revision: number;
  readonly live: boolean;

  constructor(bytes: string, revision: number, live: boolean) {
    this.bytes = bytes;
    this.revision = revision;
    this.live = live;
  }
}

/** Records written since the last snapshot before the log is compacted (and 4x the keys). */
const COMPACT_AFTER = 4096;

/** The state of one bucket, shared by every handle on it. */
export class KvBucket {
  readonly name: string;
  #revision = 0;
  readonly #entries = new Map<string, Entry>();
  readonly #log: AppendLog | undefined;
  #records = 0;

  /**
   * A bucket kept in memory only, or loaded from (and logged to) `path`, its writes synced to disk
   * or only written to the file (`durability`, see `KvOptions`).
   */
  constructor(name: string, path?: string, durability: KvOptions["durability"] = "disk") {
    this.name = name;
    if (path === undefined) {
      this.#log = undefined;
      return;
    }
    this.#records = loadLog(path, (r) => this.#replay(r));
    this.#log = new AppendLog(path, { sync: durability === "disk" });
    if (this.#records > this.#entries.size * 2 + 64) void this.#compact().catch(() => undefined);
  }

  /** Another opener's durability: the stronger of the two holds for every handle from now on. */
  require(durability: KvOptions["durability"] = "disk"): void {
    if (durability === "disk") this.#log?.syncFromNowOn();
  }

  #replay(r: unknown[]): void {
    const revision = int(r[1]);
    if (revision < this.#revision) throw new TypeError(`revision ${revision} after ${this.#revision}`);
    this.#revision = revision;
    switch (r[0]) {
      case "P":
        this.#entries.set(str(r[2]), new Entry(toLatin1(fromBase64(r[3])), revision, true));
        return;
      case "D":
        this.#entries.set(str(r[2]), new Entry("", revision, false));
        return;
      case "S":
        return;
      default:
        throw new TypeError(`unknown record ${String(r[0])}`);
    }
  }

  get(key: string): KvEntry | undefined {
    const e = this.#entries.get(key);
    return e?.live ? { key, value: fromLatin1(e.bytes), revision: e.revision } : undefined;
  }

  /** The key's last entry, delete markers included. */
  last(key: string): Entry | undefined {
    return this.#entries.get(key);
  }

  /** Stores a copy of `value` under a new revision; resolves to it when durable. */
  write(key: string, value: Uint8Array): Promise<number> | number {
    const written = this.store(key, value);
    const revision = this.#revision;
    return written === undefined ? revision : written.then(() => revision);
  }

  /**
   * Stores a copy of `value` under a new revision; with a log, returns the promise of the log
   * batch that writes it (shared by every write of that batch).
   */
  store(key: string, value: Uint8Array): Promise<void> | undefined {
    const revision = ++this.#revision;
    this.#entries.set(key, new Entry(toLatin1(value), revision, true));
    if (!this.#log) return undefined;
    // The record's JSON built directly: base64 needs no escaping, nor do keys (callers checked
    // them: only [A-Za-z0-9_=.-]).
    return this.#persist(`["P",${revision},"${key}","${toBase64(value)}"]`);
  }

  /** Leaves a delete marker under a new revision; resolves when durable. */
  remove(key: string): Promise<void> | undefined {
    const revision = ++this.#revision;
    this.#entries.set(key, new Entry("", revision, false));
    return this.#log ? this.#persist(`["D",${revision},"${key}"]`) : undefined;
  }

  keys(filter: readonly string[] | undefined): string[] {
    const out: string[] = [];
    for (const [key, e] of this.#entries) {
      if (e.live && (filter === undefined || tokensMatch(filter, key.split(".")))) out.push(key);
    }
    return out.sort();
  }

  /** Appends one record, given as its JSON text. */
  #persist(record: string): Promise<void> {
    const log = this.#log as AppendLog;
    const written = log.appendLine(record);
    if (++this.#records > COMPACT_AFTER && this.#records > this.#entries.size * 4) {
      // The snapshot is queued behind this write; its failure fails later writes, not this one.
      void this.#compact().catch(() => undefined);
    }
    return written;
  }

  /** Replaces the log by the live entries (delete markers are not needed to go on). */
  #compact(): Promise<void> {
    // In revision order, as the log was written, and the last revision at the end (it may be a
    // delete marker's, which is not kept).
    const live = [...this.#entries].filter(([, e]) => e.live).sort((a, b) => a[1].revision - b[1].revision);
    const records: unknown[][] = live.map(([key, e]) => ["P", e.revision, key, btoa(e.bytes)]);
    records.push(["S", this.#revision]);
    this.#records = records.length;
    return (this.#log as AppendLog).snapshot(records);
  }

  close(): Promise<void> {
    return this.#log?.close() ?? Promise.resolve();
  }
}

/** A handle on a bucket; fails with `BUS_CLOSED` once the bus is closed. */
export class MemoryKv implements KvStore {
  readonly #bucket: KvBucket;
  readonly #isClosed: () => boolean;

  constructor(bucket: KvBucket, isClosed: () => boolean) {
    this.#bucket = bucket;
    this.#isClosed = isClosed;
  }

  #check(what: string, key: string): void {
    if (this.#isClosed()) throw closedError(`kv ${this.#bucket.name}: ${what}`);
    checkKey(key);
  }

  get(key: string): Promise<KvEntry | undefined> {
    return settle(() => {
      this.#check("get", key);
      return this.#bucket.get(key);
    });
  }

  put(key: string, value: Uint8Array): Promise<number> {
    // Neither an async function nor `settle`: resolving a promise with the log's promise would
    // cost two more turns of the microtask queue per put.
    let written: Promise<number> | number;
    try {
      this.#check("put", key);
      checkSize(value);
      written = this.#bucket.write(key, value);
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
    return typeof written === "number" ? Promise.resolve(written) : written;
  }

  async create(key: string, value: Uint8Array): Promise<number> {
    this.#check("create", key);
    checkSize(value);
    const last = this.#bucket.last(key);
    if (last?.live) {
      throw new BusError(
        "REVISION_MISMATCH",
        `kv ${this.#bucket.name}: create ${key}: exists at revision ${last.revision}`,
      );
    }
    return await this.#bucket.write(key, value);
  }

  async update(key: string, value: Uint8Array, expected: number): Promise<number> {
    this.#check("update", key);
    checkSize(value);
    // NATS compares with the key's last entry, a delete marker included.
    const last = this.#bucket.last(key);
    if (last?.revision !== expected) {
      throw new BusError(
        "REVISION_MISMATCH",
        `kv ${this.#bucket.name}: update ${key}: revision is ${last?.revision ?? "none"}, not ${expected}`,
      );
    }
    return await this.#bucket.write(key, value);
  }

  async delete(key: string, expected?: number): Promise<void> {
    this.#check("delete", key);
    if (expected !== undefined) {
      const last = this.#bucket.last(key);
      if (!last?.live || last.revision !== expected) {
        throw new BusError(
          "REVISION_MISMATCH",
          `kv ${this.#bucket.name}: delete ${key}: revision is ${last?.live ? last.revision : "none"}, not ${expected}`,
        );
      }
    }
    await this.#bucket.remove(key);
  }

  writeMany(writes: readonly KvWrite[]): Promise<void> {
    let last: Promise<void> | undefined;
    try {
      if (this.#isClosed()) throw closedError(`kv ${this.#bucket.name}: writeMany`);
      for (const [key, value] of writes) {
        checkKey(key);
        if (value !== undefined) checkSize(value);
      }
      // One log batch takes them all (it is written after this turn), so the last write's promise
      // settles with every one of them.
      for (const [key, value] of writes)
        last = value === undefined ? this.#bucket.remove(key) : this.#bucket.store(key, value);
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
    return last ?? Promise.resolve();
  }

  keys(filter?: string): Promise<string[]> {
    return settle(() => {
      if (this.#isClosed()) throw closedError(`kv ${this.#bucket.name}: keys`);
      if (filter !== undefined) checkKey(filter, true);
      return this.#bucket.keys(filter === undefined || filter === ">" ? undefined : filter.split("."));
    });
  }
}
