/**
 * The lease table: every lease and busy port of every worker host and range, and the operations of
 * the lease protocol over them (acquire, renew, conflict, release, expiry). Deterministic and
 * without I/O: the time and the random draw come with each call, and every change to persisted
 * state is appended to a `changes` list that the service writes to the Bus KV.
 *
 * Lookups are O(log n): a min-heap of lease expiry times, one of cool-down ends, and per pool a
 * min-heap of freed ports (see `pool.ts`). Stale heap entries (a lease renewed since, a
 * port taken again) are skipped when they surface, instead of being searched for and removed.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import {
  publicLease,
  type AcquireRequest,
  type BusyPort,
  type ConflictRequest,
  type GrantReply,
  type Lease,
  type ReleaseReply,
  type ReleaseRequest,
  type RenewReply,
  type RenewRequest,
  type StoredLease,
} from "../../bus/schemas/lease.ts";
import { MinHeap } from "./heap.ts";
import { PortPool, PortTable, validateRange, type HostPorts, type RangeConfig } from "./pool.ts";

export type { RangeConfig } from "./pool.ts";

export interface LeaseTableConfig {
  /** Range name -> how it hands out ports. */
  readonly ranges: Readonly<Record<string, RangeConfig>>;
  /** How long a port reported busy is not granted again, in ms. */
  readonly cooldownMs: number;
}

/** One change to persisted state, in the order made; the service turns these into KV writes. */
export type LeaseChange =
  | { readonly type: "lease"; readonly lease: StoredLease }
  | { readonly type: "lease-gone"; readonly lease: StoredLease; readonly reason: LeaseEndReason }
  | { readonly type: "busy"; readonly busy: BusyPort }
  | { readonly type: "busy-gone"; readonly busy: BusyPort }
  | { readonly type: "conflicts"; readonly count: number };

export type LeaseEndReason = "released" | "expired" | "conflict" | "duplicate";

/** What a restore starts from: the persisted leases, busy ports and conflict count. */
export interface LeaseState {
  readonly leases: readonly StoredLease[];
  readonly busy: readonly BusyPort[];
  readonly conflicts: number;
}

/** The SHA-256 of a lease secret, base64url: what the table keeps and persists. */
export function secretHash(secret: string): string {
  return createHash("sha256").update(secret, "utf8").digest("base64url");
}

/** Whether `secret` is the lease's, compared in constant time (a missing one is not). */
function holds(lease: StoredLease, secret: string | undefined): boolean {
  if (typeof secret !== "string") return false;
  const given = Buffer.from(secretHash(secret), "utf8");
  const kept = Buffer.from(lease.secretHash, "utf8");
  return given.length === kept.length && timingSafeEqual(given, kept);
}

/** The failure for leases whose secret the request did not show (their ids, at most a few). */
function notHolder(op: string, ids: readonly string[]) {
  const shown = ids.slice(0, 5).join(", ") + (ids.length > 5 ? ` and ${ids.length - 5} more` : "");
  return failure(
    "not-holder",
    `${op}: the secret given for lease ${shown} is not its holder's; only the client that acquired a lease may ${op} it`,
  );
}

export class LeaseTable {
  readonly config: LeaseTableConfig;
  private readonly leases = new Map<string, StoredLease>();
  private readonly hosts = new Map<string, HostPorts>();
  /** expiresAt -> lease id (stale once the lease is renewed or gone). */
  private readonly expiries = new MinHeap<string>();
  /** until -> host and port (stale once the port's cool-down changed or ended). */
  private readonly cooldowns = new MinHeap<{ host: HostPorts; port: number }>();
  private conflictCount = 0;

  constructor(config: LeaseTableConfig) {
    for (const [name, range] of Object.entries(config.ranges)) validateRange(name, range);
    if (!Number.isSafeInteger(config.cooldownMs) || config.cooldownMs < 0)
      throw new RangeError(`cooldownMs must be a non-negative integer, not ${config.cooldownMs}`);
    this.config = config;
  }

  get size(): number {
    return this.leases.size;
  }

  get conflicts(): number {
    return this.conflictCount;
  }

  get(leaseId: string): Lease | undefined {
    const lease = this.leases.get(leaseId);
    return lease === undefined ? undefined : publicLease(lease);
  }

  /** Reclaims leases that expired at or before `now` and ends cool-downs that are over. */
  advance(now: number, changes: LeaseChange[]): void {
    const expiries = this.expiries;
    while (expiries.size > 0 && expiries.peekKey()! <= now) {
      const at = expiries.peekKey()!;
      const lease = this.leases.get(expiries.peekValue()!);
      expiries.pop();
      if (lease !== undefined && lease.expiresAt === at) this.end(lease, "expired", changes);
    }
    const cooldowns = this.cooldowns;
    while (cooldowns.size > 0 && cooldowns.peekKey()! <= now) {
      const at = cooldowns.peekKey()!;
      const { host, port } = cooldowns.peekValue()!;
      cooldowns.pop();
      const busy = host.busy.get(port);
      if (busy?.until !== at) continue;
      host.busy.delete(port);
      for (const pool of host.pools.values()) pool.freed(port);
      changes.push({ type: "busy-gone", busy });
      this.dropIfEmpty(host);
    }
  }

  /** Grants a port; a retry with the same lease id gets the same lease back. */
  acquire(request: AcquireRequest, now: number, random: number, changes: LeaseChange[]): GrantReply {
    const existing = this.leases.get(request.leaseId);
    if (existing !== undefined) {
      if (!holds(existing, request.secret)) return notHolder("acquire", [request.leaseId]);
      if (existing.workerHost === request.workerHost && existing.range === request.range)
        return { ok: true, lease: publicLease(existing) };
      return failure("invalid-request", `lease id ${request.leaseId} is in use for another range or host`);
    }
    if (!Object.hasOwn(this.config.ranges, request.range))
      return failure("unknown-range", `no range named ${request.range} is configured`);
    return this.grant(
      request.leaseId,
      request,
      secretHash(request.secret),
      request.leaseMs,
      now,
      random,
      changes,
    );
  }

  /** Extends leases to `now + leaseMs`; ids not held (expired, released, never granted) are listed. */
  renew(request: RenewRequest, now: number, changes: LeaseChange[]): RenewReply {
    const refused = this.notHeld(request.leaseIds, request.secrets);
    if (refused.length > 0) return notHolder("renew", refused);
    const renewed: { leaseId: string; expiresAt: number }[] = [];
    const unknown: string[] = [];
    for (const leaseId of request.leaseIds) {
      const lease = this.leases.get(leaseId);
      if (lease === undefined) {
        unknown.push(leaseId);
        continue;
      }
      const expiresAt = now + request.leaseMs;
      const next: StoredLease = { ...lease, expiresAt };
      this.leases.set(leaseId, next);
      this.expiries.push(expiresAt, leaseId);
      changes.push({ type: "lease", lease: next });
      renewed.push({ leaseId, expiresAt });
    }
    return { ok: true, renewed, unknown };
  }

  /** The lease's port was found taken: busy for the cool-down, and the next port is granted. */
  conflict(request: ConflictRequest, now: number, random: number, changes: LeaseChange[]): GrantReply {
    const lease = this.leases.get(request.leaseId);
    if (lease === undefined) {
      const retried = this.leases.get(request.nextLeaseId);
      if (retried !== undefined) {
        if (!holds(retried, request.nextSecret)) return notHolder("conflict", [request.nextLeaseId]);
        return { ok: true, lease: publicLease(retried) };
      }
      return failure("unknown-lease", `lease ${request.leaseId} is not held (expired or released)`);
    }
    if (!holds(lease, request.secret)) return notHolder("conflict", [request.leaseId]);
    if (this.leases.has(request.nextLeaseId))
      return failure("invalid-request", `lease id ${request.nextLeaseId} is already in use`);
    const pool = this.pool(lease.workerHost, lease.range);
    this.end(lease, "conflict", changes);
    const until = now + this.config.cooldownMs;
    const busy: BusyPort = { workerHost: lease.workerHost, range: lease.range, port: lease.port, until };
    pool.host.busy.set(lease.port, busy);
    this.cooldowns.push(until, { host: pool.host, port: lease.port });
    this.conflictCount++;
    changes.push({ type: "busy", busy });
    changes.push({ type: "conflicts", count: this.conflictCount });
    if (pool.config === undefined)
      return failure("unknown-range", `no range named ${lease.range} is configured any more`);
    return this.grant(
      request.nextLeaseId,
      lease,
      secretHash(request.nextSecret),
      request.leaseMs,
      now,
      random,
      changes,
    );
  }

  /**
   * Ends leases; idempotent. Replies how many were held; a held lease whose secret the request
   * does not show fails it all, and nothing is released.
   */
  release(request: ReleaseRequest, changes: LeaseChange[]): ReleaseReply {
    const refused = this.notHeld(request.leaseIds, request.secrets);
    if (refused.length > 0) return notHolder("release", refused);
    let released = 0;
    for (const leaseId of request.leaseIds) {
      const lease = this.leases.get(leaseId);
      if (lease === undefined) continue;
      this.end(lease, "released", changes);
      released++;
    }
    return { ok: true, released };
  }

  /** The ids of live leases whose secret (same position in `secrets`) is not theirs. */
  private notHeld(leaseIds: readonly string[], secrets: readonly string[] | undefined): string[] {
    const out: string[] = [];
    for (let i = 0; i < leaseIds.length; i++) {
      const lease = this.leases.get(leaseIds[i]!);
      if (lease !== undefined && !holds(lease, secrets?.[i])) out.push(leaseIds[i]!);
    }
    return out;
  }

  /**
   * Replaces the whole table by a persisted state. Two leases on the same port (possible only after
   * a split brain) keep the one granted first; the other is ended as `duplicate`.
   */
  restore(state: LeaseState, changes: LeaseChange[]): void {
    this.leases.clear();
    this.hosts.clear();
    this.expiries.clear();
    this.cooldowns.clear();
    this.conflictCount = state.conflicts;
    const ordered = [...state.leases].sort((a, b) => a.grantedAt - b.grantedAt);
    for (const lease of ordered) {
      const host = this.pool(lease.workerHost, lease.range).host;
      if (host.leased.has(lease.port) || this.leases.has(lease.leaseId)) {
        changes.push({ type: "lease-gone", lease, reason: "duplicate" });
        continue;
      }
      host.leased.set(lease.port, lease.leaseId);
      this.leases.set(lease.leaseId, lease);
      this.expiries.push(lease.expiresAt, lease.leaseId);
    }
    for (const busy of state.busy) {
      const host = this.pool(busy.workerHost, busy.range).host;
      host.busy.set(busy.port, busy);
      this.cooldowns.push(busy.until, { host, port: busy.port });
    }
  }

  /** The leases (of one worker host, or all) by host, range and port, and the busy ports. */
  snapshot(workerHost?: string): { leases: Lease[]; busy: BusyPort[] } {
    const leases: Lease[] = [];
    const busy: BusyPort[] = [];
    for (const lease of this.leases.values())
      if (workerHost === undefined || lease.workerHost === workerHost) leases.push(publicLease(lease));
    for (const host of this.hosts.values())
      if (workerHost === undefined || host.workerHost === workerHost) busy.push(...host.busy.values());
    const order = (a: { workerHost: string; range: string; port: number }, b: typeof a): number =>
      a.workerHost.localeCompare(b.workerHost) || a.range.localeCompare(b.range) || a.port - b.port;
    return { leases: leases.sort(order), busy: busy.sort(order) };
  }

  private grant(
    leaseId: string,
    of: { workerHost: string; range: string; holder: Lease["holder"] },
    hash: string,
    leaseMs: number,
    now: number,
    random: number,
    changes: LeaseChange[],
  ): GrantReply {
    const pool = this.pool(of.workerHost, of.range);
    const port = pool.choose(random);
    if (port === undefined) {
      this.dropIfEmpty(pool.host);
      const cap = pool.config?.cap ?? 65535;
      return failure("exhausted", `no free port left in range ${of.range} on ${of.workerHost} (cap ${cap})`);
    }
    // The host's and pool's own strings, not the request's: one copy of each per host, however
    // many leases it holds.
    const lease: StoredLease = {
      leaseId,
      workerHost: pool.host.workerHost,
      range: pool.range,
      port,
      holder: of.holder,
      grantedAt: now,
      expiresAt: now + leaseMs,
      secretHash: hash,
    };
    pool.host.leased.set(port, leaseId);
    this.leases.set(leaseId, lease);
    this.expiries.push(lease.expiresAt, leaseId);
    changes.push({ type: "lease", lease });
    return { ok: true, lease: publicLease(lease) };
  }

  private end(lease: StoredLease, reason: LeaseEndReason, changes: LeaseChange[]): void {
    const host = this.pool(lease.workerHost, lease.range).host;
    this.leases.delete(lease.leaseId);
    host.leased.delete(lease.port);
    for (const pool of host.pools.values()) pool.freed(lease.port);
    changes.push({ type: "lease-gone", lease, reason });
    if (reason !== "conflict") this.dropIfEmpty(host);
  }

  private pool(workerHost: string, range: string): PortPool {
    let host = this.hosts.get(workerHost);
    if (host === undefined) {
      host = { workerHost, leased: new PortTable(), busy: new Map(), pools: new Map() };
      this.hosts.set(workerHost, host);
    }
    let pool = host.pools.get(range);
    if (pool === undefined) {
      pool = new PortPool(host, range, this.config.ranges[range]);
      host.pools.set(range, pool);
    }
    return pool;
  }

  /** Hosts that hold nothing are dropped, so the table does not grow with hosts seen once. */
  private dropIfEmpty(host: HostPorts): void {
    if (host.leased.size === 0 && host.busy.size === 0) this.hosts.delete(host.workerHost);
  }
}

function failure(
  code: "exhausted" | "unknown-range" | "unknown-lease" | "not-holder" | "invalid-request",
  message: string,
) {
  return { ok: false as const, error: { code, message } };
}
