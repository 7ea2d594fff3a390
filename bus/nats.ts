/**
 * The Bus on NATS (DESIGN.md "Shape"): publish, subscribe, request and serve on core NATS; the
 * key-value store, event streams and work queues on JetStream (`nats-kv.ts`, `nats-stream.ts`,
 * `nats-queue.ts`). Works with Debian's nats-server 2.9.10: no per-key TTL, single-filter
 * consumers, no consumer metadata.
 *
 * The client reconnects forever with a bounded wait between attempts, so one Bus object outlives
 * server restarts: core subscriptions are renewed by nats.js, calls made while the server is away
 * wait for it up to their deadline and then fail with the retryable code `BUS_UNAVAILABLE`, and durable
 * writes are retried with the same message id, so an acknowledged write is stored exactly once.
 */
import { withDeadline } from "../base/deadline.ts";
import {
  AuthorizationError,
  connect,
  ConnectionError,
  PermissionViolationError,
  TimeoutError,
  UserAuthenticationExpiredError,
  type Msg,
  type NatsConnection,
  type Subscription as NatsSubscription,
} from "@nats-io/transport-node";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import type {
  Bus,
  BusMessage,
  Deadline,
  EventStream,
  KvOptions,
  KvStore,
  StreamOptions,
  Subscription,
  WorkQueue,
  WorkQueueOptions,
} from "./bus.ts";
import { BusError, busTimeout, redactUrlCredentials } from "./bus.ts";
import { checkPattern, checkSize, checkSubject, remaining, settle, toBusError } from "./nats-common.ts";
import { NatsLink } from "./nats-link.ts";
import { openNatsKv } from "./nats-kv.ts";
import { openNatsQueue } from "./nats-queue.ts";
import { openNatsStream } from "./nats-stream.ts";
import {
  describeCredential,
  natsConnectSecurity,
  probeServerInfo,
  type NatsSecurity,
} from "./nats-security.ts";

export interface NatsBusOptions {
  /** One URL or several of the same cluster, e.g. `nats://127.0.0.1:4222`. */
  readonly servers: string | string[];
  /** The connection name the server shows (monitoring, logs). */
  readonly name?: string;
  /** Deadline of the first connection and of calls that take none; default 5000 ms. */
  readonly timeoutMs?: number;
  /** TLS and credentials (docs/nats.md); without them, plain NATS as the URL says. */
  readonly security?: NatsSecurity;
  /** Where a warning goes (a credential allowed in plain text); default stderr. */
  readonly warn?: (message: string) => void;
}

/** Wait between two reconnection attempts (plus up to 100 ms of jitter), kept short and bounded. */
const RECONNECT_WAIT_MS = 250;

/** The server URLs for a message or a log: users, passwords and tokens replaced by `***`. */
export function serversForMessages(servers: string | readonly string[]): string {
  const list = (typeof servers === "string" ? [servers] : servers).flatMap((s) => s.split(","));
  return list.map((url) => redactUrlCredentials(url.trim())).join(", ");
}

/**
 * Connects to NATS and returns a Bus over it; fails with `BUS_UNAVAILABLE` when no server answers
 * within `timeoutMs` or JetStream is not enabled there (`nats-server -js`).
 *
 * @example
 * const bus = await openNatsBus({ servers: "nats://127.0.0.1:4222", name: "sumac-worker" });
 * const leases = await bus.kv("leases");
 */
export async function openNatsBus(options: NatsBusOptions): Promise<Bus> {
  const timeoutMs = options.timeoutMs ?? 5_000;
  // Files are read and checked before any connection: a loose key file fails here, not later.
  const security = await natsConnectSecurity(options.security);
  const exposed = plaintextCredential(options);
  if (exposed !== undefined && options.security?.allowPlaintext === true && !warnedPlaintext) {
    warnedPlaintext = true;
    (options.warn ?? warnOnStderr)(
      `${exposed} goes to NATS at ${serversForMessages(options.servers)} in plain text, as ` +
        "SUMAC_NATS_ALLOW_PLAINTEXT allows: whoever is on the network between can read it and the " +
        "traffic; configure TLS on the server and give its CA (--nats-ca)",
    );
  }
  // A credential is not sent in the clear to another host: TLS it is, verified with the system's CAs.
  const tls = security.tls ?? (exposed !== undefined && !options.security?.allowPlaintext ? {} : undefined);
  let nc: NatsConnection;
  try {
    nc = await connect({
      ...(tls === undefined ? {} : { tls }),
      ...(security.authenticator === undefined ? {} : { authenticator: security.authenticator }),
      ...(security.inboxPrefix === undefined ? {} : { inboxPrefix: security.inboxPrefix }),
      servers: options.servers,
      name: options.name ?? "sumac",
      timeout: timeoutMs,
      maxReconnectAttempts: -1,
      reconnectTimeWait: RECONNECT_WAIT_MS,
      reconnectJitter: 100,
      // A half-open connection is noticed within about 15 s.
      pingInterval: 5_000,
      maxPingOut: 3,
      // nats.js otherwise makes an Error per request to keep the caller's stack (about 14 % of the
      // CPU of the lease service and its clients, bench/lease.ts); our errors name the operation.
      noAsyncTraces: true,
    });
  } catch (err) {
    throw await connectFailure(err, options, timeoutMs, security.tls === undefined ? exposed : undefined);
  }
  try {
    const jsm = await withDeadline(
      { ms: timeoutMs, timeout: busTimeout("JetStream account info", timeoutMs) },
      () => jetstreamManager(nc, { timeout: timeoutMs }),
    );
    const js = jetstream(nc, { timeout: timeoutMs });
    return new NatsBus(new NatsLink(nc, js, jsm, timeoutMs));
  } catch (err) {
    await nc.close();
    const refusal = permissionViolationIn(err);
    if (refusal !== undefined) throw permissionDenied("JetStream account info", refusal);
    throw new BusError(
      "BUS_UNAVAILABLE",
      `NATS at ${serversForMessages(options.servers)} has no JetStream (start it with -js)`,
      { cause: err },
    );
  }
}

class NatsBus implements Bus {
  readonly #link: NatsLink;
  readonly #subs = new Set<NatsSubscription>();

  constructor(link: NatsLink) {
    this.#link = link;
    void this.#watchRefusals();
  }

  /**
   * The server refuses a publish the account may not make with an error on the connection, not a
   * reply: requests on that subject (bus requests and JetStream writes) fail at once with
   * `BUS_PERMISSION_DENIED` instead of waiting for their deadline.
   */
  async #watchRefusals(): Promise<void> {
    try {
      for await (const status of this.#link.nc.status()) {
        if (status.type !== "error" || !(status.error instanceof PermissionViolationError)) continue;
        const refused = status.error;
        if (refused.operation === "publish")
          this.#link.mux.refused(refused.subject, (what) => permissionDenied(what, refused));
        else if (refused.subject === this.#link.mux.inbox)
          this.#link.mux.inboxRefused((what) => permissionDenied(what, refused));
      }
    } catch {
      // The connection is closed: nothing more to watch.
    }
  }

  publish(subject: string, data: Uint8Array): Promise<void> {
    return settle(() => {
      this.#link.checkOpen(`publish ${subject}`);
      checkSubject(subject);
      checkSize(data);
      // While disconnected nats.js buffers the message and sends it on reconnection.
      this.#link.nc.publish(subject, data);
    });
  }

  async subscribe(
    pattern: string,
    handler: (message: BusMessage) => void,
    options: { readonly queue?: string } = {},
  ): Promise<Subscription> {
    this.#link.checkOpen(`subscribe ${pattern}`);
    checkPattern(pattern);
    let denied: PermissionViolationError | undefined;
    return await this.#track(
      `subscribe ${pattern}`,
      () => denied,
      this.#link.nc.subscribe(pattern, {
        ...(options.queue === undefined ? {} : { queue: options.queue }),
        callback: (err, m) => {
          if (err instanceof PermissionViolationError) denied = err;
          if (err) return;
          try {
            handler({ subject: m.subject, data: m.data });
          } catch {
            // A throwing subscriber must not end the subscription for the others' messages.
          }
        },
      }),
    );
  }

  async request(subject: string, data: Uint8Array, deadline: Deadline): Promise<BusMessage> {
    const what = `request ${subject}`;
    checkSubject(subject);
    checkSize(data);
    deadline.signal?.throwIfAborted();
    const until = performance.now() + deadline.timeoutMs;
    if (!this.#link.isConnected || this.#link.closed) await this.#link.connected(what, until);
    const left = remaining(until);
    try {
      // Sent once: a request is not known to be idempotent, so it is never repeated here.
      const reply = this.#link.mux.request(what, subject, data, Math.max(1, left));
      const m = deadline.signal ? await abortable(reply, deadline.signal) : await reply;
      return { subject: m.subject, data: m.data };
    } catch (err) {
      if (deadline.signal?.aborted && err === deadline.signal.reason) throw err;
      if (this.#link.closed) throw new BusError("BUS_CLOSED", `${what}: the bus is closed`, { cause: err });
      throw toBusError(what, err, false);
    }
  }

  async serve(
    subject: string,
    handler: (message: BusMessage) => Promise<Uint8Array>,
    options: { readonly queue?: string } = {},
  ): Promise<Subscription> {
    this.#link.checkOpen(`serve ${subject}`);
    checkPattern(subject);
    const respond = (m: Msg, data: Uint8Array): void => {
      // An answer over the limit is not sent; the caller times out as with a failed handler.
      if (data.length > 1024 * 1024 || this.#link.closed) return;
      try {
        m.respond(data);
      } catch {
        // The connection is closing: the caller times out.
      }
    };
    // A handler that throws or rejects answers nothing: the caller times out.
    const answer = (m: Msg): void => {
      let reply: Promise<Uint8Array>;
      try {
        reply = handler({ subject: m.subject, data: m.data });
      } catch {
        return;
      }
      reply.then(
        (data) => respond(m, data),
        () => undefined,
      );
    };
    let denied: PermissionViolationError | undefined;
    return await this.#track(
      `serve ${subject}`,
      () => denied,
      this.#link.nc.subscribe(subject, {
        ...(options.queue === undefined ? {} : { queue: options.queue }),
        callback: (err, m) => {
          if (err instanceof PermissionViolationError) denied = err;
          if (err || !m.reply) return;
          answer(m);
        },
      }),
    );
  }

  /**
   * Keeps the subscription for `close` and waits until the server has it (a round trip), so that
   * a message published from another connection after this resolves is delivered. While the server
   * is away the subscription is renewed on reconnection; the wait is bounded. A subscription the
   * account may not make is refused by the server before that round trip ends: it fails with
   * `BUS_PERMISSION_DENIED`.
   */
  async #track(
    what: string,
    denied: () => PermissionViolationError | undefined,
    sub: NatsSubscription,
  ): Promise<Subscription> {
    this.#subs.add(sub);
    if (this.#link.isConnected) {
      const ms = this.#link.timeoutMs;
      await withDeadline({ ms, timeout: busTimeout("subscribe", ms) }, () => this.#link.nc.flush()).catch(
        () => undefined,
      );
    }
    const refusal = denied();
    if (refusal !== undefined) {
      this.#subs.delete(sub);
      throw permissionDenied(what, refusal);
    }
    return {
      unsubscribe: () =>
        settle(() => {
          this.#subs.delete(sub);
          if (!sub.isClosed() && !this.#link.nc.isClosed()) sub.unsubscribe();
        }),
    };
  }

  async kv(bucket: string, options?: KvOptions): Promise<KvStore> {
    this.#link.checkOpen(`kv ${bucket}`);
    return await openNatsKv(this.#link, bucket, options);
  }

  async stream(name: string, options: StreamOptions): Promise<EventStream> {
    this.#link.checkOpen(`stream ${name}`);
    return await openNatsStream(this.#link, name, options);
  }

  async workQueue(name: string, options: WorkQueueOptions): Promise<WorkQueue> {
    this.#link.checkOpen(`queue ${name}`);
    return await openNatsQueue(this.#link, name, options);
  }

  async close(): Promise<void> {
    if (this.#link.closed) return;
    this.#link.markClosed();
    const nc = this.#link.nc;
    if (nc.isClosed()) return;
    // Drain sends what is buffered; when the server is away it cannot finish, so it is bounded.
    try {
      const ms = this.#link.timeoutMs;
      await withDeadline({ ms, timeout: busTimeout("close", ms) }, () => nc.drain());
    } catch {
      await nc.close();
    }
  }
}

/** The permission violation in `err` or its causes, if there is one. */
function permissionViolationIn(err: unknown): PermissionViolationError | undefined {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 4; e = e.cause, depth++)
    if (e instanceof PermissionViolationError) return e;
  return undefined;
}

/** The server refused an operation: says which, and where the permissions are set. */
function permissionDenied(what: string, refusal: PermissionViolationError): BusError {
  const verb = refusal.operation === "publish" ? "publish to" : "subscribe to";
  // Replies come to an inbox under the connection's prefix: a user allowed other inboxes only
  // needs sumac to use that prefix.
  const inbox = refusal.operation === "subscription" && /^_INBOX[._]/.test(refusal.subject);
  return new BusError(
    "BUS_PERMISSION_DENIED",
    `${what}: the NATS server refused it (${refusal.message}): the user sumac connects as may not ` +
      `${verb} ${refusal.subject}` +
      (inbox
        ? ", its reply inbox: give sumac the inbox prefix the user may subscribe to (--nats-inbox-prefix or SUMAC_NATS_INBOX_PREFIX)"
        : "; see its permissions in the server's accounts (docs/nats.md)"),
    { cause: refusal },
  );
}

/** Node's advice on a certificate it cannot verify, which is not what a NATS user should do. */
const NODE_CA_ADVICE = /; if the root CA is installed locally, try running Node\.js with --use-system-ca$/;

function isTlsFailure(err: Error): boolean {
  const code = (err as NodeJS.ErrnoException).code ?? "";
  return (
    /^(ERR_TLS_|ERR_SSL_|ERR_OSSL_|UNABLE_TO_|SELF_SIGNED_|DEPTH_ZERO_|CERT_|HOSTNAME_)/.test(code) ||
    /\bcertificate\b|\btls\b|\bssl\b/i.test(err.message)
  );
}

/**
 * Why the first connection failed, as an error that says what to check: refused credentials and
 * TLS failures are not retried (another attempt would meet the same refusal), a server that did not
 * answer is `BUS_UNAVAILABLE`. Messages name files and variables, never what they hold.
 */
/** Whether the plain-text warning was given in this process: once is enough. */
let warnedPlaintext = false;

function warnOnStderr(message: string): void {
  process.stderr.write(`sumac: warning: ${message}\n`);
}

const LOOPBACK = /^(localhost|127(\.\d{1,3}){3}|\[?::1\]?)$/i;

/**
 * The credential that would travel without TLS (named for messages), or undefined: one is given
 * (or in a URL), no TLS option is, and a server is not on this machine's loopback nor a `tls://` URL.
 */
function plaintextCredential(options: NatsBusOptions): string | undefined {
  if (options.security?.tls !== undefined) return undefined;
  const list = (typeof options.servers === "string" ? [options.servers] : options.servers)
    .flatMap((s) => s.split(","))
    .map((s) => s.trim())
    .filter((s) => s !== "");
  const credential = options.security?.credential;
  const inUrl = list.some((s) => redactUrlCredentials(s) !== s);
  if (credential === undefined && !inUrl) return undefined;
  const remote = list.some((s) => {
    if (/^tls:\/\//i.test(s)) return false;
    try {
      return !LOOPBACK.test(new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(s) ? s : `nats://${s}`).hostname);
    } catch {
      return true;
    }
  });
  if (!remote) return undefined;
  return credential === undefined
    ? "the user and password (or token) in the NATS URL"
    : describeCredential(credential);
}

async function connectFailure(
  err: unknown,
  options: NatsBusOptions,
  timeoutMs: number,
  forcedFor?: string,
): Promise<BusError> {
  const at = serversForMessages(options.servers);
  const credential = options.security?.credential;
  const tls = options.security?.tls;
  const message = redactUrlCredentials(
    err instanceof Error ? err.message.replace(NODE_CA_ADVICE, "") : String(err),
  );
  if (err instanceof AuthorizationError || err instanceof UserAuthenticationExpiredError) {
    const list = typeof options.servers === "string" ? [options.servers] : options.servers;
    const inUrl = list.some((s) => redactUrlCredentials(s) !== s);
    const given = credential !== undefined || inUrl;
    const which =
      credential !== undefined
        ? describeCredential(credential)
        : "the user and password (or token) in the NATS URL";
    return new BusError(
      "BUS_AUTH_FAILED",
      given
        ? `NATS at ${at} refused sumac's credentials (${message}); ${which}: check that they belong to a user ` +
            "of that server (token, nkey, or creds of its account, not expired)"
        : `NATS at ${at} refused sumac (${message}): it requires credentials and none were given; give a ` +
            "creds file, an nkey seed or a token (--nats-creds, --nats-nkey, --nats-token-file, or their variables; docs/nats.md)",
      { cause: err },
    );
  }
  if (
    forcedFor !== undefined &&
    err instanceof ConnectionError &&
    /does not support 'tls'|not available on this server/.test(message)
  )
    return new BusError(
      "BUS_TLS_FAILED",
      `NATS at ${at} does not offer TLS, and sumac sends ${forcedFor} to another host over TLS only: ` +
        "configure TLS on the server (and give its CA with --nats-ca), or set SUMAC_NATS_ALLOW_PLAINTEXT=1 " +
        "to send it in plain text on a network you trust",
      { cause: err },
    );
  if (err instanceof ConnectionError && /does not support 'tls'|not available on this server/.test(message))
    return new BusError(
      "BUS_TLS_FAILED",
      `NATS at ${at} does not offer TLS, which the NATS CA or client certificate given asks for: ` +
        "configure TLS on the server, or drop the TLS options",
      { cause: err },
    );
  if (err instanceof Error && isTlsFailure(err))
    return new BusError(
      "BUS_TLS_FAILED",
      `TLS with NATS at ${at} failed: ${message}; check the CA that verifies the server ` +
        `(${tls?.caFile === undefined ? "none given, so the system's: give one with --nats-ca or SUMAC_NATS_CA" : tls.caFile}) ` +
        "and that the URL's host is a name in the server's certificate",
      { cause: err },
    );
  // A server that verifies clients drops one without a certificate after the handshake, which
  // nats.js sees as no answer: its INFO line tells.
  if (err instanceof TimeoutError && tls?.certFile === undefined) {
    const first = (typeof options.servers === "string" ? options.servers : (options.servers[0] ?? "")).split(
      ",",
    )[0]!;
    const info = await probeServerInfo(first.trim(), Math.min(timeoutMs, 2_000));
    if (info?.tls_verify === true)
      return new BusError(
        "BUS_TLS_FAILED",
        `NATS at ${at} verifies its clients' certificates (mutual TLS) and sumac has none: ` +
          "give one with --nats-cert and --nats-key (or SUMAC_NATS_CERT and SUMAC_NATS_KEY)",
        { cause: err },
      );
  }
  return new BusError(
    "BUS_UNAVAILABLE",
    `cannot connect to NATS at ${at}: ${err instanceof TimeoutError ? `no answer within ${timeoutMs} ms` : message}`,
    { cause: err },
  );
}

/** `work`, or the signal's reason once it is aborted (`work` goes on, its outcome ignored). */
function abortable<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    // Passes on what `work` rejects with, whatever it is.
    const fail: (reason: unknown) => void = reject;
    const onAbort = (): void =>
      reject(signal.reason instanceof Error ? signal.reason : new Error(String(signal.reason)));
    if (signal.aborted) onAbort();
    else signal.addEventListener("abort", onAbort, { once: true });
    work.then(
      (value) => (signal.removeEventListener("abort", onAbort), resolve(value)),
      (err: unknown) => (signal.removeEventListener("abort", onAbort), fail(err)),
    );
  });
}
