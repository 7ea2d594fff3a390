/**
 * The Bus event stream on a JetStream stream of the same name (file storage, limits retention).
 * Appends are acknowledged, de-duplicated publishes (`NatsLink.write`); reads are ordered
 * consumers fetched in batches from a start sequence or time up to the last sequence the stream
 * had when the read started, re-created from the next sequence when a server restart cuts them.
 * One filter subject at most: multi-filter consumers need nats-server 2.10.
 */
import {
  DiscardPolicy,
  RetentionPolicy,
  StorageType,
  type Consumer,
  JetStreamApiCodes,
} from "@nats-io/jetstream";
import { nanos } from "@nats-io/transport-node";
import { BusError, type EventStream, type StoredEvent, type StreamOptions } from "./bus.ts";
import {
  checkName,
  checkPattern,
  checkSize,
  checkSubject,
  sleep,
  subjectMatches,
  toBusError,
  isApiError,
} from "./nats-common.ts";
import type { NatsLink } from "./nats-link.ts";

/** Events fetched per round trip by `read`. */
const BATCH = 256;
/** How long a retried append may carry the same message id and still be recognised as a repeat. */
export const DUPLICATE_WINDOW_MS = 120_000;

/** Opens (creating when missing, updating subjects and limit when they differ) the stream `name`. */
export async function openNatsStream(
  link: NatsLink,
  name: string,
  options: StreamOptions,
): Promise<EventStream> {
  checkName("stream", name);
  if (options.subjects.length === 0) throw new BusError("BAD_SUBJECT", `stream ${name}: no subjects`);
  for (const s of options.subjects) checkPattern(s);
  const maxMsgs = options.maxEvents ?? -1;
  const maxBytes = options.maxBytes ?? -1;
  const what = `stream ${name}: open`;
  await link.retry(what, link.timeoutMs, async () => {
    const config = {
      subjects: [...options.subjects],
      max_msgs: maxMsgs,
      max_bytes: maxBytes,
      discard: DiscardPolicy.Old,
      duplicate_window: nanos(DUPLICATE_WINDOW_MS),
    };
    try {
      const info = await link.jsm.streams.info(name);
      const same =
        info.config.max_msgs === maxMsgs &&
        info.config.max_bytes === maxBytes &&
        info.config.subjects?.length === config.subjects.length &&
        config.subjects.every((s) => info.config.subjects?.includes(s));
      if (!same) await link.jsm.streams.update(name, config);
    } catch (err) {
      if (!isApiError(err, JetStreamApiCodes.StreamNotFound)) throw err;
      await link.jsm.streams.add({
        name,
        retention: RetentionPolicy.Limits,
        storage: StorageType.File,
        ...config,
      });
    }
  });
  return new NatsStream(link, name, [...options.subjects]);
}

class NatsStream implements EventStream {
  readonly #link: NatsLink;
  readonly #name: string;
  readonly #subjects: readonly string[];

  constructor(link: NatsLink, name: string, subjects: readonly string[]) {
    this.#link = link;
    this.#name = name;
    this.#subjects = subjects;
  }

  async append(subject: string, data: Uint8Array): Promise<number> {
    checkSubject(subject);
    if (!this.#subjects.some((p) => subjectMatches(p, subject))) {
      throw new BusError(
        "BAD_SUBJECT",
        `stream ${this.#name} does not cover ${subject} (${this.#subjects.join(", ")})`,
      );
    }
    checkSize(data);
    return (await this.#link.write(`stream ${this.#name}: append ${subject}`, subject, data)).seq;
  }

  async lastSequence(): Promise<number> {
    const what = `stream ${this.#name}: last sequence`;
    this.#link.checkOpen(what);
    const info = await this.#link.retry(what, this.#link.timeoutMs, () =>
      this.#link.jsm.streams.info(this.#name),
    );
    return info.state.last_seq;
  }

  read(
    from: { readonly sequence?: number; readonly time?: number; readonly filter?: string } = {},
  ): AsyncIterable<StoredEvent> {
    return this.#read(from);
  }

  async *#read(from: {
    readonly sequence?: number;
    readonly time?: number;
    readonly filter?: string;
  }): AsyncGenerator<StoredEvent> {
    const what = `stream ${this.#name}: read`;
    if (from.filter !== undefined) checkPattern(from.filter);
    const last = await this.lastSequence();
    let next = Math.max(1, from.sequence ?? 1);
    let startTime = from.sequence === undefined ? from.time : undefined;
    let giveUpAt = performance.now() + this.#link.timeoutMs;
    while (next <= last) {
      // A consumer per attempt: after a restart cuts one, the next starts where we stopped.
      const consumer = await this.#link.retry(what, this.#link.timeoutMs, () =>
        this.#link.js.consumers.get(this.#name, {
          ...(startTime === undefined
            ? { opt_start_seq: next }
            : { opt_start_time: new Date(startTime).toISOString() }),
          ...(from.filter === undefined ? {} : { filter_subjects: from.filter }),
        }),
      );
      try {
        let pending = (await consumer.info(true)).num_pending;
        while (pending > 0 && next <= last) {
          const batch = await this.#fetch(what, consumer, Math.min(BATCH, pending));
          if (batch.length === 0) break;
          for (const e of batch) {
            pending = e.pending;
            if (e.event.sequence > last) return;
            next = e.event.sequence + 1;
            startTime = undefined;
            yield e.event;
            giveUpAt = performance.now() + this.#link.timeoutMs;
          }
        }
        if (pending === 0) return;
      } catch (err) {
        if (this.#link.closed) throw new BusError("BUS_CLOSED", `${what}: the bus is closed`, { cause: err });
        if (performance.now() >= giveUpAt) throw toBusError(what, err, false);
        await sleep(50);
        await this.#link.connected(what, giveUpAt);
      } finally {
        consumer.delete().catch(() => undefined);
      }
    }
  }

  /** One batch of at most `count` events (fewer when a restart cuts the fetch). */
  async #fetch(
    what: string,
    consumer: Consumer,
    count: number,
  ): Promise<{ event: StoredEvent; pending: number }[]> {
    const out: { event: StoredEvent; pending: number }[] = [];
    const expires = Math.max(1_000, this.#link.timeoutMs);
    const iter = await consumer.fetch({ max_messages: count, expires });
    for await (const m of iter) {
      out.push({
        event: { subject: m.subject, data: m.data, sequence: m.seq, time: m.time.getTime() },
        pending: m.info.pending,
      });
    }
    if (out.length === 0) throw new BusError("BUS_UNAVAILABLE", `${what}: a fetch returned nothing`);
    return out;
  }
}
