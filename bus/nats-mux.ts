/**
 * Request/reply of the NATS adapter on one wildcard inbox subscription per connection, for
 * `Bus.request` and for the acknowledged JetStream publishes that every durable write is.
 *
 * Why not `nc.request`: nats.js builds an Error for every request it ends, answered or not (the
 * rejection of an already settled promise), plus a timer promise and a deferred; with the lease
 * service's several requests per grant that was about 10 % of the CPU of each process
 * (bench/lease.ts). Here a request costs one promise, one timer and a map entry, and an error is
 * made only when a request fails.
 */
import { createInbox, type MsgHdrs, type NatsConnection } from "@nats-io/transport-node";
import { BusError, busTimeout } from "./bus.ts";

/** A reply: the inbox it came to and its bytes (as nats.js delivers them). */
export interface MuxReply {
  readonly subject: string;
  readonly data: Uint8Array;
}

interface Pending {
  readonly what: string;
  /** Where the request went, to fail it when the server refuses a publish there. */
  readonly subject: string;
  readonly resolve: (m: MuxReply) => void;
  readonly reject: (err: unknown) => void;
  readonly timer: NodeJS.Timeout;
  /** Fails with `BUS_UNAVAILABLE` when the connection drops (a durable write is then retried). */
  readonly failOnLost: boolean;
}

export class RequestMux {
  readonly #nc: NatsConnection;
  readonly #prefix: string;
  readonly #pending = new Map<string, Pending>();
  #next = 0;
  #subscribed = false;
  /** Set when the server refused the inbox subscription: no reply can come, requests fail at once. */
  #denied: ((what: string) => Error) | undefined;

  constructor(nc: NatsConnection) {
    this.#nc = nc;
    // Under the connection's inbox prefix (`_INBOX` unless set), as nats.js's own inboxes are.
    const options = (nc as NatsConnection & { readonly options?: { readonly inboxPrefix?: string } }).options;
    this.#prefix = `${createInbox(options?.inboxPrefix)}.`;
  }

  /** The subject of this mux's inbox subscription. */
  get inbox(): string {
    return `${this.#prefix}*`;
  }

  /**
   * Publishes `data` on `subject` with a reply inbox and resolves with the first reply; rejects
   * with `TIMEOUT` after `ms`, `NO_RESPONDERS` when nobody serves the subject, and, with
   * `failOnLost`, `BUS_UNAVAILABLE` when the connection drops meanwhile.
   */
  request(
    what: string,
    subject: string,
    data: Uint8Array,
    ms: number,
    options: { readonly headers?: MsgHdrs; readonly failOnLost?: boolean } = {},
  ): Promise<MuxReply> {
    const token = (this.#next++).toString(36);
    if (this.#denied !== undefined) return Promise.reject(this.#denied(what));
    return new Promise<MuxReply>((resolve, reject) => {
      const timer = setTimeout(() => {
        if (this.#pending.delete(token)) reject(busTimeout(what, ms)());
      }, ms);
      this.#pending.set(token, {
        what,
        subject,
        resolve,
        reject,
        timer,
        failOnLost: options.failOnLost === true,
      });
      try {
        this.#subscribe();
        const reply = this.#prefix + token;
        this.#nc.publish(subject, data, options.headers ? { reply, headers: options.headers } : { reply });
      } catch (err) {
        this.#end(token)?.reject(err);
      }
    });
  }

  /** The connection dropped: requests that asked for it fail now, the others keep waiting. */
  lost(err: Error): void {
    for (const [token, p] of this.#pending) {
      if (!p.failOnLost) continue;
      this.#end(token);
      p.reject(new BusError("BUS_UNAVAILABLE", `${p.what}: the connection to NATS dropped`, { cause: err }));
    }
  }

  /**
   * The server refused a publish on `subject` (the account may not publish there): the requests
   * sent there fail now with what `error` makes, rather than at their deadline.
   */
  refused(subject: string, error: (what: string) => Error): void {
    for (const [token, p] of this.#pending) {
      if (p.subject !== subject) continue;
      this.#end(token);
      p.reject(error(p.what));
    }
  }

  /** The server refused the inbox subscription: every request fails, now and from now on. */
  inboxRefused(error: (what: string) => Error): void {
    this.#denied = error;
    for (const [token, p] of this.#pending) {
      this.#end(token);
      p.reject(error(p.what));
    }
  }

  /** The bus was closed: every request fails with `err`. */
  close(err: Error): void {
    for (const token of [...this.#pending.keys()]) this.#end(token)?.reject(err);
  }

  #end(token: string): Pending | undefined {
    const p = this.#pending.get(token);
    if (p === undefined) return undefined;
    this.#pending.delete(token);
    clearTimeout(p.timer);
    return p;
  }

  /** Subscribes to the inbox once; nats.js renews the subscription after a reconnection. */
  #subscribe(): void {
    if (this.#subscribed) return;
    this.#nc.subscribe(`${this.#prefix}*`, {
      callback: (err, m) => {
        if (err) return;
        const p = this.#end(m.subject.slice(this.#prefix.length));
        if (p === undefined) return;
        // The server answers a request nobody serves with an empty 503 status message.
        if (m.data.length === 0 && m.headers?.code === 503)
          p.reject(new BusError("NO_RESPONDERS", `${p.what}: nobody serves it`));
        else p.resolve({ subject: m.subject, data: m.data });
      },
    });
    this.#subscribed = true;
  }
}
