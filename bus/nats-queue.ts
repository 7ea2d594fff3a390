/**
 * The Bus work queue on a work-queue-retention JetStream stream (`WQ_<name>`, subject
 * `_sumac.wq.<name>`) with one durable pull consumer shared by all workers.
 *
 * `next` sends its own pull request (`CONSUMER.MSG.NEXT`) with the server-side `expires` set to the
 * caller's deadline, so that a pull the caller stopped waiting for cannot take a job afterwards.
 * nats.js' `consumer.next` needs at least 1 s and answers through a shared inbox that drops pulled
 * messages (they carry the stream subject), hence a dedicated inbox (`noMux`).
 *
 * `maxDeliver` is enforced here: the consumer allows one delivery more, and `next` terminates a job
 * it receives past the limit (and `nak` one on its last delivery), which removes it from the stream.
 * Relying on the server's own limit would leave exhausted jobs in the stream and in `pending()`.
 */
import { withDeadline } from "../base/deadline.ts";
import {
  AckPolicy,
  DeliverPolicy,
  RetentionPolicy,
  StorageType,
  JetStreamApiCodes,
} from "@nats-io/jetstream";
import { nanos, type Msg } from "@nats-io/transport-node";
import {
  BusError,
  busTimeout,
  type Deadline,
  type Job,
  type WorkQueue,
  type WorkQueueOptions,
} from "./bus.ts";
import { checkName, checkSize, remaining, sleep, isApiError } from "./nats-common.ts";
import type { NatsLink } from "./nats-link.ts";
import { DUPLICATE_WINDOW_MS } from "./nats-stream.ts";

const CONSUMER = "workers";
const encoder = new TextEncoder();

/** Opens (creating when missing, updating the ack wait and delivery limit) the queue `name`. */
export async function openNatsQueue(
  link: NatsLink,
  name: string,
  options: WorkQueueOptions,
): Promise<WorkQueue> {
  checkName("queue", name);
  if (!(options.ackWaitMs >= 1) || !Number.isInteger(options.maxDeliver) || options.maxDeliver < 1) {
    throw new RangeError(`queue ${name}: ackWaitMs must be >= 1 and maxDeliver a positive integer`);
  }
  const stream = `WQ_${name}`;
  const subject = `_sumac.wq.${name}`;
  const consumer = {
    durable_name: CONSUMER,
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    ack_wait: nanos(options.ackWaitMs),
    max_deliver: options.maxDeliver + 1,
    max_ack_pending: 10_000,
  };
  await link.retry(`queue ${name}: open`, link.timeoutMs, async () => {
    try {
      await link.jsm.streams.info(stream);
    } catch (err) {
      if (!isApiError(err, JetStreamApiCodes.StreamNotFound)) throw err;
      await link.jsm.streams.add({
        name: stream,
        subjects: [subject],
        retention: RetentionPolicy.Workqueue,
        storage: StorageType.File,
        duplicate_window: nanos(DUPLICATE_WINDOW_MS),
      });
    }
    try {
      const info = await link.jsm.consumers.info(stream, CONSUMER);
      if (info.config.ack_wait !== consumer.ack_wait || info.config.max_deliver !== consumer.max_deliver) {
        await link.jsm.consumers.update(stream, CONSUMER, {
          ack_wait: consumer.ack_wait,
          max_deliver: consumer.max_deliver,
        });
      }
    } catch (err) {
      if (!isApiError(err, JetStreamApiCodes.ConsumerNotFound)) throw err;
      await link.jsm.consumers.add(stream, consumer);
    }
  });
  return new NatsQueue(link, name, stream, subject, options.maxDeliver);
}

/** The delivery count in a JetStream ack subject (v1: 9 tokens; v2 adds domain and account). */
function deliveryCount(reply: string): number {
  const t = reply.split(".");
  return Number(t.length === 9 ? t[4] : t[6]);
}

class NatsQueue implements WorkQueue {
  readonly #link: NatsLink;
  readonly #name: string;
  readonly #stream: string;
  readonly #subject: string;
  readonly #maxDeliver: number;

  constructor(link: NatsLink, name: string, stream: string, subject: string, maxDeliver: number) {
    this.#link = link;
    this.#name = name;
    this.#stream = stream;
    this.#subject = subject;
    this.#maxDeliver = maxDeliver;
  }

  async push(data: Uint8Array): Promise<void> {
    checkSize(data);
    await this.#link.write(`queue ${this.#name}: push`, this.#subject, data);
  }

  async pending(): Promise<number> {
    const what = `queue ${this.#name}: pending`;
    this.#link.checkOpen(what);
    const info = await this.#link.retry(what, this.#link.timeoutMs, () =>
      this.#link.jsm.consumers.info(this.#stream, CONSUMER),
    );
    return info.num_pending + info.num_ack_pending;
  }

  async next(deadline: Deadline): Promise<Job | undefined> {
    const what = `queue ${this.#name}: next`;
    const until = performance.now() + deadline.timeoutMs;
    for (;;) {
      deadline.signal?.throwIfAborted();
      await this.#link.connected(what, until).catch((err: unknown) => {
        // Waiting for a job while the server is away ends like waiting on an empty queue.
        if (err instanceof BusError && err.code === "BUS_UNAVAILABLE") return;
        throw err;
      });
      const left = remaining(until);
      if (left <= 0) return undefined;
      let m: Msg;
      try {
        const ms = left + 50;
        m = await this.#link.unlessLost(
          withDeadline({ ms, timeout: busTimeout(what, ms), signal: deadline.signal }, () =>
            this.#pull(left),
          ),
        );
      } catch (err) {
        if (this.#link.closed) throw new BusError("BUS_CLOSED", `${what}: the bus is closed`, { cause: err });
        if (remaining(until) <= 0) return undefined;
        await sleep(Math.min(50, remaining(until)));
        continue;
      }
      const status = m.headers?.code ?? 0;
      if (status === 404 || status === 408) return undefined;
      if (status !== 0 || !m.reply) {
        // 409 and the like (too many waiting pulls, consumer changed): ask again.
        await sleep(Math.min(50, remaining(until)));
        continue;
      }
      const job = new NatsJob(this.#link, this.#name, m, deliveryCount(m.reply), this.#maxDeliver);
      if (job.deliveryCount <= this.#maxDeliver) return job;
      await job.terminate().catch(() => undefined);
    }
  }

  /** One pull request whose server-side expiry is our deadline (or `no_wait` when none is left). */
  #pull(leftMs: number): Promise<Msg> {
    const expiresMs = Math.floor(leftMs - Math.min(50, leftMs / 5));
    const body = expiresMs >= 5 ? { batch: 1, expires: nanos(expiresMs) } : { batch: 1, no_wait: true };
    return this.#link.nc.request(
      `$JS.API.CONSUMER.MSG.NEXT.${this.#stream}.${CONSUMER}`,
      JSON.stringify(body),
      {
        timeout: leftMs + 50,
        noMux: true,
      },
    );
  }
}

class NatsJob implements Job {
  readonly data: Uint8Array;
  readonly deliveryCount: number;
  readonly #link: NatsLink;
  readonly #what: string;
  readonly #reply: string;
  readonly #maxDeliver: number;

  constructor(link: NatsLink, name: string, m: Msg, count: number, maxDeliver: number) {
    this.data = m.data;
    this.deliveryCount = count;
    this.#link = link;
    this.#what = `queue ${name}: job`;
    this.#reply = m.reply ?? "";
    this.#maxDeliver = maxDeliver;
  }

  /** Sends an ack-protocol word and waits for the server's confirmation (acks are idempotent). */
  async #send(word: string): Promise<void> {
    const what = `${this.#what} ${word.split(" ")[0]}`;
    this.#link.checkOpen(what);
    await this.#link.retry(what, this.#link.timeoutMs, (ms) =>
      this.#link.nc.request(this.#reply, encoder.encode(word), { timeout: ms }),
    );
  }

  ack(): Promise<void> {
    return this.#send("+ACK");
  }

  nak(delayMs?: number): Promise<void> {
    if (this.deliveryCount >= this.#maxDeliver) return this.terminate();
    return this.#send(delayMs && delayMs > 0 ? `-NAK ${JSON.stringify({ delay: nanos(delayMs) })}` : "-NAK");
  }

  working(): Promise<void> {
    return this.#send("+WPI");
  }

  /** Drops the job for good (removes it from the work-queue stream). */
  terminate(): Promise<void> {
    return this.#send("+TERM");
  }
}
