/**
 * The connection shared by the parts of the NATS adapter, with what lets a call outlive a server
 * restart: a watch of the connection state, waits for reconnection bounded by the call's
 * deadline, retries of idempotent calls, and the de-duplicated JetStream write that every durable
 * write (KV, stream, work queue) goes through.
 */
import {
  ConnectionError,
  headers as natsHeaders,
  nuid,
  type MsgHdrs,
  type NatsConnection,
} from "@nats-io/transport-node";
import { PubHeaders, type JetStreamClient, type JetStreamManager, type PubAck } from "@nats-io/jetstream";
import { BusError } from "./bus.ts";
import {
  checkSize,
  isTransient,
  MAX_PAYLOAD,
  remaining,
  sleep,
  toBusError,
  withDeadline,
} from "./nats-common.ts";

/** The connection and JetStream handles with the connection's state, shared by the adapter's parts. */
export class NatsLink {
  readonly nc: NatsConnection;
  readonly js: JetStreamClient;
  readonly jsm: JetStreamManager;
  /** Default deadline of calls that take none. */
  readonly timeoutMs: number;
  #closed = false;
  #connected = true;
  #waiters = new Set<() => void>();
  #lost = new Set<(err: Error) => void>();
  #closers = new Set<(err: Error) => void>();

  constructor(nc: NatsConnection, js: JetStreamClient, jsm: JetStreamManager, timeoutMs: number) {
    this.nc = nc;
    this.js = js;
    this.jsm = jsm;
    this.timeoutMs = timeoutMs;
    void this.#watch();
  }

  async #watch(): Promise<void> {
    for await (const s of this.nc.status()) {
      if (s.type === "disconnect") {
        this.#connected = false;
        const lost = new ConnectionError("disconnected from the NATS server");
        for (const f of this.#lost) f(lost);
      } else if (s.type === "reconnect") {
        this.#connected = true;
        for (const f of this.#waiters) f();
      }
    }
  }

  /** Whether the client holds a connection to a server now. */
  get isConnected(): boolean {
    return this.#connected;
  }

  /** Fails with `closed` once `close` was called. */
  checkOpen(what: string): void {
    if (this.closed || this.nc.isClosed()) throw new BusError("closed", `${what}: the bus is closed`);
  }

  /** Resolves when connected, waiting until the absolute time `until`; `unavailable` after that. */
  async connected(what: string, until: number): Promise<void> {
    this.checkOpen(what);
    if (this.#connected) return;
    let done: (() => void) | undefined;
    try {
      await withDeadline(
        what,
        remaining(until),
        new Promise<void>((resolve) => {
          done = resolve;
          this.#waiters.add(resolve);
        }),
      );
    } catch (err) {
      throw new BusError("unavailable", `${what}: not connected to the NATS server`, { cause: err });
    } finally {
      if (done) this.#waiters.delete(done);
    }
    this.checkOpen(what);
  }

  /** Runs `work`, failing early (with a transient error) when the connection drops meanwhile. */
  async unlessLost<T>(work: Promise<T>): Promise<T> {
    return this.#race(this.#lost, this.untilClosed(work));
  }

  /** Runs `work`, failing with `closed` when the bus is closed meanwhile. */
  untilClosed<T>(work: Promise<T>): Promise<T> {
    return this.#race(this.#closers, work);
  }

  async #race<T>(set: Set<(err: Error) => void>, work: Promise<T>): Promise<T> {
    let drop: ((err: Error) => void) | undefined;
    try {
      return await Promise.race([
        work,
        new Promise<never>((_, reject) => {
          drop = reject;
          set.add(reject);
        }),
      ]);
    } finally {
      if (drop) set.delete(drop);
    }
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Marks the bus closed and ends the calls waiting on the server with `closed`. */
  markClosed(): void {
    this.#closed = true;
    const err = new BusError("closed", "the bus was closed while the call waited");
    for (const f of this.#closers) f(err);
    for (const f of this.#waiters) f();
  }

  /**
   * Runs an idempotent `attempt` until it succeeds or the deadline passes, waiting out
   * disconnections; each attempt gets the time left. Errors that are not transient end it at once.
   */
  async retry<T>(what: string, timeoutMs: number, attempt: (ms: number) => Promise<T>): Promise<T> {
    const until = performance.now() + timeoutMs;
    let last: unknown;
    for (let round = 0; ; round++) {
      await this.connected(what, until);
      const left = remaining(until);
      if (left <= 0) break;
      try {
        return await this.unlessLost(withDeadline(what, left, attempt(left)));
      } catch (err) {
        if (this.closed) throw new BusError("closed", `${what}: the bus is closed`, { cause: err });
        if (!isTransient(err)) throw toBusError(what, err, this.closed);
        last = err;
      }
      // A bounded pause: JetStream may answer "no responders" for a moment after a restart.
      await sleep(Math.min(25 * 2 ** Math.min(round, 4), remaining(until)));
      if (remaining(until) <= 0) break;
    }
    const code = last === undefined || last instanceof ConnectionError ? "unavailable" : "timeout";
    throw new BusError(code, `${what}: gave up after ${timeoutMs} ms`, { cause: last });
  }

  /**
   * A durable write: a JetStream publish with a message id, retried with the same id through
   * disconnections until acknowledged or the deadline passes. The stream's duplicate window makes
   * the retries safe (the server checks the id before any expected-sequence header, so a retried
   * compare-and-set that had in fact been stored answers with its first sequence). A write that
   * fails (`unavailable` or `timeout`, both retryable) after the connection dropped under it may
   * still have been stored: a caller's compare-and-set retry then meets `revision-mismatch` and
   * re-reads, as after any lost race.
   */
  async write(
    what: string,
    subject: string,
    data: Uint8Array,
    options: {
      readonly expectLastSubjectSequence?: number;
      readonly header?: readonly [string, string];
    } = {},
  ): Promise<PubAck> {
    this.checkOpen(what);
    const h: MsgHdrs = natsHeaders();
    const entries: [string, string][] = [[PubHeaders.MsgIdHdr, nuid.next()]];
    if (options.expectLastSubjectSequence !== undefined) {
      entries.push([PubHeaders.ExpectedLastSubjectSequenceHdr, String(options.expectLastSubjectSequence)]);
    }
    if (options.header) entries.push([...options.header]);
    for (const [k, v] of entries) h.set(k, v);
    checkSize(data, headerBytes(entries), this.nc.info?.max_payload ?? MAX_PAYLOAD);
    return this.retry(what, this.timeoutMs, (ms) =>
      this.js.publish(subject, data, { headers: h, timeout: ms, retries: 1 }),
    );
  }
}

/** Bytes of a NATS header block: `NATS/1.0\r\n`, `Key: value\r\n` each, and a blank line. */
function headerBytes(entries: readonly (readonly [string, string])[]): number {
  return entries.reduce((n, [k, v]) => n + k.length + 2 + v.length + 2, 10 + 2);
}
