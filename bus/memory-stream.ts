/**
 * Event streams of the in-process Bus, with JetStream limits-retention semantics: sequences from 1
 * that never go back, the oldest events dropped beyond `maxEvents` or `maxBytes` (the bytes of the
 * events' data and subjects, as JetStream's `max_bytes` counts a message), reads from a sequence or a
 * time, optionally filtered, up to the last event stored when the read started. Like JetStream, a
 * stream also stores what is published on its subjects (`MemoryBus.publish`), and an append is
 * delivered to subscribers of its subject.
 *
 * Log records: `["E", sequence, time, subject, base64]` an event, `["L", sequence]` the last
 * sequence (last line of a snapshot, which keeps only the events still held).
 */
import { BusError, type EventStream, type StoredEvent, type StreamOptions } from "./bus.ts";
import {
  checkPattern,
  checkSize,
  checkSubject,
  closedError,
  fromLatin1,
  settle,
  toLatin1,
  tokensMatch,
} from "./memory-common.ts";
import { AppendLog, fromBase64, int, loadLog, str, toBase64 } from "./memory-log.ts";

/** A held event; its bytes as a `toLatin1` string. */
interface HeldEvent {
  readonly subject: string;
  readonly bytes: string;
  readonly sequence: number;
  readonly time: number;
}

/** Dropped events kept in the array before it is compacted. */
const SHIFT_AFTER = 1024;

/** The state of one stream, shared by every handle on it. */
export class StreamState {
  readonly name: string;
  patterns: readonly (readonly string[])[] = [];
  subjects: readonly string[] = [];
  maxEvents = Infinity;
  maxBytes = Infinity;
  /** Bytes of the held events' data and subjects. */
  #heldBytes = 0;
  /** Held events, oldest first, from index `#first`. */
  #events: HeldEvent[] = [];
  #first = 0;
  #last = 0;
  #lastTime = 0;
  readonly #log: AppendLog | undefined;
  #records = 0;

  constructor(name: string, options: StreamOptions, path?: string) {
    this.name = name;
    this.configure(options);
    if (path === undefined) {
      this.#log = undefined;
      return;
    }
    this.#records = loadLog(path, (r) => this.#replay(r));
    this.#trim();
    this.#log = new AppendLog(path);
    if (this.#records > this.#held() * 2 + 64) void this.#compact().catch(() => undefined);
  }

  /** Takes new subjects and limit, as a JetStream stream update does. */
  configure(options: StreamOptions): void {
    this.subjects = [...options.subjects];
    this.patterns = options.subjects.map((s) => s.split("."));
    this.maxEvents = options.maxEvents ?? Infinity;
    this.maxBytes = options.maxBytes ?? Infinity;
    this.#trim();
  }

  #replay(r: unknown[]): void {
    const sequence = int(r[1]);
    if (r[0] === "L") {
      if (sequence < this.#last) throw new TypeError(`last sequence ${sequence} after ${this.#last}`);
      this.#last = sequence;
      return;
    }
    if (sequence <= this.#last) throw new TypeError(`sequence ${sequence} after ${this.#last}`);
    if (r[0] !== "E") throw new TypeError(`unknown record ${String(r[0])}`);
    const event = { sequence, time: int(r[2]), subject: str(r[3]), bytes: toLatin1(fromBase64(r[4])) };
    this.#events.push(event);
    this.#heldBytes += sizeOf(event);
    this.#last = sequence;
    this.#lastTime = event.time;
  }

  covers(tokens: readonly string[]): boolean {
    return this.patterns.some((p) => tokensMatch(p, tokens));
  }

  #held(): number {
    return this.#events.length - this.#first;
  }

  #trim(): void {
    const excess = this.#held() - this.maxEvents;
    for (let i = 0; i < excess; i++) this.#heldBytes -= sizeOf(this.#events[this.#first++] as HeldEvent);
    // The newest event stays even when it alone is over the limit, as JetStream keeps it.
    while (this.#heldBytes > this.maxBytes && this.#held() > 1)
      this.#heldBytes -= sizeOf(this.#events[this.#first++] as HeldEvent);
    if (this.#first > SHIFT_AFTER && this.#first * 2 > this.#events.length) {
      this.#events = this.#events.slice(this.#first);
      this.#first = 0;
    }
  }

  /** Stores an event (a copy of `data`); resolves with its sequence once durable. */
  store(subject: string, data: Uint8Array): Promise<number> | number {
    const sequence = ++this.#last;
    // Times never go back within a stream, so a read from a time can trust the order.
    const time = Math.max(Date.now(), this.#lastTime);
    this.#lastTime = time;
    const event = { subject, bytes: toLatin1(data), sequence, time };
    this.#events.push(event);
    this.#heldBytes += sizeOf(event);
    this.#trim();
    if (!this.#log) return sequence;
    const written = this.#log.append(["E", sequence, time, subject, toBase64(data)]);
    if (++this.#records > this.#held() * 2 + 1024) void this.#compact().catch(() => undefined);
    return written.then(() => sequence);
  }

  get lastSequence(): number {
    return this.#last;
  }

  /** The first held event at or after `from.sequence`, else at or after `from.time`, else the oldest. */
  first(from: { readonly sequence?: number; readonly time?: number }): HeldEvent | undefined {
    return this.#events[this.#index(from)];
  }

  /** The held event that follows `sequence`. */
  after(sequence: number): HeldEvent | undefined {
    return this.#events[this.#index({ sequence: sequence + 1 })];
  }

  /** Binary search: events are ordered by sequence and (see `store`) by time. */
  #index(from: { readonly sequence?: number; readonly time?: number }): number {
    const events = this.#events;
    let lo = this.#first;
    let hi = events.length;
    const { sequence, time } = from;
    if (sequence === undefined && time === undefined) return lo;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const e = events[mid] as HeldEvent;
      if (sequence !== undefined ? e.sequence < sequence : e.time < (time as number)) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  #compact(): Promise<void> {
    const records: unknown[][] = [];
    for (let i = this.#first; i < this.#events.length; i++) {
      const e = this.#events[i] as HeldEvent;
      records.push(["E", e.sequence, e.time, e.subject, btoa(e.bytes)]);
    }
    records.push(["L", this.#last]);
    this.#records = records.length;
    return (this.#log as AppendLog).snapshot(records);
  }

  close(): Promise<void> {
    return this.#log?.close() ?? Promise.resolve();
  }
}

function sizeOf(event: HeldEvent): number {
  return event.bytes.length + event.subject.length;
}

/** Checks the stream options as the NATS adapter does. */
export function checkStreamOptions(name: string, options: StreamOptions): void {
  if (options.subjects.length === 0) throw new BusError("BAD_SUBJECT", `stream ${name}: no subjects`);
  for (const s of options.subjects) checkPattern(s);
  const max = options.maxEvents;
  if (max !== undefined && (!Number.isInteger(max) || max < 1)) {
    throw new RangeError(`stream ${name}: maxEvents must be a positive integer, got ${max}`);
  }
  const bytes = options.maxBytes;
  if (bytes !== undefined && (!Number.isInteger(bytes) || bytes < 1)) {
    throw new RangeError(`stream ${name}: maxBytes must be a positive integer, got ${bytes}`);
  }
}

/** A handle on a stream; fails with `BUS_CLOSED` once the bus is closed. */
export class MemoryStream implements EventStream {
  readonly #state: StreamState;
  readonly #isClosed: () => boolean;
  readonly #deliver: (subject: string, data: Uint8Array) => void;

  constructor(
    state: StreamState,
    isClosed: () => boolean,
    deliver: (subject: string, data: Uint8Array) => void,
  ) {
    this.#state = state;
    this.#isClosed = isClosed;
    this.#deliver = deliver;
  }

  async append(subject: string, data: Uint8Array): Promise<number> {
    const what = `stream ${this.#state.name}: append ${subject}`;
    if (this.#isClosed()) throw closedError(what);
    checkSubject(subject);
    if (!this.#state.covers(subject.split("."))) {
      throw new BusError(
        "BAD_SUBJECT",
        `stream ${this.#state.name} does not cover ${subject} (${this.#state.subjects.join(", ")})`,
      );
    }
    checkSize(data);
    // Both copy `data` (the store as its string, delivery per subscriber).
    const sequence = this.#state.store(subject, data);
    this.#deliver(subject, data);
    return await sequence;
  }

  lastSequence(): Promise<number> {
    return settle(() => {
      if (this.#isClosed()) throw closedError(`stream ${this.#state.name}: last sequence`);
      return this.#state.lastSequence;
    });
  }

  read(
    from: { readonly sequence?: number; readonly time?: number; readonly filter?: string } = {},
  ): AsyncIterable<StoredEvent> {
    const events = (): Iterator<StoredEvent> => this.#read(from);
    return {
      [Symbol.asyncIterator]: () => {
        let it: Iterator<StoredEvent> | undefined;
        return {
          next: () =>
            settle(() => {
              it ??= events();
              return it.next();
            }),
          return: () => settle(() => it?.return?.() ?? { done: true as const, value: undefined }),
        };
      },
    };
  }

  *#read(from: {
    readonly sequence?: number;
    readonly time?: number;
    readonly filter?: string;
  }): Generator<StoredEvent> {
    const what = `stream ${this.#state.name}: read`;
    if (this.#isClosed()) throw closedError(what);
    if (from.filter !== undefined) checkPattern(from.filter);
    const filter = from.filter?.split(".");
    const end = this.#state.lastSequence;
    // Walks by sequence rather than by index: appends and drops while reading move the indexes.
    for (let e = this.#state.first(from); e && e.sequence <= end; e = this.#state.after(e.sequence)) {
      if (this.#isClosed()) throw closedError(what);
      if (!filter || tokensMatch(filter, e.subject.split("."))) {
        yield { subject: e.subject, data: fromLatin1(e.bytes), sequence: e.sequence, time: e.time };
      }
    }
  }
}
