/**
 * Work queues of the in-process Bus, with the semantics of a JetStream work-queue stream and one
 * durable pull consumer with explicit acks: each job goes to one taker; a job not acknowledged
 * within `ackWaitMs` (restarted by `working()`) is delivered again, before new jobs; `nak` delivers
 * again at once or after a delay; after `maxDeliver` deliveries a job is dropped.
 *
 * Log records: `["J", id, base64]` a job pushed, `["A", id]` a job done (acked or dropped),
 * `["N", id]` the last id (last line of a snapshot). Delivery counts are not logged: after a
 * restart of the process every job left starts again from its first delivery.
 *
 * Timers: ack deadlines and nak delays are unref'd (housekeeping must not keep a process alive);
 * a `next` that waits keeps its timer ref'd, as a caller is waiting on it. `close` clears them all.
 */
import type { Deadline, Job, WorkQueue, WorkQueueOptions } from "./bus.ts";
import { abortError, checkSize, closedError, copy, settle } from "./memory-common.ts";
import { AppendLog, fromBase64, int, loadLog, toBase64 } from "./memory-log.ts";

interface JobState {
  readonly id: number;
  readonly data: Uint8Array;
  deliveries: number;
  /** Changes with every delivery, so that a stale handle's nak or working() does nothing. */
  token: number;
  timer: NodeJS.Timeout | undefined;
}

interface Waiter {
  readonly resolve: (job: Job | undefined) => void;
  readonly reject: (err: unknown) => void;
  readonly timer: NodeJS.Timeout;
  readonly cleanup: () => void;
}

/** The state of one queue, shared by every handle on it. */
export class QueueState {
  readonly name: string;
  ackWaitMs: number;
  maxDeliver: number;
  readonly #jobs = new Map<number, JobState>();
  /** Jobs to deliver again (first) and new jobs, in order. */
  #again: JobState[] = [];
  #fresh: JobState[] = [];
  #freshHead = 0;
  readonly #waiters: Waiter[] = [];
  #lastId = 0;
  #token = 0;
  readonly #log: AppendLog | undefined;
  #records = 0;
  #closed = false;

  constructor(name: string, options: WorkQueueOptions, path?: string) {
    this.name = name;
    this.ackWaitMs = options.ackWaitMs;
    this.maxDeliver = options.maxDeliver;
    if (path === undefined) {
      this.#log = undefined;
      return;
    }
    this.#records = loadLog(path, (r) => this.#replay(r));
    for (const job of this.#jobs.values()) this.#fresh.push(job);
    this.#log = new AppendLog(path);
    if (this.#records > this.#jobs.size * 2 + 64) void this.#compact().catch(() => undefined);
  }

  #replay(r: unknown[]): void {
    const id = int(r[1]);
    switch (r[0]) {
      case "J":
        if (id <= this.#lastId) throw new TypeError(`job ${id} after ${this.#lastId}`);
        this.#lastId = id;
        this.#jobs.set(id, { id, data: fromBase64(r[2]), deliveries: 0, token: 0, timer: undefined });
        return;
      case "A":
        this.#jobs.delete(id);
        return;
      case "N":
        if (id < this.#lastId) throw new TypeError(`last id ${id} after ${this.#lastId}`);
        this.#lastId = id;
        return;
      default:
        throw new TypeError(`unknown record ${String(r[0])}`);
    }
  }

  get pending(): number {
    return this.#jobs.size;
  }

  /** Adds a job (bytes already copied); resolves once durable. */
  push(data: Uint8Array): Promise<void> | undefined {
    const id = ++this.#lastId;
    const job: JobState = { id, data, deliveries: 0, token: 0, timer: undefined };
    this.#jobs.set(id, job);
    this.#fresh.push(job);
    this.#dispatch();
    return this.#persist(["J", id, toBase64(data)]);
  }

  /** The next job, now or when one comes within the deadline. */
  next(deadline: Deadline): Promise<Job | undefined> {
    const job = this.#take();
    if (job) return Promise.resolve(this.#deliver(job));
    const signal = deadline.signal;
    return new Promise((resolve, reject) => {
      const onAbort = (): void => {
        remove();
        reject(abortError(signal));
      };
      const remove = (): void => {
        clearTimeout(waiter.timer);
        signal?.removeEventListener("abort", onAbort);
        const i = this.#waiters.indexOf(waiter);
        if (i !== -1) this.#waiters.splice(i, 1);
      };
      const waiter: Waiter = {
        resolve,
        reject,
        cleanup: remove,
        timer: setTimeout(
          () => {
            remove();
            resolve(undefined);
          },
          Math.max(0, deadline.timeoutMs),
        ),
      };
      this.#waiters.push(waiter);
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  }

  #take(): JobState | undefined {
    const again = this.#again.shift();
    if (again) return again;
    while (this.#freshHead < this.#fresh.length) {
      const job = this.#fresh[this.#freshHead++] as JobState;
      if (this.#freshHead > 1024 && this.#freshHead * 2 > this.#fresh.length) {
        this.#fresh = this.#fresh.slice(this.#freshHead);
        this.#freshHead = 0;
      }
      // A job acked or dropped before its turn stays in the array; skip it.
      if (this.#jobs.get(job.id) === job && job.deliveries === 0 && job.timer === undefined) return job;
    }
    return undefined;
  }

  #dispatch(): void {
    while (this.#waiters.length > 0) {
      const job = this.#take();
      if (!job) return;
      const waiter = this.#waiters.shift() as Waiter;
      waiter.cleanup();
      waiter.resolve(this.#deliver(job));
    }
  }

  #deliver(job: JobState): Job {
    job.deliveries++;
    const token = (job.token = ++this.#token);
    this.#arm(job, this.ackWaitMs, () => this.#expired(job));
    const live = (): boolean => this.#jobs.get(job.id) === job && job.token === token;
    return {
      data: copy(job.data),
      deliveryCount: job.deliveries,
      ack: async () => {
        this.#check("ack");
        // An ack from a handle whose delivery timed out still ends the job: the work was done.
        if (this.#jobs.get(job.id) === job) await this.#done(job);
      },
      nak: async (delayMs?: number) => {
        this.#check("nak");
        if (!live()) return;
        if (job.deliveries >= this.maxDeliver) return await this.#done(job);
        if (delayMs && delayMs > 0) {
          job.token = ++this.#token;
          this.#arm(job, delayMs, () => this.#ready(job));
        } else {
          this.#ready(job);
        }
      },
      working: () =>
        settle(() => {
          this.#check("working");
          if (live()) this.#arm(job, this.ackWaitMs, () => this.#expired(job));
        }),
    };
  }

  #check(what: string): void {
    if (this.#closed) throw closedError(`queue ${this.name}: ${what}`);
  }

  #arm(job: JobState, ms: number, then: () => void): void {
    clearTimeout(job.timer);
    job.timer = setTimeout(then, ms);
    job.timer.unref();
  }

  #expired(job: JobState): void {
    if (job.deliveries >= this.maxDeliver) {
      this.#done(job)?.catch(() => undefined);
      return;
    }
    this.#ready(job);
  }

  /** Back in line for delivery, ahead of new jobs. */
  #ready(job: JobState): void {
    clearTimeout(job.timer);
    job.timer = undefined;
    job.token = ++this.#token;
    this.#again.push(job);
    this.#dispatch();
  }

  #done(job: JobState): Promise<void> | undefined {
    clearTimeout(job.timer);
    job.timer = undefined;
    this.#jobs.delete(job.id);
    const i = this.#again.indexOf(job);
    if (i !== -1) this.#again.splice(i, 1);
    return this.#persist(["A", job.id]);
  }

  #persist(record: readonly unknown[]): Promise<void> | undefined {
    if (!this.#log) return undefined;
    const written = this.#log.append(record);
    if (++this.#records > this.#jobs.size * 2 + 1024) void this.#compact().catch(() => undefined);
    return written;
  }

  #compact(): Promise<void> {
    const records: unknown[][] = [];
    for (const job of this.#jobs.values()) records.push(["J", job.id, toBase64(job.data)]);
    records.push(["N", this.#lastId]);
    this.#records = records.length;
    return (this.#log as AppendLog).snapshot(records);
  }

  /** Clears every timer and ends waiting `next` calls with `BUS_CLOSED`. */
  close(): Promise<void> {
    this.#closed = true;
    for (const job of this.#jobs.values()) clearTimeout(job.timer);
    for (const w of this.#waiters.splice(0)) {
      w.cleanup();
      w.reject(closedError(`queue ${this.name}: next`));
    }
    return this.#log?.close() ?? Promise.resolve();
  }
}

/** Checks the options as the NATS adapter does. */
export function checkQueueOptions(name: string, options: WorkQueueOptions): void {
  if (!(options.ackWaitMs >= 1) || !Number.isInteger(options.maxDeliver) || options.maxDeliver < 1) {
    throw new RangeError(`queue ${name}: ackWaitMs must be >= 1 and maxDeliver a positive integer`);
  }
}

/** A handle on a queue; fails with `BUS_CLOSED` once the bus is closed. */
export class MemoryQueue implements WorkQueue {
  readonly #state: QueueState;
  readonly #isClosed: () => boolean;

  constructor(state: QueueState, isClosed: () => boolean) {
    this.#state = state;
    this.#isClosed = isClosed;
  }

  #check(what: string): void {
    if (this.#isClosed()) throw closedError(`queue ${this.#state.name}: ${what}`);
  }

  async push(data: Uint8Array): Promise<void> {
    this.#check("push");
    checkSize(data);
    await this.#state.push(copy(data));
  }

  async next(deadline: Deadline): Promise<Job | undefined> {
    this.#check("next");
    deadline.signal?.throwIfAborted();
    return await this.#state.next(deadline);
  }

  pending(): Promise<number> {
    return settle(() => {
      this.#check("pending");
      return this.#state.pending;
    });
  }
}
