/**
 * The lock that makes one lease service instance active (docs/port-leases.md "Failover"): the KV
 * key `lock`, whose revision is what every decision rests on. No decision compares two hosts'
 * clocks:
 *
 * - the owner takes the key with `create` (absent) and renews it with compare-and-set on its
 *   revision; its claim lasts `lockMs` from the moment it *started* its last successful write, on
 *   its own monotonic clock;
 * - a standby never reads the owner's timestamps: it notes the key's revision and when (on its own
 *   monotonic clock, after the read returned) it first saw it. Only when the same revision is still
 *   there `lockMs` later does it take the key, with compare-and-set on that revision.
 *
 * Why that is safe: the owner wrote revision r before the standby's read returned, so the owner's
 * claim from r ends before the standby's first sight of r plus `lockMs`; a renewal meanwhile
 * changes the revision and the standby starts over, and its compare-and-set fails. Only the rate of
 * the two monotonic clocks matters, not their offsets. The value still carries `expiresAt` (the
 * owner's wall clock) for operators reading the key; nothing decides by it.
 */
import { BusError, encodeJson, type KvStore } from "../../bus/bus.ts";
import type { LeaseLock } from "../../bus/schemas/lease.ts";
import { LOCK_KEY } from "./store.ts";

export interface KvLockOptions {
  /** How long a claim lasts unless renewed. */
  readonly lockMs: number;
  /** Wall clock for the informational `expiresAt` in the value; default `Date.now`. */
  readonly now?: () => number;
  /** Monotonic clock, ms; default `performance.now`. Every decision is on it. */
  readonly clock?: () => number;
  /**
   * No other instance can use this store (the embedded bus, locked to one process): a lock found
   * there was left by a dead process and is taken at once instead of after `lockMs` of watching.
   */
  readonly exclusive?: boolean;
}

export class KvLock {
  private readonly kv: KvStore;
  readonly owner: string;
  private readonly lockMs: number;
  private readonly now: () => number;
  private readonly clock: () => number;
  private readonly exclusive: boolean;
  private revision: number | undefined;
  /** When our claim ends, on our monotonic clock; we stop serving before then if not renewed. */
  private until = 0;
  /** Another owner's revision being watched, and when we first saw it (monotonic). */
  private watched: { readonly revision: number; readonly since: number } | undefined;

  constructor(kv: KvStore, owner: string, options: KvLockOptions) {
    this.kv = kv;
    this.owner = owner;
    this.lockMs = options.lockMs;
    this.now = options.now ?? Date.now;
    this.clock = options.clock ?? (() => performance.now());
    this.exclusive = options.exclusive === true;
  }

  /** Whether we hold a claim that has not run out (by our monotonic clock). */
  held(): boolean {
    return this.revision !== undefined && this.clock() < this.until;
  }

  private value(): Uint8Array {
    return encodeJson({ owner: this.owner, expiresAt: this.now() + this.lockMs } satisfies LeaseLock);
  }

  /**
   * Takes the lock if it is absent, or if its revision has not changed for `lockMs` of our own
   * watching; false otherwise (another owner renews it, or we have not watched long enough).
   */
  async tryAcquire(): Promise<boolean> {
    const entry = await this.kv.get(LOCK_KEY);
    const seen = this.clock();
    if (entry !== undefined && !this.exclusive) {
      if (this.watched?.revision !== entry.revision) {
        this.watched = { revision: entry.revision, since: seen };
        return false;
      }
      if (seen - this.watched.since < this.lockMs) return false;
    }
    const start = this.clock();
    try {
      this.revision =
        entry === undefined
          ? await this.kv.create(LOCK_KEY, this.value())
          : await this.kv.update(LOCK_KEY, this.value(), entry.revision);
    } catch (err) {
      if (err instanceof BusError && err.code === "REVISION_MISMATCH") return false;
      throw err;
    }
    this.watched = undefined;
    this.until = start + this.lockMs;
    return true;
  }

  /** Extends our claim; false when it was lost (someone else took the lock). */
  async renew(): Promise<boolean> {
    if (this.revision === undefined) return false;
    const start = this.clock();
    try {
      this.revision = await this.kv.update(LOCK_KEY, this.value(), this.revision);
    } catch (err) {
      if (err instanceof BusError && err.code === "REVISION_MISMATCH") {
        this.revision = undefined;
        return false;
      }
      throw err;
    }
    this.until = start + this.lockMs;
    return true;
  }

  /** Gives the lock up (a standby can take over at once); best effort. */
  async release(): Promise<void> {
    const revision = this.revision;
    this.revision = undefined;
    if (revision !== undefined) await this.kv.delete(LOCK_KEY, revision).catch(() => undefined);
  }

  /** Forgets our claim without touching the store (it was lost). */
  drop(): void {
    this.revision = undefined;
  }
}
