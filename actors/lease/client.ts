/**
 * The lease client that target actors use (docs/port-leases.md "Client"): `acquire`, `renew`,
 * `reportConflict` and `release`, each with a deadline, over the Bus. While it lives it renews the
 * leases it holds, all in one request per round.
 *
 * Every call retries until its deadline when no active service answers (none running yet, or a
 * failover in progress). Retries are safe: lease ids are chosen here, so a repeated acquire or
 * conflict report gets the lease the first attempt was granted instead of a second one.
 */
import { randomUUID } from "node:crypto";
import type { z } from "zod";
import { BusError, type Bus } from "../../bus/bus.ts";
import {
  GrantReply,
  LEASE_SUBJECTS,
  ReleaseReply,
  RenewReply,
  StatusReply,
  type AcquireRequest,
  type ConflictRequest,
  type Lease,
  type LeaseHolder,
  type ReleaseRequest,
  type RenewRequest,
  type StatusRequest,
} from "../../bus/schemas/lease.ts";
import { busTransport, type LeaseOp, type LeaseTransport } from "./transport.ts";
import { errorOfReply, LeaseError, LeaseInvalidRequestError, LeaseUnavailableError } from "./errors.ts";

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
  status(options?: CallOptions & { allHosts?: boolean }): Promise<Extract<StatusReply, { ok: true }>>;
  /** The leases this client holds and renews. */
  held(): Lease[];
  /** Stops renewing; with `release`, releases what is held first. */
  close(options?: { release?: boolean } & CallOptions): Promise<void>;
}

/** Creates a client; it renews what it holds every `renewEveryMs` until closed. */
export function createLeaseClient(options: LeaseClientOptions): LeaseClient {
  return new Client(options);
}

const MAX_IDS = 4096;

class Client implements LeaseClient {
  readonly workerHost: string;
  private readonly transport: LeaseTransport;
  private readonly leaseMs: number;
  private readonly timeoutMs: number;
  private readonly attemptMs: number;
  private readonly options: LeaseClientOptions;
  private readonly leases = new Map<string, Lease>();
  private readonly timer: NodeJS.Timeout;
  private renewing = false;

  constructor(options: LeaseClientOptions) {
    this.options = options;
    this.transport =
      "request" in options.bus && "trusted" in options.bus ? options.bus : busTransport(options.bus);
    this.workerHost = options.workerHost;
    this.leaseMs = options.leaseMs ?? 30_000;
    this.timeoutMs = options.timeoutMs ?? 10_000;
    this.attemptMs = options.attemptMs ?? 2_000;
    this.timer = setInterval(() => void this.renewRound(), options.renewEveryMs ?? this.leaseMs / 3);
    // Renewal alone must not keep a process alive that has nothing else to do.
    this.timer.unref();
  }

  async acquire(
    range: string,
    holder: LeaseHolder,
    options?: CallOptions & { leaseMs?: number },
  ): Promise<Lease> {
    const body: AcquireRequest = {
      leaseId: randomUUID(),
      workerHost: this.workerHost,
      range,
      holder,
      leaseMs: options?.leaseMs ?? this.leaseMs,
    };
    const reply = await this.call("acquire", body, GrantReply, options);
    this.leases.set(reply.lease.leaseId, reply.lease);
    return reply.lease;
  }

  async renew(leaseIds?: readonly string[], options?: CallOptions): Promise<string[]> {
    const ids = leaseIds ?? [...this.leases.keys()];
    const unknown: string[] = [];
    for (let i = 0; i < ids.length; i += MAX_IDS) {
      const body: RenewRequest = { leaseIds: ids.slice(i, i + MAX_IDS), leaseMs: this.leaseMs };
      const reply = await this.call("renew", body, RenewReply, options);
      for (const { leaseId, expiresAt } of reply.renewed) {
        const lease = this.leases.get(leaseId);
        if (lease !== undefined) this.leases.set(leaseId, { ...lease, expiresAt });
      }
      unknown.push(...reply.unknown);
    }
    for (const leaseId of unknown) this.leases.delete(leaseId);
    return unknown;
  }

  async reportConflict(leaseId: string, options?: CallOptions): Promise<Lease> {
    const body: ConflictRequest = { leaseId, nextLeaseId: randomUUID(), leaseMs: this.leaseMs };
    this.leases.delete(leaseId);
    const reply = await this.call("conflict", body, GrantReply, options);
    this.leases.set(reply.lease.leaseId, reply.lease);
    return reply.lease;
  }

  async release(leaseIds: string | readonly string[], options?: CallOptions): Promise<number> {
    const ids = typeof leaseIds === "string" ? [leaseIds] : leaseIds;
    let released = 0;
    for (let i = 0; i < ids.length; i += MAX_IDS) {
      const body: ReleaseRequest = { leaseIds: ids.slice(i, i + MAX_IDS) };
      released += (await this.call("release", body, ReleaseReply, options)).released;
      for (const id of body.leaseIds) this.leases.delete(id);
    }
    return released;
  }

  status(options?: CallOptions & { allHosts?: boolean }): Promise<Extract<StatusReply, { ok: true }>> {
    const body: StatusRequest = options?.allHosts === true ? {} : { workerHost: this.workerHost };
    return this.call("status", body, StatusReply, options);
  }

  held(): Lease[] {
    return [...this.leases.values()];
  }

  async close(options?: { release?: boolean } & CallOptions): Promise<void> {
    clearInterval(this.timer);
    if (options?.release === true && this.leases.size > 0)
      await this.release([...this.leases.keys()], options);
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
   */
  private async call<S extends z.ZodType>(
    op: LeaseOp,
    body: unknown,
    schema: S,
    options?: CallOptions,
  ): Promise<Extract<z.infer<S>, { ok: true }>> {
    const timeoutMs = options?.timeoutMs ?? this.timeoutMs;
    let last: unknown;
    // Unlike STYLE.md item 7, the error is made only when the deadline passes: capturing a stack per
    // call cost more than the grant itself (bench/lease.ts), and async stack traces still name the
    // client method that called `call`.
    const timeout = (): LeaseUnavailableError =>
      new LeaseUnavailableError(`${subject}: no active lease service answered within ${timeoutMs} ms`, {
        cause: last,
      });
    const end = performance.now() + timeoutMs;
    const subject = LEASE_SUBJECTS[op];
    for (let attempt = 0; ; attempt++) {
      const left = end - performance.now();
      if (left <= 0 || options?.signal?.aborted === true) throw timeout();
      try {
        const value = await this.transport.request(op, body, {
          timeoutMs: Math.max(1, Math.min(this.attemptMs, left)),
          ...(options?.signal ? { signal: options.signal } : {}),
        });
        // Replies of an in-process service are typed values of our own making; others are checked.
        const parsed = this.transport.trusted
          ? { success: true as const, data: value }
          : schema.safeParse(value);
        if (!parsed.success)
          throw new LeaseInvalidRequestError(`${subject}: malformed reply`, { cause: parsed.error });
        const reply = parsed.data as { ok: true } | { ok: false; error: { code: string; message: string } };
        if (reply.ok) return reply as Extract<z.infer<S>, { ok: true }>;
        const error = errorOfReply(reply.error.code as never, reply.error.message);
        if (reply.error.code !== "not-active") throw error;
        last = error;
      } catch (err) {
        if (err instanceof LeaseError) throw err;
        if (!(err instanceof BusError) || !err.retryable) throw err;
        last = err;
      }
      // Back off a little so a failover is not met with a storm of requests.
      await new Promise((r) =>
        setTimeout(r, Math.min(20 * 2 ** Math.min(attempt, 5), Math.max(0, end - performance.now()))),
      );
    }
  }
}
