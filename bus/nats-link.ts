/**
 * The connection shared by the parts of the NATS adapter, with what lets a call outlive a server
 * restart: a watch of the connection state, waits for reconnection bounded by the call's
 * deadline, retries of idempotent calls, and the de-duplicated JetStream write that every durable
 * write (KV, stream, work queue) goes through.
 */
import { withDeadline } from "../base/deadline.ts";
import {
  ConnectionError,
  headers as natsHeaders,
  nuid,
  type MsgHdrs,
  type NatsConnection,
} from "@nats-io/transport-node";
import {
  JetStreamApiError,
  PubHeaders,
  type ApiError,
  type JetStreamClient,
  type JetStreamManager,
} from "@nats-io/jetstream";
import { BusError, busTimeout } from "./bus.ts";
import { RequestMux } from "./nats-mux.ts";
import { checkSize, isTransient, MAX_PAYLOAD, remaining, settle, sleep, toBusError } from "./nats-common.ts";

/** Bytes of a NATS header block around its entries (`NATS/1.0\r\n`, a blank line); each entry adds `Key: value\r\n`. */
const HEADER_FRAME = 10 + 2;

/** The connection and JetStream handles with the connection's state, shared by the adapter's parts. */
export class NatsLink {
  readonly nc: NatsConnection;
  readonly js: JetStreamClient;
  readonly jsm: JetStreamManager;
  /** Request/reply for `Bus.request` and for the acknowledged publishes of `write`. */
  readonly mux: RequestMux;
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
    this.mux = new RequestMux(nc);
    this.timeoutMs = timeoutMs;
    void this.#watch();
  }

  async #watch(): Promise<void> {
    for await (const s of this.nc.status()) {
      if (s.type === "disconnect") {
        this.#connected = false;
        const lost = new ConnectionError("disconnected from the NATS server");
        for (const f of this.#lost) f(lost);
        this.mux.lost(lost);
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

  /** Fails with `BUS_CLOSED` once `close` was called. */
  checkOpen(what: string): void {
    if (this.closed || this.nc.isClosed()) throw new BusError("BUS_CLOSED", `${what}: the bus is closed`);
  }

  /** Resolves when connected, waiting until the absolute time `until`; `BUS_UNAVAILABLE` after that. */
  async connected(what: string, until: number): Promise<void> {
    this.checkOpen(what);
    if (this.#connected) return;
    let done: (() => void) | undefined;
    try {
      const ms = remaining(until);
      await withDeadline(
        { ms, timeout: busTimeout(what, ms) },
        () =>
          new Promise<void>((resolve) => {
            done = resolve;
            this.#waiters.add(resolve);
          }),
      );
    } catch (err) {
      throw new BusError("BUS_UNAVAILABLE", `${what}: not connected to the NATS server`, { cause: err });
    } finally {
      if (done) this.#waiters.delete(done);
    }
    this.checkOpen(what);
  }

  /** Runs `work`, failing early (with a transient error) when the connection drops meanwhile. */
  async unlessLost<T>(work: Promise<T>): Promise<T> {
    return this.#race(this.#lost, this.untilClosed(work));
  }

  /** Runs `work`, failing with `BUS_CLOSED` when the bus is closed meanwhile. */
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

  /** Marks the bus closed and ends the calls waiting on the server with `BUS_CLOSED`. */
  markClosed(): void {
    this.#closed = true;
    const err = new BusError("BUS_CLOSED", "the bus was closed while the call waited");
    for (const f of this.#closers) f(err);
    this.mux.close(err);
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
        return await this.unlessLost(
          withDeadline({ ms: left, timeout: busTimeout(what, left) }, () => attempt(left)),
        );
      } catch (err) {
        if (this.closed) throw new BusError("BUS_CLOSED", `${what}: the bus is closed`, { cause: err });
        if (!isTransient(err)) throw toBusError(what, err, this.closed);
        last = err;
      }
      // A bounded pause: JetStream may answer "no responders" for a moment after a restart.
      await sleep(Math.min(25 * 2 ** Math.min(round, 4), remaining(until)));
      if (remaining(until) <= 0) break;
    }
    const code = last === undefined || last instanceof ConnectionError ? "BUS_UNAVAILABLE" : "TIMEOUT";
    throw new BusError(code, `${what}: gave up after ${timeoutMs} ms`, { cause: last });
  }

  /**
   * A durable write: a JetStream publish with a message id, retried with the same id through
   * disconnections until acknowledged or the deadline passes. The stream's duplicate window makes
   * the retries safe (the server checks the id before any expected-sequence header, so a retried
   * compare-and-set that had in fact been stored answers with its first sequence). A write that
   * fails (`BUS_UNAVAILABLE` or `TIMEOUT`, both retryable) after the connection dropped under it may
   * still have been stored: a caller's compare-and-set retry then meets `REVISION_MISMATCH` and
   * re-reads, as after any lost race.
   */
  write(
    what: string,
    subject: string,
    data: Uint8Array,
    options: {
      readonly expectLastSubjectSequence?: number;
      readonly header?: readonly [string, string];
    } = {},
  ): Promise<{ readonly seq: number }> {
    let h: MsgHdrs;
    try {
      this.checkOpen(what);
      // A fresh header block: `append`, as `set` would first look for the key to replace.
      h = natsHeaders();
      const id = nuid.next();
      h.append(PubHeaders.MsgIdHdr, id);
      let headerBytes = HEADER_FRAME + PubHeaders.MsgIdHdr.length + id.length + 4;
      if (options.expectLastSubjectSequence !== undefined) {
        const expected = String(options.expectLastSubjectSequence);
        h.append(PubHeaders.ExpectedLastSubjectSequenceHdr, expected);
        headerBytes += PubHeaders.ExpectedLastSubjectSequenceHdr.length + expected.length + 4;
      }
      if (options.header) {
        h.append(options.header[0], options.header[1]);
        headerBytes += options.header[0].length + options.header[1].length + 4;
      }
      checkSize(data, headerBytes, this.nc.info?.max_payload ?? MAX_PAYLOAD);
    } catch (err) {
      return settle(() => {
        throw err;
      });
    }
    const until = performance.now() + this.timeoutMs;
    if (!this.#connected || this.closed) return this.#writeAgain(what, subject, data, h, until, 0, undefined);
    // The first attempt without the loop below (an async function): nearly every write ends here.
    return this.mux.request(what, subject, data, this.timeoutMs, { headers: h, failOnLost: true }).then(
      (reply) => {
        try {
          return pubAck(reply.data);
        } catch (err) {
          return this.#failed(what, err, () => this.#writeAgain(what, subject, data, h, until, 1, err));
        }
      },
      (err: unknown) =>
        this.#failed(what, err, () => this.#writeAgain(what, subject, data, h, until, 1, err)),
    );
  }

  /** After a failed attempt: throws what is not worth a retry, else runs `again`. */
  #failed<T>(what: string, err: unknown, again: () => Promise<T>): Promise<T> {
    if (this.closed) throw new BusError("BUS_CLOSED", `${what}: the bus is closed`, { cause: err });
    // No responders: JetStream is not up yet after a restart.
    const transient = err instanceof BusError && err.code === "NO_RESPONDERS";
    if (!transient && !isTransient(err)) throw toBusError(what, err, this.closed);
    return again();
  }

  /**
   * The retries of `write`: like `retry`, without its per-attempt timer and races, as the mux
   * request has its own deadline and fails at once when the connection drops.
   */
  async #writeAgain(
    what: string,
    subject: string,
    data: Uint8Array,
    h: MsgHdrs,
    until: number,
    round: number,
    last: unknown,
  ): Promise<{ readonly seq: number }> {
    for (; ; round++) {
      if (round > 0) {
        // A bounded pause: JetStream may answer "no responders" for a moment after a restart.
        await sleep(Math.min(25 * 2 ** Math.min(round - 1, 4), remaining(until)));
        if (remaining(until) <= 0) break;
      }
      if (!this.#connected || this.closed) await this.connected(what, until);
      const left = remaining(until);
      if (left <= 0) break;
      try {
        const reply = await this.mux.request(what, subject, data, left, { headers: h, failOnLost: true });
        return pubAck(reply.data);
      } catch (err) {
        await this.#failed(what, err, () => Promise.resolve());
        last = err;
      }
    }
    const lost = last === undefined || (last instanceof BusError && last.code === "BUS_UNAVAILABLE");
    throw new BusError(lost ? "BUS_UNAVAILABLE" : "TIMEOUT", `${what}: gave up after ${this.timeoutMs} ms`, {
      cause: last,
    });
  }
}

/** The sequence of a JetStream publish acknowledgement; throws its API error (`toBusError` maps it). */
function pubAck(data: Uint8Array): { readonly seq: number } {
  const ack = JSON.parse(Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString("utf8")) as {
    readonly stream?: string;
    readonly seq?: number;
    readonly error?: ApiError;
  };
  if (ack.error) throw new JetStreamApiError(ack.error);
  if (!ack.stream || typeof ack.seq !== "number")
    throw new BusError("BUS_UNAVAILABLE", "invalid JetStream publish acknowledgement");
  return { seq: ack.seq };
}
