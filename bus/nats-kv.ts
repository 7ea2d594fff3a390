/**
 * The Bus key-value store on a JetStream KV bucket (stream `KV_<bucket>`, subjects
 * `$KV.<bucket>.<key>`). Reads use `@nats-io/kv`; writes are JetStream publishes of our own so that
 * they carry a message id and can be retried through a server restart without a double write
 * (`NatsLink.write`). Compare-and-set is the `Nats-Expected-Last-Subject-Sequence` header.
 */
import { Kvm, type KV } from "@nats-io/kv";
import { BusError, checkKvOptions, type KvEntry, type KvOptions, type KvStore, type KvWrite } from "./bus.ts";
import { checkKey, checkName, checkSize } from "./nats-common.ts";
import type { NatsLink } from "./nats-link.ts";

/** The header `@nats-io/kv` marks deletes with; its readers skip such entries. */
const OPERATION = "KV-Operation";
const EMPTY = new Uint8Array(0);
/** Most writes of one `writeMany` in flight at once: pipelined, but bounded. */
const PARALLEL = 256;

/** Opens (creating when missing) the bucket `bucket`. */
export async function openNatsKv(link: NatsLink, bucket: string, options: KvOptions = {}): Promise<KvStore> {
  checkName("bucket", bucket);
  checkKvOptions(options);
  const history = options.history ?? 1;
  const kv = await link.retry(`kv ${bucket}: open`, link.timeoutMs, () =>
    new Kvm(link.js).create(bucket, { history }),
  );
  return new NatsKv(link, bucket, kv);
}

class NatsKv implements KvStore {
  readonly #link: NatsLink;
  readonly #bucket: string;
  readonly #kv: KV;

  constructor(link: NatsLink, bucket: string, kv: KV) {
    this.#link = link;
    this.#bucket = bucket;
    this.#kv = kv;
  }

  #subject(key: string): string {
    return `$KV.${this.#bucket}.${key}`;
  }

  /** The last entry of a key, delete markers included. */
  async #last(
    what: string,
    key: string,
  ): Promise<{ revision: number; live: boolean; value: Uint8Array } | undefined> {
    this.#link.checkOpen(what);
    const e = await this.#link.retry(what, this.#link.timeoutMs, () => this.#kv.get(key));
    if (!e) return undefined;
    return { revision: e.revision, live: e.operation === "PUT", value: e.value };
  }

  async get(key: string): Promise<KvEntry | undefined> {
    checkKey(key);
    const e = await this.#last(`kv ${this.#bucket}: get ${key}`, key);
    return e?.live ? { key, value: e.value, revision: e.revision } : undefined;
  }

  async put(key: string, value: Uint8Array): Promise<number> {
    checkKey(key);
    checkSize(value);
    return (await this.#link.write(`kv ${this.#bucket}: put ${key}`, this.#subject(key), value)).seq;
  }

  async create(key: string, value: Uint8Array): Promise<number> {
    checkKey(key);
    checkSize(value);
    const what = `kv ${this.#bucket}: create ${key}`;
    try {
      return (await this.#link.write(what, this.#subject(key), value, { expectLastSubjectSequence: 0 })).seq;
    } catch (err) {
      if (!(err instanceof BusError && err.code === "REVISION_MISMATCH")) throw err;
    }
    // The key has history: creating is allowed when its last entry is a delete marker, and only
    // on top of that very marker (a concurrent create wins the race, we get a mismatch).
    const last = await this.#last(what, key);
    if (last === undefined || last.live) {
      throw new BusError("REVISION_MISMATCH", `${what}: the key exists (revision ${last?.revision ?? "?"})`);
    }
    return (
      await this.#link.write(what, this.#subject(key), value, { expectLastSubjectSequence: last.revision })
    ).seq;
  }

  async update(key: string, value: Uint8Array, expected: number): Promise<number> {
    checkKey(key);
    checkSize(value);
    const what = `kv ${this.#bucket}: update ${key}`;
    if (!Number.isInteger(expected) || expected < 1) {
      throw new BusError("REVISION_MISMATCH", `${what}: no key has revision ${expected}`);
    }
    return (await this.#link.write(what, this.#subject(key), value, { expectLastSubjectSequence: expected }))
      .seq;
  }

  async delete(key: string, expected?: number): Promise<void> {
    checkKey(key);
    const what = `kv ${this.#bucket}: delete ${key}`;
    if (expected !== undefined) {
      // A delete marker on top of a delete marker would pass the header check; the key must be live.
      const last = await this.#last(what, key);
      if (last === undefined || !last.live || last.revision !== expected) {
        throw new BusError(
          "REVISION_MISMATCH",
          `${what}: revision is ${last?.live ? last.revision : "none"}, not ${expected}`,
        );
      }
    }
    await this.#link.write(what, this.#subject(key), EMPTY, {
      header: [OPERATION, "DEL"],
      ...(expected === undefined ? {} : { expectLastSubjectSequence: expected }),
    });
  }

  async writeMany(writes: readonly KvWrite[]): Promise<void> {
    this.#link.checkOpen(`kv ${this.#bucket}: writeMany`);
    for (const [key, value] of writes) {
      checkKey(key);
      if (value !== undefined) checkSize(value);
    }
    const pending: Promise<unknown>[] = [];
    for (const [key, value] of writes) {
      pending.push(value === undefined ? this.delete(key) : this.put(key, value));
      if (pending.length >= PARALLEL) await Promise.all(pending.splice(0));
    }
    await Promise.all(pending);
  }

  async keys(filter = ">"): Promise<string[]> {
    checkKey(filter, true);
    const what = `kv ${this.#bucket}: keys ${filter}`;
    this.#link.checkOpen(what);
    return this.#link.retry(what, this.#link.timeoutMs, async () => {
      const found: string[] = [];
      const iter = await this.#kv.keys(filter);
      for await (const k of iter) found.push(k);
      return found.sort();
    });
  }
}
