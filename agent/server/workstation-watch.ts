/**
 * Orphan protection, second half: "when its workstation stops answering". The
 * idle clock (`idle-watch.ts`) only sees requests that arrive; an agent busy with a long install,
 * or one whose workstation crashed between calls, needs to ask. With a callback listener
 * configured, the agent sends a heartbeat `Notify` at once when it starts (the workstation waits
 * for that first one to know callbacks get through) and then every `heartbeatMs`.
 *
 * Signs of life are an acknowledged callback of any kind and an authenticated request from the
 * workstation (received, or still being answered): the workstation's requests flowing keep the
 * agent even when callbacks do not get through. When there has been no sign of life for
 * `lostAfterMs` (counted from the start when there never was one), the workstation is presumed
 * gone and `onLost` runs once: the agent stops exactly as on Shutdown.
 */
import type { CallbackMessage } from "../protocol/callback-messages.ts";
import { REAL_TIMERS, type IdleTimers } from "./idle-watch.ts";

/** The part of the callback client the watch needs. */
export interface HeartbeatChannel {
  /** Resolves true once acknowledged, false when dropped; never rejects. */
  send(message: CallbackMessage): Promise<boolean>;
  readonly lastAcknowledged: number | undefined;
}

export interface WorkstationWatchOptions {
  readonly heartbeatMs: number;
  readonly lostAfterMs: number;
  readonly now?: () => number;
  readonly timers?: IdleTimers;
}

/** Defaults: a heartbeat every 15 s; lost after 60 s without any sign of life. */
export const DEFAULT_HEARTBEAT_MS = 15_000;
export const DEFAULT_LOST_AFTER_MS = 60_000;

/**
 * Sends heartbeats and calls `onLost(silentForMs)` once the workstation has given no sign of life
 * (an acknowledged callback, an authenticated request) for `lostAfterMs`.
 *
 * @example
 * const watch = new WorkstationWatch(callback, { heartbeatMs: 15_000, lostAfterMs: 60_000 },
 *   (ms) => agent.stop(`the workstation has not answered for ${ms} ms`));
 * watch.start();
 * const done = watch.request(); try { ... } finally { done(); }
 */
export class WorkstationWatch {
  readonly #channel: HeartbeatChannel;
  readonly #options: Required<WorkstationWatchOptions>;
  readonly #onLost: (silentForMs: number) => void;
  #handle: unknown;
  #startedAt = 0;
  /** When an authenticated request last arrived or ended. */
  #lastRequest: number | undefined;
  /** Authenticated requests being answered now. */
  #inProgress = 0;
  #stopped = true;

  constructor(channel: HeartbeatChannel, options: WorkstationWatchOptions, onLost: (ms: number) => void) {
    if (!(options.heartbeatMs > 0) || !(options.lostAfterMs >= options.heartbeatMs))
      throw new RangeError("heartbeatMs must be positive and lostAfterMs at least heartbeatMs");
    this.#channel = channel;
    this.#options = { now: Date.now, timers: REAL_TIMERS, ...options };
    this.#onLost = onLost;
  }

  /** Starts watching: the first heartbeat goes now, the next ones every `heartbeatMs`. */
  start(): void {
    this.#stopped = false;
    this.#startedAt = this.#options.now();
    void this.#beat();
  }

  stop(): void {
    this.#stopped = true;
    if (this.#handle !== undefined) this.#options.timers.clearTimeout(this.#handle);
    this.#handle = undefined;
  }

  /**
   * An authenticated request from the workstation arrived: a sign of life now, and for as long as
   * it is being answered. Call the returned function when it has been answered.
   */
  request(): () => void {
    this.#lastRequest = this.#options.now();
    this.#inProgress++;
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.#inProgress--;
      this.#lastRequest = this.#options.now();
    };
  }

  #arm(): void {
    if (this.#stopped) return;
    this.#handle = this.#options.timers.setTimeout(() => void this.#beat(), this.#options.heartbeatMs);
  }

  async #beat(): Promise<void> {
    this.#handle = undefined;
    if (this.#stopped) return;
    await this.#channel.send({ kind: "heartbeat" });
    if (this.#stopped) return;
    const silent = this.#inProgress > 0 ? 0 : this.#options.now() - this.#lastSign();
    if (silent >= this.#options.lostAfterMs) {
      this.#stopped = true;
      this.#onLost(silent);
      return;
    }
    this.#arm();
  }

  /** The latest sign of life, or the start when there was none. */
  #lastSign(): number {
    return Math.max(this.#startedAt, this.#channel.lastAcknowledged ?? 0, this.#lastRequest ?? 0);
  }
}
