/**
 * The central port-lease service (docs/port-leases.md): runs `portLeaseMachine`, serves the lease
 * subjects while this instance holds the lock, and persists the table to the Bus KV.
 *
 * Group commit: requests are handed to the machine in arrival order (it handles them one at a time
 * in that order); the changes they make are written as one batch of pipelined KV writes, and only
 * then are their replies sent. Requests arriving while a batch is being written form the next
 * batch, written at once, its replies sent after the earlier batch's (`commit.ts`). So a reply
 * never announces a grant that a failover could lose.
 */
import { randomFillSync, randomUUID } from "node:crypto";
import { hostname } from "node:os";
import { createActor, fromPromise, type Actor } from "xstate";
import { z } from "zod";
import { BusError, type Bus, type BusMessage, type KvStore, type Subscription } from "../../bus/bus.ts";
import {
  AcquireRequest,
  ConflictRequest,
  LEASE_BUCKET,
  LEASE_EVENT_SUBJECTS,
  LEASE_SUBJECTS,
  ReleaseRequest,
  RenewRequest,
  StatusRequest,
  type LeaseFailure,
} from "../../bus/schemas/lease.ts";
import {
  portLeaseMachine,
  type LeaseOutcome,
  type QueuedRequest,
} from "../../machines/port-lease/port-lease.machine.ts";
import { DEFAULT_COOLDOWN_MS, leaseTableConfig, type LeaseRangesOption } from "./config.ts";
import { KvLock } from "./lock.ts";
import { GroupCommit, type Reply } from "./commit.ts";
import { leaseDomain, loadState } from "./store.ts";
import { fromJson, toJson, type LeaseOp, type LeaseTransport } from "./transport.ts";

export interface LeaseServiceOptions {
  readonly bus: Bus;
  /** This instance's id in the lock and in status replies; default host, pid and a random part. */
  readonly instance?: string;
  /** Range name -> base (and optionally strategy, window, cap); default workstation and callback. */
  readonly ranges?: LeaseRangesOption;
  /** How long a port reported busy is not granted again; default 60 s. */
  readonly cooldownMs?: number;
  /** How long the lock lasts unless renewed (renewed every third of it); default 6 s. */
  readonly lockMs?: number;
  /** How often expired leases are reclaimed when no request comes; default 1 s. */
  readonly tickMs?: number;
  /** Wall clock in ms since the epoch; default `Date.now`. Lease expiry times are on it. */
  readonly now?: () => number;
  /**
   * Monotonic clock in ms; default `performance.now`. The lock's decisions are on it alone (with
   * the KV's revisions), never on another host's clock.
   */
  readonly clock?: () => number;
  /**
   * No other instance can use this bus (the embedded bus, whose state directory is locked to this
   * process): a lock left in its KV is a dead process's and is taken at once.
   */
  readonly exclusive?: boolean;
  /** Log lines (no secrets in them); default none. */
  readonly log?: (line: string) => void;
}

export type LeaseServiceState = "standby" | "recovering" | "active" | "stopped";

export interface LeaseService {
  readonly instance: string;
  /**
   * The lease domain's id, the same for every instance on the same KV bucket: the owner that
   * firewall rules for these leases carry (docs/firewall.md "What is tagged").
   */
  readonly domain: string;
  state(): LeaseServiceState;
  /** Resolves once this instance is active (at once when it is). */
  whenActive(): Promise<void>;
  /** Stops serving, finishes the writes in flight and gives the lock up. */
  stop(): Promise<void>;
  /**
   * A transport for `LeaseClient`s in this process: direct calls, same queue and persistence. The
   * service does not validate these requests again: the client checks what its callers give it.
   */
  transport(): LeaseTransport;
}

const schemas: Record<LeaseOp, z.ZodType> = {
  acquire: AcquireRequest,
  renew: RenewRequest,
  conflict: ConflictRequest,
  release: ReleaseRequest,
  status: StatusRequest,
};

/**
 * A request waiting for its reply. Settled once: by its reply, or (a direct call) by its deadline;
 * whatever comes later is dropped.
 */
class Call implements Reply {
  readonly seq: number;
  readonly op: LeaseOp;
  /** `performance.now()` time of a direct call's deadline; Infinity for requests over the Bus. */
  readonly until: number;
  settled = false;
  private readonly resolve: (reply: unknown) => void;
  private readonly reject: (err: Error) => void;

  constructor(
    seq: number,
    op: LeaseOp,
    until: number,
    resolve: (reply: unknown) => void,
    reject: (err: Error) => void,
  ) {
    this.seq = seq;
    this.op = op;
    this.until = until;
    this.resolve = resolve;
    this.reject = reject;
  }

  send(reply: unknown): void {
    if (this.settled) return;
    this.settled = true;
    this.resolve(reply);
  }

  fail(err: Error): void {
    if (this.settled) return;
    this.settled = true;
    this.reject(err);
  }
}

const failure = (code: LeaseFailure["error"]["code"], message: string): LeaseFailure => ({
  ok: false,
  error: { code, message: message.slice(0, 1000) },
});

/** Starts a lease service instance; it becomes active when it wins the lock (at once if free). */
export async function startLeaseService(options: LeaseServiceOptions): Promise<LeaseService> {
  // Leases mean nothing after a reboot of the machine whose bus keeps them in-process (their holders
  // and firewall rules die with it): written to the file before a reply, not synced per grant.
  const kv = await options.bus.kv(LEASE_BUCKET, { durability: "process" });
  const service = new Service(options, kv, await leaseDomain(kv));
  service.start();
  return service;
}

class Service implements LeaseService {
  readonly instance: string;
  readonly domain: string;
  private readonly bus: Bus;
  private readonly now: () => number;
  private readonly log: (line: string) => void;
  private readonly lockMs: number;
  private readonly tickMs: number;
  private readonly lock: KvLock;
  private readonly actor: Actor<typeof portLeaseMachine>;
  private current: LeaseServiceState = "standby";
  private seq = 0;
  private queue: QueuedRequest[] = [];
  private dispatchScheduled = false;
  /**
   * The requests queued or being handled, in arrival order (`waitingHead` is the oldest's index):
   * every outcome answers requests in that order, so a queue, not a map, finds each its caller.
   */
  private waiting: Call[] = [];
  private waitingHead = 0;
  /** Direct calls (`transport()`) not known to be settled, whose deadlines the sweeper checks. */
  private localCalls: Call[] = [];
  private readonly commit: GroupCommit;
  private serving: Promise<Subscription[]> | undefined;
  private lockTimer: NodeJS.Timeout | undefined;
  private lockStepRunning: Promise<void> | undefined;
  private stopping = false;
  private tickTimer: NodeJS.Timeout | undefined;
  private activeWaiters: (() => void)[] = [];
  private localSweeper: NodeJS.Timeout | undefined;
  private readonly draws = new Uint32Array(1024);
  private drawn = this.draws.length;

  constructor(options: LeaseServiceOptions, kv: KvStore, domain: string) {
    this.bus = options.bus;
    this.domain = domain;
    this.instance = options.instance ?? `${hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`;
    this.now = options.now ?? Date.now;
    this.log = options.log ?? (() => undefined);
    this.lockMs = options.lockMs ?? 6_000;
    this.tickMs = options.tickMs ?? 1_000;
    this.lock = new KvLock(kv, this.instance, {
      lockMs: this.lockMs,
      now: this.now,
      clock: options.clock,
      exclusive: options.exclusive,
    });
    const restore = fromPromise(() =>
      loadState(kv, (key, why) => this.log(`lease: skipped invalid ${key}: ${why.slice(0, 200)}`)),
    );
    this.commit = new GroupCommit({
      kv,
      active: () => this.current === "active",
      lockHeld: () => this.lock.held(),
      fenced: () => this.standDown("its claim ran out before a write"),
      now: this.now,
      log: this.log,
      publish: (subject, data) => this.publishData(subject, data),
    });
    const table = leaseTableConfig(options.ranges, options.cooldownMs ?? DEFAULT_COOLDOWN_MS);
    this.actor = createActor(portLeaseMachine.provide({ actors: { restore } }), {
      input: { instance: this.instance, table },
    });
  }

  start(): void {
    this.actor.on("outcome", (outcome) => this.onOutcome(outcome));
    this.actor.on("restore-failed", ({ error }) => {
      this.log(`lease: restoring the persisted state failed, giving the lock up: ${String(error)}`);
      void this.lock.release();
    });
    this.actor.subscribe((snapshot) => this.onState(snapshot.value));
    this.actor.start();
    this.tickTimer = setInterval(() => {
      if (this.current === "active") this.actor.send({ type: "tick", now: this.now() });
    }, this.tickMs);
    this.runLockStep();
  }

  state(): LeaseServiceState {
    return this.current;
  }

  whenActive(): Promise<void> {
    if (this.current === "active") return Promise.resolve();
    return new Promise((resolve) => this.activeWaiters.push(resolve));
  }

  async stop(): Promise<void> {
    if (this.current === "stopped" || this.stopping) return;
    this.stopping = true;
    clearTimeout(this.lockTimer);
    clearInterval(this.tickTimer);
    // A lock step in flight could take or renew the lock after it is given up below.
    await this.lockStepRunning;
    await this.stopServing();
    this.dispatch();
    await this.commit.drained();
    this.actor.send({ type: "stop" });
    this.actor.stop();
    await this.lock.release();
  }

  private runLockStep(): void {
    this.lockStepRunning = this.lockStep().finally(() => {
      this.lockStepRunning = undefined;
      if (!this.stopping) this.lockTimer = setTimeout(() => this.runLockStep(), this.lockMs / 3);
    });
  }

  /** Takes or renews the lock; runs every third of the lock time. */
  private async lockStep(): Promise<void> {
    try {
      if (this.current === "standby") {
        if (await this.lock.tryAcquire()) {
          this.log(`lease: ${this.instance} took the lock`);
          this.actor.send({ type: "lock.acquired" });
        }
      } else if (this.current !== "stopped" && !(await this.lock.renew())) {
        this.log(`lease: ${this.instance} lost the lock to another instance`);
        this.actor.send({ type: "lock.lost" });
      }
    } catch (err) {
      this.log(`lease: lock step failed: ${String(err)}`);
      if (this.current !== "standby" && !this.lock.held()) {
        this.log(`lease: ${this.instance} could not renew the lock in time; standing by`);
        this.lock.drop();
        this.actor.send({ type: "lock.lost" });
      }
    }
  }

  /** Stops serving and forgets the table (the lock is taken again only as a standby would). */
  private standDown(why: string): void {
    if (this.current !== "active" && this.current !== "recovering") return;
    this.log(`lease: ${this.instance} stands down: ${why}`);
    this.lock.drop();
    this.actor.send({ type: "lock.lost" });
  }

  private onState(state: LeaseServiceState): void {
    const previous = this.current;
    if (state === previous) return;
    this.current = state;
    if (state === "active") {
      this.serving = this.serve();
      const leases = this.actor.getSnapshot().context.table.size;
      this.publish(LEASE_EVENT_SUBJECTS.active, { instance: this.instance, leases, at: this.now() });
      for (const resolve of this.activeWaiters.splice(0)) resolve();
    } else if (previous === "active") {
      void this.stopServing();
    }
  }

  private async serve(): Promise<Subscription[]> {
    const ops = Object.keys(LEASE_SUBJECTS) as LeaseOp[];
    return Promise.all(ops.map((op) => this.bus.serve(LEASE_SUBJECTS[op], (m) => this.onRequest(op, m))));
  }

  private async stopServing(): Promise<void> {
    const serving = this.serving;
    this.serving = undefined;
    const subscriptions = await serving?.catch(() => []);
    await Promise.all((subscriptions ?? []).map((s) => s.unsubscribe()));
  }

  private onRequest(op: LeaseOp, message: BusMessage): Promise<Uint8Array> {
    let body: unknown;
    try {
      body = fromJson(message.data);
    } catch (err) {
      return Promise.resolve(toJson(failure("invalid-request", `${op}: not JSON: ${String(err)}`)));
    }
    return this.submit(op, body).then(toJson);
  }

  transport(): LeaseTransport {
    return {
      trusted: true,
      // The direct call can still wait on KV writes, so it keeps the caller's deadline.
      request: (op, body, deadline) => this.enqueue(op, body, performance.now() + deadline.timeoutMs),
    };
  }

  /**
   * Fails the direct calls whose deadline passed: one sweeper checks them all instead of a timer
   * per call (a timer per grant cost about 10 %).
   */
  private sweepLocalCalls(): void {
    const now = performance.now();
    for (const call of this.localCalls)
      if (call.until <= now) call.fail(new BusError("TIMEOUT", `lease ${call.op}: no reply in time`));
    this.localCalls = this.localCalls.filter((call) => !call.settled);
    if (this.localCalls.length === 0) {
      clearInterval(this.localSweeper);
      this.localSweeper = undefined;
    }
  }

  /** Validates a request and queues it; resolves with its reply once its changes are durable. */
  private submit(op: LeaseOp, raw: unknown): Promise<unknown> {
    const parsed = schemas[op].safeParse(raw);
    if (!parsed.success)
      return Promise.resolve(failure("invalid-request", `${op}: ${z.prettifyError(parsed.error)}`));
    return this.enqueue(op, parsed.data);
  }

  /**
   * Queues a valid request (validated by `submit`, or made by a `LeaseClient` on the trusted
   * transport); resolves with its reply once its changes are durable, or fails with `TIMEOUT` at
   * `until` (a `performance.now()` time; direct calls only).
   */
  private enqueue(op: LeaseOp, body: unknown, until = Infinity): Promise<unknown> {
    if (this.current === "stopped")
      return Promise.resolve(failure("not-active", "the lease service stopped"));
    return new Promise((resolve, reject: (err: Error) => void) => {
      const seq = this.seq++;
      const call = new Call(seq, op, until, resolve, reject);
      this.waiting.push(call);
      if (until !== Infinity) {
        this.localCalls.push(call);
        // Not unref'd: a call waiting for its deadline keeps the process alive, as a timer would.
        this.localSweeper ??= setInterval(() => this.sweepLocalCalls(), 20);
      }
      const random = op === "acquire" || op === "conflict" ? this.draw() : 0;
      this.queue.push({ op, body, seq, random } as QueuedRequest);
      if (!this.dispatchScheduled) {
        this.dispatchScheduled = true;
        setImmediate(() => this.dispatch());
      }
    });
  }

  /**
   * A random draw in [0, 1) for a request that picks a port (the `random` strategy), from the
   * crypto source a thousand at a time rather than by a `randomInt` call per request.
   */
  private draw(): number {
    if (this.drawn === this.draws.length) {
      randomFillSync(this.draws);
      this.drawn = 0;
    }
    return this.draws[this.drawn++]! / 0x1_0000_0000;
  }

  /**
   * Hands the queued requests to the machine as one event, in arrival order. (Handing them over in
   * smaller events, so that the first ones' KV writes start while the rest are handled, did not pay:
   * bench/lease.ts measured no gain over NATS and a loss with the state directory's fsync, where
   * one sync per batch of everything waiting is what bounds the rate.)
   */
  private dispatch(): void {
    this.dispatchScheduled = false;
    if (this.queue.length === 0) return;
    const requests = this.queue;
    this.queue = [];
    this.actor.send({ type: "requests", now: this.now(), requests });
  }

  private onOutcome(outcome: LeaseOutcome): void {
    const replies: [Reply, unknown][] = [];
    const waiting = this.waiting;
    let head = this.waitingHead;
    for (const { seq, reply } of outcome.replies) {
      // Requests older than this reply's were never answered (none is, unless the machine
      // stopped): their callers time out.
      while (head < waiting.length && waiting[head]!.seq < seq) head++;
      const call = waiting[head];
      if (call?.seq !== seq) continue;
      head++;
      replies.push([call, reply]);
    }
    // The answered part is dropped now and then, not per outcome.
    if (head === waiting.length) {
      this.waiting = [];
      head = 0;
    } else if (head > 1024 && head * 2 > waiting.length) {
      this.waiting = waiting.slice(head);
      head = 0;
    }
    this.waitingHead = head;
    this.commit.add(replies, outcome.changes);
  }

  private publish(subject: string, value: unknown): void {
    this.publishData(subject, toJson(value));
  }

  private publishData(subject: string, data: Uint8Array): void {
    this.bus
      .publish(subject, data)
      .catch((err: unknown) => this.log(`lease: publish ${subject} failed: ${String(err)}`));
  }
}
