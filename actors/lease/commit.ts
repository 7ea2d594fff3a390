/**
 * Group commit for the lease service (docs/port-leases.md "Persistence and group commit"): the
 * replies of handled requests wait until the keys their changes touched are durable in the KV.
 *
 * Pipelined: what is added while earlier batches are being written forms the next batch, and its
 * writes start at once (up to {@link MAX_IN_FLIGHT} batches), instead of after the earlier writes
 * end; so the service handles requests while the KV (a JetStream round trip, or an fsync) works.
 * Replies stay in order: a batch's replies go out once it and every batch before it are durable.
 * A batch that touches a key an earlier batch is still writing waits for that batch: two writes of
 * one key are never in flight together, so a retried write can never land after a newer one.
 */
import type { KvStore } from "../../bus/bus.ts";
import { LEASE_EVENT_SUBJECTS, publicLease, type LeaseFailure } from "../../bus/schemas/lease.ts";
import type { LeaseChange } from "../../machines/port-lease/table.ts";
import { noteChanges, pendingWrites, writePending, type PendingWrites } from "./store.ts";
import { toJson } from "./transport.ts";

/** Where one request's reply goes (as a plain value; the transport encodes it). */
export interface Reply {
  send(reply: unknown): void;
}

/** What the commit needs from its service. */
export interface GroupCommitHost {
  readonly kv: KvStore;
  /** Only the active instance writes: a table forgotten on losing the lock must not be stored. */
  active(): boolean;
  /**
   * Whether the lock claim is still valid by this instance's clock: the fence before every write
   * and before replying.
   */
  lockHeld(): boolean;
  /**
   * Told when a write was due but the claim had run out: the instance must stand down, since its
   * table now holds changes that were never written.
   */
  fenced(): void;
  now(): number;
  log(line: string): void;
  publish(subject: string, data: Uint8Array): void;
}

const lostLock: LeaseFailure = {
  ok: false,
  error: { code: "not-active", message: "the lease service instance lost its lock" },
};

/** Most batches written at once. */
const MAX_IN_FLIGHT = 4;

/** One batch: what it writes, the replies and events waiting on it, and how its write ended. */
interface Batch {
  readonly writes: PendingWrites;
  readonly replies: [Reply, unknown][];
  readonly events: [string, Uint8Array][];
  /** Undefined while being written; then whether it became durable. */
  durable: boolean | undefined;
}

/** Whether two batches write a key in common (at most a few batches are in flight to compare with). */
function overlap(a: Batch, b: Batch): boolean {
  if (a.writes.conflicts !== undefined && b.writes.conflicts !== undefined) return true;
  const [small, large] = a.writes.ports.size <= b.writes.ports.size ? [a, b] : [b, a];
  for (const key of small.writes.ports.keys()) if (large.writes.ports.has(key)) return true;
  return false;
}

function newBatch(): Batch {
  return { writes: pendingWrites(), replies: [], events: [], durable: undefined };
}

export class GroupCommit {
  private readonly host: GroupCommitHost;
  /** What is being gathered for the next batch. */
  private next: Batch = newBatch();
  /** Batches being written or waiting for an earlier one, oldest first. */
  private readonly inFlight: Batch[] = [];
  private startScheduled = false;
  /** Told whenever a batch is replied to (`drained`). */
  private onReplied: (() => void)[] = [];

  constructor(host: GroupCommitHost) {
    this.host = host;
  }

  /** Queues replies and the changes they wait for; their batch starts writing soon. */
  add(replies: readonly [Reply, unknown][], changes: readonly LeaseChange[]): void {
    const next = this.next;
    for (const reply of replies) next.replies.push(reply);
    noteChanges(changes, next.writes);
    this.collectEvents(changes, next.events);
    this.scheduleStart();
  }

  /** Resolves once everything added so far is written and replied to. */
  async drained(): Promise<void> {
    while (this.inFlight.length > 0 || this.pending()) {
      this.scheduleStart();
      await new Promise<void>((resolve) => this.onReplied.push(resolve));
    }
  }

  private pending(): boolean {
    const { writes, replies } = this.next;
    return writes.ports.size > 0 || writes.conflicts !== undefined || replies.length > 0;
  }

  private scheduleStart(): void {
    if (this.startScheduled) return;
    this.startScheduled = true;
    // From a microtask: an outcome emitted on entering `active` is added before the service has
    // seen the new state, and what is added in the same turn joins the batch.
    queueMicrotask(() => {
      this.startScheduled = false;
      this.start();
    });
  }

  /** Starts writing the gathered batch, unless too many are in flight or a key is still being written. */
  private start(): void {
    if (!this.pending() || this.inFlight.length >= MAX_IN_FLIGHT) return;
    const batch = this.next;
    for (const other of this.inFlight) if (other.durable === undefined && overlap(batch, other)) return;
    this.next = newBatch();
    this.inFlight.push(batch);
    void this.write(batch).then((durable) => {
      batch.durable = durable;
      this.reply();
    });
  }

  /** Writes a batch, retrying while this instance is active; resolves to whether it is durable. */
  private async write(batch: Batch): Promise<boolean> {
    const { writes } = batch;
    const count = writes.ports.size + (writes.conflicts === undefined ? 0 : 1);
    if (count === 0) return true;
    for (let attempt = 0; this.host.active(); attempt++) {
      // A standby may have taken over since the claim ran out and loaded the state: a write now
      // could overwrite what it grants.
      if (!this.host.lockHeld()) {
        this.host.fenced();
        return false;
      }
      try {
        await writePending(this.host.kv, writes);
        return true;
      } catch (err) {
        this.host.log(`lease: persisting ${count} keys failed (attempt ${attempt + 1}): ${String(err)}`);
        await new Promise((r) => setTimeout(r, Math.min(1_000, 50 * 2 ** attempt)));
      }
    }
    return false;
  }

  /** Sends the replies and events of the oldest batches that are done, in order. */
  private reply(): void {
    while (this.inFlight.length > 0 && this.inFlight[0]!.durable !== undefined) {
      const batch = this.inFlight.shift()!;
      // Fenced: an instance whose lock ran out may have been replaced; its replies could
      // contradict the new active instance's, so the clients are told to ask again.
      const valid = batch.durable === true && this.host.lockHeld();
      for (const [to, reply] of batch.replies) to.send(valid ? reply : lostLock);
      if (valid) for (const [subject, data] of batch.events) this.host.publish(subject, data);
    }
    for (const resolve of this.onReplied.splice(0)) resolve();
    this.start();
  }

  /** Events for outside subscribers, published once their changes are durable. */
  private collectEvents(changes: readonly LeaseChange[], events: [string, Uint8Array][]): void {
    let conflicted: LeaseChange | undefined;
    const at = this.host.now();
    for (const change of changes) {
      if (change.type === "lease-gone" && change.reason === "expired")
        events.push([LEASE_EVENT_SUBJECTS.expired, toJson({ lease: publicLease(change.lease), at })]);
      if (change.type === "lease-gone" && change.reason === "conflict") conflicted = change;
      if (change.type === "busy" && conflicted?.type === "lease-gone") {
        const { leaseId, holder } = conflicted.lease;
        events.push([LEASE_EVENT_SUBJECTS.conflict, toJson({ busy: change.busy, leaseId, holder, at })]);
      }
    }
  }
}
