/**
 * Group commit for the lease service (docs/port-leases.md "Persistence and group commit"): the
 * replies of handled requests wait until the blocks their changes touched are durable in the KV.
 * Batches that pile up while a write is in flight are written together next, so the number of KV
 * round trips follows the write latency, not the request rate.
 */
import type { KvStore } from "../../bus/bus.ts";
import { LEASE_EVENT_SUBJECTS, type LeaseFailure } from "../../bus/schemas/lease.ts";
import type { LeaseChange, LeaseTable } from "../../machines/port-lease-table.ts";
import { noteChanges, pendingWrites, writePending, type PendingWrites } from "./store.ts";
import { toJson } from "./transport.ts";

/** Sends one reply (as a plain value; the transport encodes it). */
export type Reply = (reply: unknown) => void;

/** What the commit needs from its service. */
export interface GroupCommitHost {
  readonly kv: KvStore;
  /** The machine's table now: a block is written with its current contents. */
  table(): LeaseTable;
  /** Only the active instance writes: a table forgotten on losing the lock must not be stored. */
  active(): boolean;
  /** Whether the lock claim is still valid by this instance's clock (the fence before replying). */
  lockHeld(): boolean;
  now(): number;
  log(line: string): void;
  publish(subject: string, data: Uint8Array): void;
}

const lostLock: LeaseFailure = {
  ok: false,
  error: { code: "not-active", message: "the lease service instance lost its lock" },
};

export class GroupCommit {
  private readonly host: GroupCommitHost;
  private writes: PendingWrites = pendingWrites();
  private replies: [Reply, unknown][] = [];
  private events: [string, Uint8Array][] = [];
  private flushing: Promise<void> | undefined;

  constructor(host: GroupCommitHost) {
    this.host = host;
  }

  /** Queues replies and the changes they wait for; starts writing unless a write is in flight. */
  add(replies: readonly [Reply, unknown][], changes: readonly LeaseChange[]): void {
    this.replies.push(...replies);
    noteChanges(changes, this.writes);
    this.collectEvents(changes);
    this.kick();
  }

  /** Resolves once everything added so far is written and replied to. */
  async drained(): Promise<void> {
    while (this.flushing !== undefined) await this.flushing;
  }

  private pending(): boolean {
    return this.writes.blocks.size > 0 || this.writes.conflicts !== undefined || this.replies.length > 0;
  }

  /** Starts the flush loop unless it runs; work added as it ends starts it again. */
  private kick(): void {
    if (this.flushing !== undefined) return;
    // Started from a microtask: an outcome emitted on entering `active` is added before the service
    // has seen the new state, and what arrives in the same turn joins the batch.
    this.flushing = Promise.resolve()
      .then(() => this.flush())
      .finally(() => {
        this.flushing = undefined;
        if (this.pending()) this.kick();
      });
  }

  /** Writes pending changes, then sends the replies and events waiting on them; until none are left. */
  private async flush(): Promise<void> {
    while (this.pending()) {
      const writes = this.writes;
      const replies = this.replies;
      const events = this.events;
      this.writes = pendingWrites();
      this.replies = [];
      this.events = [];
      const count = writes.blocks.size + (writes.conflicts === undefined ? 0 : 1);
      let durable = count === 0;
      for (let attempt = 0; !durable && this.host.active(); attempt++) {
        try {
          await writePending(this.host.kv, this.host.table(), writes);
          durable = true;
        } catch (err) {
          this.host.log(`lease: persisting ${count} keys failed (attempt ${attempt + 1}): ${String(err)}`);
          await new Promise((r) => setTimeout(r, Math.min(1_000, 50 * 2 ** attempt)));
        }
      }
      // Fenced: an instance whose lock ran out may have been replaced; its replies could contradict
      // the new active instance's, so the clients are told to ask again.
      const valid = durable && this.host.lockHeld();
      for (const [resolve, reply] of replies) resolve(valid ? reply : lostLock);
      if (valid) for (const [subject, data] of events) this.host.publish(subject, data);
    }
  }

  /** Events for outside subscribers, published once their changes are durable. */
  private collectEvents(changes: readonly LeaseChange[]): void {
    let conflicted: LeaseChange | undefined;
    const at = this.host.now();
    for (const change of changes) {
      if (change.type === "lease-gone" && change.reason === "expired")
        this.events.push([LEASE_EVENT_SUBJECTS.expired, toJson({ lease: change.lease, at })]);
      if (change.type === "lease-gone" && change.reason === "conflict") conflicted = change;
      if (change.type === "busy" && conflicted?.type === "lease-gone") {
        const { leaseId, holder } = conflicted.lease;
        this.events.push([LEASE_EVENT_SUBJECTS.conflict, toJson({ busy: change.busy, leaseId, holder, at })]);
      }
    }
  }
}
