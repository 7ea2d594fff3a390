/**
 * The Bus: everything sumac's actors say to each other goes through this one interface
 * (DESIGN.md "Shape"). Two adapters implement it with the same behaviour: NATS JetStream
 * (`bus/nats.ts`) for several hosts, and an in-process one (`bus/memory.ts`) for the embedded
 * default. One contract suite (`test/support/bus-contract.ts`) runs against both.
 *
 * Payloads are bytes at this level; `bus/subjects.ts` defines the subjects and the validated JSON
 * schemas that travel on them. Every call that waits on the network takes a deadline.
 */
import { safeJson } from "../base/text.ts";
import type { ErrorCode } from "../base/error-codes.ts";
import { SumacError } from "../base/errors.ts";

/** One message as a subscriber or a request handler sees it. */
export interface BusMessage {
  readonly subject: string;
  readonly data: Uint8Array;
}

/** Stops a subscription, a request handler or a consumer; idempotent. */
export interface Subscription {
  unsubscribe(): Promise<void>;
}

/** Options of a call that waits for an answer. */
export interface Deadline {
  /** Milliseconds before the call fails with `BusError` code `TIMEOUT`. */
  readonly timeoutMs: number;
  readonly signal?: AbortSignal;
}

export interface Bus {
  /** Fire and forget (core NATS semantics: no delivery to subscribers that are not listening). */
  publish(subject: string, data: Uint8Array): Promise<void>;
  /**
   * Calls `handler` for every message on a subject matching `pattern`; `*` matches one token,
   * `>` one or more trailing tokens (NATS wildcards). `queue` spreads messages over the members of
   * a queue group instead of copying them to each.
   */
  subscribe(
    pattern: string,
    handler: (message: BusMessage) => void,
    options?: { readonly queue?: string },
  ): Promise<Subscription>;
  /** Sends a request and waits for the first reply; `NO_RESPONDERS` when nobody serves `subject`. */
  request(subject: string, data: Uint8Array, deadline: Deadline): Promise<BusMessage>;
  /**
   * Serves requests on `subject` (wildcards allowed); the handler's result is the reply. Members of
   * the same `queue` share the requests. A handler that throws answers nothing (the caller times out).
   */
  serve(
    subject: string,
    handler: (message: BusMessage) => Promise<Uint8Array>,
    options?: { readonly queue?: string },
  ): Promise<Subscription>;
  /** A key-value bucket, created when missing. */
  kv(bucket: string, options?: KvOptions): Promise<KvStore>;
  /** A durable event stream over `subjects` (wildcards allowed), created when missing. */
  stream(name: string, options: StreamOptions): Promise<EventStream>;
  /** A durable work queue, created when missing. */
  workQueue(name: string, options: WorkQueueOptions): Promise<WorkQueue>;
  /** Flushes what was published and closes; later calls fail with code `BUS_CLOSED`. */
  close(): Promise<void>;
}

export interface KvOptions {
  /** Values kept per key (history); default 1. */
  readonly history?: number;
  /**
   * When a write resolves. `disk` (default): in the in-process Bus with a state directory, once its
   * log line is written and fdatasync'ed. `process`: once the line is written to the file, not
   * synced: it outlives the process but not the machine, which is enough for state that means
   * nothing after a reboot (port leases: their holders and firewall rules die with the machine)
   * and costs no disk flush per write. The NATS adapter ignores it: nats-server's own storage
   * settings decide when its files are synced.
   */
  readonly durability?: "disk" | "process";
}

/** Refuses options outside their ranges (both adapters call it, so both refuse the same ones). */
export function checkKvOptions(options: KvOptions | undefined): void {
  const durability = options?.durability ?? "disk";
  if (durability !== "disk" && durability !== "process") {
    throw new RangeError(`kv durability must be "disk" or "process", got ${String(durability)}`);
  }
  const history = options?.history ?? 1;
  if (!Number.isInteger(history) || history < 1 || history > 64) {
    throw new RangeError(`kv history must be an integer from 1 to 64, got ${history}`);
  }
}

export interface KvEntry {
  readonly key: string;
  readonly value: Uint8Array;
  /** Increases with every write to the bucket; compare-and-set works on it. */
  readonly revision: number;
}

/**
 * Keys are dot-separated tokens of `[A-Za-z0-9_=-]` (NATS KV rules). No per-key TTL: Debian's
 * nats-server 2.9.10 ignores it, so expiry times live in the values. What must not depend on
 * another host's clock (the lease lock) decides by revisions alone: every write makes a new one.
 */
export interface KvStore {
  get(key: string): Promise<KvEntry | undefined>;
  /** Writes unconditionally; returns the new revision. */
  put(key: string, value: Uint8Array): Promise<number>;
  /** Writes only if the key does not exist (or was deleted); else `BusError` code `REVISION_MISMATCH`. */
  create(key: string, value: Uint8Array): Promise<number>;
  /** Writes only if the key's revision is `expected`; else `BusError` code `REVISION_MISMATCH`. */
  update(key: string, value: Uint8Array, expected: number): Promise<number>;
  /** Deletes; with `expected`, only if the key's revision is that (else `REVISION_MISMATCH`). */
  delete(key: string, expected?: number): Promise<void>;
  /** The live keys, optionally those matching a filter with wildcards (`leases.>`). */
  keys(filter?: string): Promise<string[]>;
  /**
   * Puts (a value) or deletes (undefined) several keys unconditionally, in the order given,
   * pipelined; resolves once all are durable. Every key and size is checked before anything is
   * written. Not atomic: after a failure in the middle, some of the writes may have happened.
   * The values are taken over, not copied: the caller must not change them afterwards.
   */
  writeMany(writes: readonly KvWrite[]): Promise<void>;
}

/** One write of `KvStore.writeMany`: a key and its new value, or undefined to delete it. */
export type KvWrite = readonly [key: string, value: Uint8Array | undefined];

export interface StreamOptions {
  readonly subjects: readonly string[];
  /** Oldest events are dropped beyond this many; default unlimited. */
  readonly maxEvents?: number;
  /** Oldest events are dropped beyond this many bytes (data and subjects); default unlimited. */
  readonly maxBytes?: number;
}

export interface StoredEvent {
  readonly subject: string;
  readonly data: Uint8Array;
  /** Position in the stream, from 1, increasing. */
  readonly sequence: number;
  /** When the stream stored it, ms since the epoch. */
  readonly time: number;
}

export interface EventStream {
  /** Stores an event on a subject the stream covers; returns its sequence once it is durable. */
  append(subject: string, data: Uint8Array): Promise<number>;
  /**
   * Reads stored events from a point (a sequence, or a time; default the first), optionally only
   * subjects matching `filter`, in order, ending at the last event stored when the read started.
   */
  read(from?: {
    readonly sequence?: number;
    readonly time?: number;
    readonly filter?: string;
  }): AsyncIterable<StoredEvent>;
  /** The sequence of the last stored event, 0 when empty. */
  lastSequence(): Promise<number>;
}

export interface WorkQueueOptions {
  /** A job not acknowledged within this many ms is delivered again. */
  readonly ackWaitMs: number;
  /** After this many deliveries a job is dropped (terminated: it is not delivered again). */
  readonly maxDeliver: number;
}

export interface Job {
  readonly data: Uint8Array;
  /** 1 on the first delivery. */
  readonly deliveryCount: number;
  /** Done: never delivered again. */
  ack(): Promise<void>;
  /** Failed now: deliver again (after `delayMs`, default at once) unless `maxDeliver` is reached. */
  nak(delayMs?: number): Promise<void>;
  /** Still working: restarts the ack deadline. */
  working(): Promise<void>;
}

export interface WorkQueue {
  /** Adds a job; resolves once it is durable. */
  push(data: Uint8Array): Promise<void>;
  /** Takes the next job, waiting up to `timeoutMs`; undefined when none came. */
  next(deadline: Deadline): Promise<Job | undefined>;
  /** Jobs waiting or unacknowledged. */
  pending(): Promise<number>;
}

/** The codes the bus fails with (base/error-codes.ts says which are retryable). */
export type BusErrorCode = Extract<
  ErrorCode,
  | "TIMEOUT"
  | "NO_RESPONDERS"
  | "REVISION_MISMATCH"
  | "BUS_CLOSED"
  | "BAD_SUBJECT"
  | "MESSAGE_TOO_LARGE"
  | "BUS_UNAVAILABLE"
  | "BUS_AUTH_FAILED"
  | "BUS_TLS_FAILED"
  | "BUS_CREDENTIALS_INVALID"
  | "BUS_PERMISSION_DENIED"
>;

/** The one error class of the bus: guards branch on `code`. */
export class BusError extends SumacError<BusErrorCode> {}

/**
 * The TIMEOUT error of a bus call, made only when its deadline passes (base/deadline.ts): nearly
 * every call ends in time, and a stack for each would cost about 2 µs (bench/lease.ts makes several
 * such calls per grant); `what` names the operation instead.
 */
export function busTimeout(what: string, ms: number): () => BusError {
  return () => new BusError("TIMEOUT", `${what}: no answer within ${Math.round(ms)} ms`);
}

/**
 * `text` with the user, password or token of every URL in it (`nats://user:pass@host`,
 * `tls://token@host`) replaced by `***`: for messages and logs, and to tell whether a URL holds
 * credentials (it does when this changes it).
 */
export function redactUrlCredentials(text: string): string {
  return text.replace(/\b([a-z][a-z0-9+.-]*:\/\/)[^\s/?#]+@/gi, "$1***@");
}

/**
 * UTF-8 JSON, the encoding of every schema'd message on the bus. Text from targets travels in it:
 * C1 and bidi controls are written escaped (`safeJson`), as JSON.stringify would leave them raw for
 * any subscriber that prints a message as it came.
 */
export function encodeJson(value: unknown): Uint8Array {
  return new TextEncoder().encode(safeJson(value));
}

export function decodeJson(data: Uint8Array): unknown {
  return JSON.parse(new TextDecoder().decode(data)) as unknown;
}
