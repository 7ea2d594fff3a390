/**
 * The in-process Bus (DESIGN.md "Embedded default"): the same behaviour as the NATS adapter, for
 * one process, with nothing to install. Core messaging follows core NATS: delivery is asynchronous
 * and in order per subscriber, `*` and `>` wildcards, queue groups (one member per group gets each
 * message, whatever pattern each member used), a request reaches every matching subscriber and
 * the first answer wins, `NO_RESPONDERS` when nothing matches. KV, streams and work queues are in
 * `memory-kv.ts`, `memory-stream.ts` and `memory-queue.ts`.
 *
 * With `stateDir`, KV buckets, event streams and work queues are kept in append-only files there
 * (`memory-log.ts`) and survive a close and reopen on the same directory; one process at a time
 * may use a directory. Without it nothing is written anywhere.
 *
 * Speed: the port-lease service runs its request/reply and KV traffic through here, so the hot
 * paths do no JSON and allocate little: subjects are checked once and their routes cached, copies
 * come from a pool (`memory-common.ts`), a request arms one timer (`memory-request.ts`).
 */
import { join } from "node:path";
import {
  BusError,
  checkKvOptions,
  type Bus,
  type BusMessage,
  type Deadline,
  type EventStream,
  type KvOptions,
  type KvStore,
  type StreamOptions,
  type Subscription,
  type WorkQueue,
  type WorkQueueOptions,
} from "./bus.ts";
import {
  checkName,
  checkPattern,
  checkSize,
  checkSubject,
  closedError,
  copy,
  settle,
  tokensMatch,
} from "./memory-common.ts";
import { KvBucket, MemoryKv } from "./memory-kv.ts";
import { MemoryQueue, QueueState, checkQueueOptions } from "./memory-queue.ts";
import { MemoryStream, StreamState, checkStreamOptions } from "./memory-stream.ts";
import { privateDir } from "./memory-log.ts";
import { lockStateDir } from "./memory-lock.ts";
import { PendingRequest } from "./memory-request.ts";

export interface MemoryBusOptions {
  /** Where KV buckets, streams and work queues are kept; without it, in memory only. */
  readonly stateDir?: string;
}

/**
 * Opens an in-process Bus.
 *
 * @example
 * const bus = await openMemoryBus({ stateDir: ".sumac/state" });
 * const kv = await bus.kv("leases");
 */
export async function openMemoryBus(options: MemoryBusOptions = {}): Promise<Bus> {
  let unlock: (() => void) | undefined;
  if (options.stateDir !== undefined) {
    privateDir(options.stateDir);
    unlock = lockStateDir(options.stateDir);
  }
  return Promise.resolve(new MemoryBus(options.stateDir, unlock));
}

type Reply = (data: Uint8Array) => void;

interface Sub {
  readonly tokens: readonly string[];
  readonly queue: string | undefined;
  readonly onMessage: (message: BusMessage, reply: Reply | undefined) => void;
  active: boolean;
}

interface Group {
  readonly members: Sub[];
  next: number;
}

/** Who gets a message on one subject: plain subscribers, one member per queue group, streams. */
interface Route {
  /** The subject, one string for every message on it: streams keep it with each event they store. */
  readonly subject: string;
  readonly plain: readonly Sub[];
  readonly groups: readonly Group[];
  readonly streams: readonly StreamState[];
}

/** Routes cached per subject; bounded so that a stream of unique subjects cannot grow it. */
const ROUTES_MAX = 10_000;

class MemoryBus implements Bus {
  readonly #stateDir: string | undefined;
  readonly #unlock: (() => void) | undefined;
  readonly #subs = new Set<Sub>();
  #routes = new Map<string, Route>();
  readonly #requests = new Set<PendingRequest>();
  readonly #buckets = new Map<string, KvBucket>();
  readonly #streams = new Map<string, StreamState>();
  readonly #queues = new Map<string, QueueState>();
  #closed = false;
  readonly #isClosed = (): boolean => this.#closed;
  readonly #deliverAppend = (subject: string, data: Uint8Array): void => {
    this.#deliver(this.#route(subject), subject, data, undefined);
  };

  constructor(stateDir: string | undefined, unlock: (() => void) | undefined) {
    this.#stateDir = stateDir;
    this.#unlock = unlock;
  }

  #route(subject: string): Route {
    let route = this.#routes.get(subject);
    if (route) return route;
    const tokens = subject.split(".");
    const plain: Sub[] = [];
    const byQueue = new Map<string, Group>();
    for (const sub of this.#subs) {
      if (!tokensMatch(sub.tokens, tokens)) continue;
      if (sub.queue === undefined) {
        plain.push(sub);
        continue;
      }
      const group = byQueue.get(sub.queue);
      if (group) group.members.push(sub);
      else byQueue.set(sub.queue, { members: [sub], next: 0 });
    }
    const streams = [...this.#streams.values()].filter((s) => s.covers(tokens));
    route = { subject, plain, groups: [...byQueue.values()], streams };
    if (this.#routes.size >= ROUTES_MAX) this.#routes.clear();
    this.#routes.set(subject, route);
    return route;
  }

  /** Hands a message to every plain subscriber and one member of each group, each a copy. */
  #deliver(route: Route, subject: string, data: Uint8Array, reply: Reply | undefined): void {
    const give = (sub: Sub): void => {
      const message: BusMessage = { subject, data: copy(data) };
      queueMicrotask(() => {
        if (!sub.active) return;
        try {
          sub.onMessage(message, reply);
        } catch {
          // A throwing subscriber must not stop the messages of the others (nor its own next ones).
        }
      });
    };
    for (const sub of route.plain) give(sub);
    for (const group of route.groups) {
      const member = group.members[group.next++ % group.members.length];
      if (member) give(member);
    }
  }

  publish(subject: string, data: Uint8Array): Promise<void> {
    return settle(() => {
      if (this.#closed) throw closedError(`publish ${subject}`);
      checkSubject(subject);
      checkSize(data);
      const route = this.#route(subject);
      if (route.streams.length > 0) {
        // Like JetStream, a stream stores what is published on its subjects (fire and forget; the
        // store keeps a copy).
        for (const s of route.streams)
          void Promise.resolve(s.store(route.subject, data)).catch(() => undefined);
      }
      this.#deliver(route, subject, data, undefined);
    });
  }

  #add(
    pattern: string,
    queue: string | undefined,
    onMessage: Sub["onMessage"],
    what: string,
  ): Promise<Subscription> {
    return settle(() => {
      if (this.#closed) throw closedError(`${what} ${pattern}`);
      checkPattern(pattern);
      if (queue !== undefined) checkName("queue group", queue);
      const sub: Sub = { tokens: pattern.split("."), queue, onMessage, active: true };
      this.#subs.add(sub);
      this.#routes = new Map();
      return {
        unsubscribe: () => {
          if (sub.active) {
            sub.active = false;
            this.#subs.delete(sub);
            this.#routes = new Map();
          }
          return Promise.resolve();
        },
      };
    });
  }

  subscribe(
    pattern: string,
    handler: (message: BusMessage) => void,
    options: { readonly queue?: string } = {},
  ): Promise<Subscription> {
    return this.#add(pattern, options.queue, (m) => handler(m), "subscribe");
  }

  serve(
    subject: string,
    handler: (message: BusMessage) => Promise<Uint8Array>,
    options: { readonly queue?: string } = {},
  ): Promise<Subscription> {
    return this.#add(
      subject,
      options.queue,
      (m, reply) => {
        if (!reply) return;
        // A throwing or rejecting handler answers nothing: the caller times out, as on NATS.
        handler(m).then(reply, () => undefined);
      },
      "serve",
    );
  }

  request(subject: string, data: Uint8Array, deadline: Deadline): Promise<BusMessage> {
    let route: Route;
    try {
      checkSubject(subject);
      checkSize(data);
      if (this.#closed) throw closedError(`request ${subject}`);
      deadline.signal?.throwIfAborted();
      route = this.#route(subject);
      if (route.plain.length === 0 && route.groups.length === 0) {
        throw new BusError("NO_RESPONDERS", `request ${subject}: nobody serves it`);
      }
    } catch (err) {
      // A signal's reason may be anything; it is passed on as it is, as `throwIfAborted` threw it.
      return settle(() => {
        throw err;
      });
    }
    // Not through `settle`: the lease service's clients make every request through here.
    return new Promise<BusMessage>((resolve, reject) => {
      const pending = new PendingRequest(this.#requests, subject, deadline, resolve, reject);
      this.#deliver(route, subject, data, pending.reply);
    });
  }

  kv(bucket: string, options?: KvOptions): Promise<KvStore> {
    return this.#open("kv", bucket, () => {
      checkKvOptions(options);
      let state = this.#buckets.get(bucket);
      if (state) state.require(options?.durability);
      else {
        state = new KvBucket(bucket, this.#file("kv", bucket), options?.durability);
        this.#buckets.set(bucket, state);
      }
      return new MemoryKv(state, this.#isClosed);
    });
  }

  stream(name: string, options: StreamOptions): Promise<EventStream> {
    return this.#open("stream", name, () => {
      checkStreamOptions(name, options);
      let state = this.#streams.get(name);
      if (state) state.configure(options);
      else {
        state = new StreamState(name, options, this.#file("stream", name));
        this.#streams.set(name, state);
      }
      this.#routes = new Map();
      return new MemoryStream(state, this.#isClosed, this.#deliverAppend);
    });
  }

  workQueue(name: string, options: WorkQueueOptions): Promise<WorkQueue> {
    return this.#open("queue", name, () => {
      checkQueueOptions(name, options);
      let state = this.#queues.get(name);
      if (state) {
        state.ackWaitMs = options.ackWaitMs;
        state.maxDeliver = options.maxDeliver;
      } else {
        state = new QueueState(name, options, this.#file("queue", name));
        this.#queues.set(name, state);
      }
      return new MemoryQueue(state, this.#isClosed);
    });
  }

  #open<T>(kind: string, name: string, make: () => T): Promise<T> {
    return settle(() => {
      if (this.#closed) throw closedError(`${kind} ${name}`);
      checkName(kind, name);
      return make();
    });
  }

  /** The log file of a bucket, stream or queue (names are `[A-Za-z0-9_-]+`: safe as file names). */
  #file(kind: string, name: string): string | undefined {
    return this.#stateDir === undefined ? undefined : join(this.#stateDir, kind, `${name}.log`);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const sub of this.#subs) sub.active = false;
    this.#subs.clear();
    this.#routes = new Map();
    for (const r of [...this.#requests]) r.fail(closedError(`request ${r.subject}`));
    const closing: Promise<void>[] = [];
    for (const q of this.#queues.values()) closing.push(q.close());
    for (const s of this.#streams.values()) closing.push(s.close());
    for (const b of this.#buckets.values()) closing.push(b.close());
    try {
      await Promise.all(closing);
    } finally {
      this.#unlock?.();
    }
  }
}
