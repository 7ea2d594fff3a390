/**
 * The lease client that target actors use (docs/port-leases.md "Client"): `acquire`, `renew`,
 * `reportConflict` and `release`, each with a deadline, over the Bus. While it lives it renews the
 * leases it holds, all in one request per round.
 *
 * Every call retries until its deadline when no active service answers (none running yet, or a
 * failover in progress). Retries are safe: lease ids are chosen here, so a repeated acquire or
 * conflict report gets the lease the first attempt was granted instead of a second one.
 *
 * A lease id is this client's random prefix (96 bits, so two clients never share one) and a
 * counter: unique like a UUID, at a fraction of `randomUUID`'s cost per grant.
 *
 * On a trusted transport (`LeaseService.transport()`, in the service's process) the service does
 * not validate requests again: the client checks what its callers give it (worker host and lease
 * time once, a range and a holder the first time it sees them) against the same schemas, and sends
 * only requests that pass. Over the Bus the service validates every request.
 */
import { randomBytes } from "node:crypto";
import { z } from "zod";
import { BusError, type Bus } from "../../bus/bus.ts";
import {
  AcquireRequest,
  GrantReply,
  LEASE_SUBJECTS,
  LeaseHolder as LeaseHolderSchema,
  LeaseMs,
  RangeName,
  ReleaseReply,
  RenewReply,
  STATUS_LIMIT,
  StatusReply,
  WorkerHost,
  type ConflictRequest,
  type Lease,
  type LeaseHolder,
  type ReleaseRequest,
  type RenewRequest,
  type StatusRequest,
} from "../../bus/schemas/lease.ts";
import { busTransport, type LeaseOp, type LeaseTransport } from "./transport.ts";
import {
  errorOfReply,
  isLeaseError,
  type LeaseError,
  LeaseInvalidRequestError,
  LeaseServiceError,
  LeaseUnavailableError,
} from "./errors.ts";

export interface LeaseClientOptions {
  /** The Bus to reach the service over, or a transport (e.g. `LeaseService.transport()`). */
  readonly bus: Bus | LeaseTransport;
  /** The worker host this client's ports are on. */
  readonly workerHost: string;
  /** Lease time asked for; default 30 s. */
  readonly leaseMs?: number;
  /** Default deadline of each call; default 10 s (covers a failover with the default lock time). */
  readonly timeoutMs?: number;
  /** Deadline of one attempt within a call; default 2 s. */
  readonly attemptMs?: number;
  /** How often held leases are renewed; default a third of the lease time. */
  readonly renewEveryMs?: number;
  /** Told when a held lease turns out lost (expired and reclaimed, e.g. after a long pause). */
  readonly onLost?: (leaseId: string) => void;
  /** Told when a renewal round fails (the next round tries again). */
  readonly onRenewFailed?: (error: unknown) => void;
}

export interface CallOptions {
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal;
}

export interface LeaseClient {
  readonly workerHost: string;
  /** Leases a port of `range` for `holder`. */
  acquire(range: string, holder: LeaseHolder, options?: CallOptions & { leaseMs?: number }): Promise<Lease>;
  /** Renews the given leases (default all held); resolves to the ids the service no longer knows. */
  renew(leaseIds?: readonly string[], options?: CallOptions): Promise<string[]>;
  /** The lease's port was taken (EADDRINUSE): marks it busy and returns the next lease. */
  reportConflict(leaseId: string, options?: CallOptions): Promise<Lease>;
  /** Releases leases; idempotent. Resolves to how many the service still held. */
  release(leaseIds: string | readonly string[], options?: CallOptions): Promise<number>;
  /** The service's leases (of this worker host, or all) and busy ports. */
  status(
    options?: CallOptions & { allHosts?: boolean; after?: string },
  ): Promise<Extract<StatusReply, { ok: true }>>;
  /**
   * Every lease of every worker host, paged (`status` with `after`) until the last page: complete,
   * or a throw (`LeaseServiceError` when the service does not page). Each page has the deadline.
   */
  allLeases(options?: CallOptions): Promise<Lease[]>;
  /** The leases this client holds and renews. */
  held(): Lease[];
  /** Stops renewing; with `release`, releases what is held first. */
  close(options?: { release?: boolean } & CallOptions): Promise<void>;
}

/** A lease's secret: 128 random bits, base64url. */
function newSecret(): string {
  return randomBytes(16).toString("base64url");
}

/** Creates a client; it renews what it holds every `renewEveryMs` until closed. */
export function createLeaseClient(options: LeaseClientOptions): LeaseClient {
  return new Client(options);
}

const MAX_IDS = 4096;
/** Pages `allLeases` reads at most: 2,000 leases each. */
const MAX_PAGES = 10_000;

/** The ok reply of a reply schema. */
type Ok<S extends z.ZodType> = Extract<z.infer<S>, { ok: true }>;

class Client implements LeaseClient {
  readonly workerHost: string;
  private readonly transport: LeaseTransport;
  private readonly leaseMs: number;
  private readonly timeoutMs: number;
  private readonly attemptMs: number;
  private readonly options: LeaseClientOptions;
  private readonly leases = new Map<string, Lease>();
  /** The secret of each lease this client acquired (held or being acquired); never sent elsewhere. */
  private readonly secrets = new Map<string, string>();
  private readonly timer: NodeJS.Timeout;
  private renewing = false;
  /** Trusted transport only: whether this client's own worker host and lease time are valid. */
  private readonly validOptions: boolean;
  /** Trusted transport only: ranges found valid, and holders found valid with the copy sent. */
  private readonly validRanges = new Set<string>();
  private readonly validHolders = new WeakMap<LeaseHolder, LeaseHolder>();
  private readonly idPrefix = `L${randomBytes(12).toString("base64url")}-`;
  private idCount = 0;

  constructor(options: LeaseClientOptions) {
    this.options = options;
    this.transport =
      "request" in options.bus && "trusted" in options.bus ? options.bus : busTransport(options.bus);
    this.workerHost = options.workerHost;
    this.leaseMs = options.leaseMs ?? 30_000;
    this.timeoutMs = options.timeoutMs ?? 10_000;
    this.attemptMs = options.attemptMs ?? 2_000;
    this.validOptions =
      WorkerHost.safeParse(this.workerHost).success && LeaseMs.safeParse(this.leaseMs).success;
    this.timer = setInterval(() => void this.renewRound(), options.renewEveryMs ?? this.leaseMs / 3);
    // Renewal alone must not keep a process alive that has nothing else to do.
    this.timer.unref();
  }

  acquire(range: string, holder: LeaseHolder, options?: CallOptions & { leaseMs?: number }): Promise<Lease> {
    const body: AcquireRequest = {
      leaseId: this.newId(),
      workerHost: this.workerHost,
      range,
      holder,
      leaseMs: options?.leaseMs ?? this.leaseMs,
      secret: newSecret(),
    };
    try {
      if (this.transport.trusted) body.holder = this.checked(body);
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
    this.secrets.set(body.leaseId, body.secret);
    // Not an async function, and the lease kept by `call`'s own callback: two promises less per
    // grant (bench/lease.ts).
    return this.call("acquire", body, GrantReply, options, this.keep).catch((err: unknown) => {
      this.secrets.delete(body.leaseId);
      throw err;
    });
  }

  /** Holds (and renews) a granted lease; returns it. */
  private readonly keep = (reply: Ok<typeof GrantReply>): Lease => {
    this.leases.set(reply.lease.leaseId, reply.lease);
    return reply.lease;
  };

  /** The secrets of `ids`; one this client does not have is a fresh one, which the service refuses. */
  private secretsOf(ids: readonly string[]): string[] {
    return ids.map((id) => this.secrets.get(id) ?? newSecret());
  }

  private forget(leaseId: string): void {
    this.leases.delete(leaseId);
    this.secrets.delete(leaseId);
  }

  async renew(leaseIds?: readonly string[], options?: CallOptions): Promise<string[]> {
    const ids = leaseIds ?? [...this.leases.keys()];
    const unknown: string[] = [];
    for (let i = 0; i < ids.length; i += MAX_IDS) {
      const leaseIds = ids.slice(i, i + MAX_IDS);
      const body: RenewRequest = { leaseIds, secrets: this.secretsOf(leaseIds), leaseMs: this.leaseMs };
      const reply = await this.call("renew", body, RenewReply, options);
      for (const { leaseId, expiresAt } of reply.renewed) {
        const lease = this.leases.get(leaseId);
        if (lease !== undefined) this.leases.set(leaseId, { ...lease, expiresAt });
      }
      unknown.push(...reply.unknown);
    }
    for (const leaseId of unknown) this.forget(leaseId);
    return unknown;
  }

  async reportConflict(leaseId: string, options?: CallOptions): Promise<Lease> {
    const body: ConflictRequest = {
      leaseId,
      secret: this.secretsOf([leaseId])[0]!,
      nextLeaseId: this.newId(),
      nextSecret: newSecret(),
      leaseMs: this.leaseMs,
    };
    this.secrets.set(body.nextLeaseId, body.nextSecret);
    this.leases.delete(leaseId);
    try {
      const reply = await this.call("conflict", body, GrantReply, options);
      this.leases.set(reply.lease.leaseId, reply.lease);
      this.secrets.delete(leaseId);
      return reply.lease;
    } catch (err) {
      this.secrets.delete(body.nextLeaseId);
      throw err;
    }
  }

  async release(leaseIds: string | readonly string[], options?: CallOptions): Promise<number> {
    const ids = typeof leaseIds === "string" ? [leaseIds] : leaseIds;
    let released = 0;
    for (let i = 0; i < ids.length; i += MAX_IDS) {
      const leaseIds = ids.slice(i, i + MAX_IDS);
      const body: ReleaseRequest = { leaseIds, secrets: this.secretsOf(leaseIds) };
      released += (await this.call("release", body, ReleaseReply, options)).released;
      for (const id of body.leaseIds) this.forget(id);
    }
    return released;
  }

  status(
    options?: CallOptions & { allHosts?: boolean; after?: string },
  ): Promise<Extract<StatusReply, { ok: true }>> {
    const body: StatusRequest = options?.allHosts === true ? {} : { workerHost: this.workerHost };
    if (options?.after !== undefined) body.after = options.after;
    return this.call("status", body, StatusReply, options);
  }

  async allLeases(options?: CallOptions): Promise<Lease[]> {
    const leases: Lease[] = [];
    let after = "";
    for (let page = 0; ; page++) {
      const reply = await this.status({ ...options, allHosts: true, after });
      leases.push(...reply.leases);
      if (reply.next === undefined) {
        // A full page without `next` comes from a service that does not page: more may exist.
        if (reply.truncated && reply.leases.length >= STATUS_LIMIT)
          throw new LeaseServiceError("status: the service listed a truncated page without a next one");
        return leases;
      }
      // A service that does not page (an older one ignores `after`) would repeat itself forever.
      if (reply.next <= after || page >= MAX_PAGES)
        throw new LeaseServiceError(
          `status: the listing of leases did not advance past ${after || "the start"}`,
        );
      after = reply.next;
    }
  }

  held(): Lease[] {
    return [...this.leases.values()];
  }

  async close(options?: { release?: boolean } & CallOptions): Promise<void> {
    clearInterval(this.timer);
    if (options?.release === true && this.leases.size > 0)
      await this.release([...this.leases.keys()], options);
  }

  /**
   * Trusted transport: checks what an acquire takes from its caller, and returns the holder to
   * send, a frozen copy that the caller cannot change under the service's table. Throws
   * `LeaseInvalidRequestError` with the message the service would give.
   */
  private checked(body: AcquireRequest): LeaseHolder {
    const { range, holder, leaseMs } = body;
    let valid = this.validOptions && (leaseMs === this.leaseMs || LeaseMs.safeParse(leaseMs).success);
    if (valid && !this.validRanges.has(range)) {
      valid = RangeName.safeParse(range).success;
      // Bounded: ranges are a few configured names, but callers could pass anything.
      if (valid && this.validRanges.size < 1024) this.validRanges.add(range);
    }
    let copy = this.validHolders.get(holder);
    if (valid && (copy?.run !== holder.run || copy.target !== holder.target)) {
      valid = LeaseHolderSchema.safeParse(holder).success;
      copy = Object.freeze({ run: holder.run, target: holder.target });
      if (valid) this.validHolders.set(holder, copy);
    }
    if (valid) return copy!;
    const parsed = AcquireRequest.safeParse(body);
    const why = parsed.success ? "rejected" : z.prettifyError(parsed.error);
    throw new LeaseInvalidRequestError(`acquire: ${why}`);
  }

  /** A lease id no other client uses: `L` (ids start with a letter: firewall tags need it), 16 random characters, `-`, a counter (at most 29 in all). */
  private newId(): string {
    return this.idPrefix + (this.idCount++).toString(36);
  }

  private async renewRound(): Promise<void> {
    if (this.renewing || this.leases.size === 0) return;
    this.renewing = true;
    try {
      for (const leaseId of await this.renew()) this.options.onLost?.(leaseId);
    } catch (err) {
      this.options.onRenewFailed?.(err);
    } finally {
      this.renewing = false;
    }
  }

  /**
   * One request with retries until the deadline: on no answer, on no responders and on `not-active`
   * (a failover). Other failure replies throw their error class at once.
   *
   * The first attempt runs without the retry loop (an async function with a try block per
   * attempt): nearly every call ends there, and the loop's promises were a good part of what a
   * grant allocated (bench/lease.ts).
   */
  private call<S extends z.ZodType>(
    op: LeaseOp,
    body: unknown,
    schema: S,
    options?: CallOptions,
  ): Promise<Ok<S>>;
  private call<S extends z.ZodType, R>(
    op: LeaseOp,
    body: unknown,
    schema: S,
    options: CallOptions | undefined,
    map: (reply: Ok<S>) => R,
  ): Promise<R>;
  private call<S extends z.ZodType, R>(
    op: LeaseOp,
    body: unknown,
    schema: S,
    options?: CallOptions,
    map?: (reply: Ok<S>) => R,
  ): Promise<Ok<S> | R> {
    const timeoutMs = options?.timeoutMs ?? this.timeoutMs;
    const end = performance.now() + timeoutMs;
    const signal = options?.signal;
    const retry = (attempt: number, last: unknown): Promise<Ok<S> | R> =>
      this.retry(op, body, schema, options, end, attempt, last).then(map);
    if (signal?.aborted === true || !(timeoutMs > 0)) return retry(0, undefined);
    const attemptMs = Math.max(1, Math.min(this.attemptMs, timeoutMs));
    return this.transport
      .request(op, body, signal ? { timeoutMs: attemptMs, signal } : { timeoutMs: attemptMs })
      .then(
        (value) => {
          const reply = this.outcome(op, value, schema);
          if (isLeaseError(reply)) return retry(1, reply);
          return map === undefined ? reply : map(reply);
        },
        (err: unknown) => {
          if (!(err instanceof BusError) || !err.retryable) throw err;
          return retry(1, err);
        },
      );
  }

  /** The attempts after the first one, after a back-off, until the deadline. */
  private async retry<S extends z.ZodType>(
    op: LeaseOp,
    body: unknown,
    schema: S,
    options: CallOptions | undefined,
    end: number,
    attempt: number,
    last: unknown,
  ): Promise<Ok<S>> {
    const signal = options?.signal;
    for (; ; attempt++) {
      if (attempt > 0) {
        // Back off a little so a failover is not met with a storm of requests.
        await new Promise((r) =>
          setTimeout(r, Math.min(20 * 2 ** Math.min(attempt - 1, 5), Math.max(0, end - performance.now()))),
        );
      }
      const left = end - performance.now();
      // Unlike STYLE.md item 7, the error is made only when the deadline passes: capturing a stack
      // per call cost more than the grant itself (bench/lease.ts), and async stack traces still
      // name the client method that called `call`.
      if (left <= 0 || signal?.aborted === true) {
        const timeoutMs = options?.timeoutMs ?? this.timeoutMs;
        throw new LeaseUnavailableError(
          `${LEASE_SUBJECTS[op]}: no active lease service answered within ${timeoutMs} ms`,
          { cause: last },
        );
      }
      const attemptMs = Math.max(1, Math.min(this.attemptMs, left));
      try {
        const value = await this.transport.request(
          op,
          body,
          signal ? { timeoutMs: attemptMs, signal } : { timeoutMs: attemptMs },
        );
        const reply = this.outcome(op, value, schema);
        if (!isLeaseError(reply)) return reply;
        last = reply;
      } catch (err) {
        if (isLeaseError(err)) throw err;
        if (!(err instanceof BusError) || !err.retryable) throw err;
        last = err;
      }
    }
  }

  /**
   * The ok reply in `value`; the `not-active` error to retry on (returned); other failure replies
   * and malformed replies are thrown.
   */
  private outcome<S extends z.ZodType>(op: LeaseOp, value: unknown, schema: S): Ok<S> | LeaseError {
    // Replies of an in-process service are typed values of our own making; others are checked.
    const parsed = this.transport.trusted ? { success: true as const, data: value } : schema.safeParse(value);
    if (!parsed.success)
      throw new LeaseInvalidRequestError(`${LEASE_SUBJECTS[op]}: malformed reply`, { cause: parsed.error });
    const reply = parsed.data as { ok: true } | { ok: false; error: { code: string; message: string } };
    if (reply.ok) return reply as Ok<S>;
    const error = errorOfReply(reply.error.code as never, reply.error.message);
    if (reply.error.code !== "not-active") throw error;
    return error;
  }
}
