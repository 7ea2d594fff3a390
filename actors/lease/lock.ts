/**
 * The lock that makes one lease service instance active (docs/port-leases.md "Failover"): a KV key
 * whose value names the owner and when its claim ends. Taken with create (absent key) or
 * compare-and-set on the revision (expired claim), renewed by compare-and-set by the owner. The
 * expiry is in the value because nats-server 2.9.10 has no per-key TTL.
 */
import { BusError, decodeJson, encodeJson, type KvStore } from "../../bus/bus.ts";
import { LeaseLock } from "../../bus/schemas/lease.ts";
import { LOCK_KEY } from "./store.ts";

export class KvLock {
  private readonly kv: KvStore;
  readonly owner: string;
  private readonly lockMs: number;
  private readonly now: () => number;
  private revision: number | undefined;
  /** When our claim ends by our own clock; the owner stops serving before then if not renewed. */
  private until = 0;

  constructor(kv: KvStore, owner: string, lockMs: number, now: () => number) {
    this.kv = kv;
    this.owner = owner;
    this.lockMs = lockMs;
    this.now = now;
  }

  /** Whether we hold a claim that has not run out (by our clock). */
  held(): boolean {
    return this.revision !== undefined && this.now() < this.until;
  }

  /** Takes the lock if it is free or expired; false when another owner's claim is still valid. */
  async tryAcquire(): Promise<boolean> {
    const start = this.now();
    const entry = await this.kv.get(LOCK_KEY);
    const value = encodeJson({ owner: this.owner, expiresAt: start + this.lockMs } satisfies LeaseLock);
    try {
      if (entry === undefined) {
        this.revision = await this.kv.create(LOCK_KEY, value);
      } else {
        const current = LeaseLock.safeParse(safeDecode(entry.value));
        // A value that is not a lock (corrupt) counts as expired, or nobody could ever take over.
        if (current.success && current.data.owner !== this.owner && current.data.expiresAt > start)
          return false;
        this.revision = await this.kv.update(LOCK_KEY, value, entry.revision);
      }
    } catch (err) {
      if (err instanceof BusError && err.code === "REVISION_MISMATCH") return false;
      throw err;
    }
    this.until = start + this.lockMs;
    return true;
  }

  /** Extends our claim; false when it was lost (someone else took the lock). */
  async renew(): Promise<boolean> {
    if (this.revision === undefined) return false;
    const start = this.now();
    const value = encodeJson({ owner: this.owner, expiresAt: start + this.lockMs } satisfies LeaseLock);
    try {
      this.revision = await this.kv.update(LOCK_KEY, value, this.revision);
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

function safeDecode(data: Uint8Array): unknown {
  try {
    return decodeJson(data);
  } catch {
    return undefined;
  }
}
