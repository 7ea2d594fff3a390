/**
 * Orphan protection: when no authenticated request arrives for `idleTimeoutMs`, the agent's
 * workstation is presumed gone and the agent removes itself. The clock only runs while no
 * authenticated request is in progress, so a long install does not count as idle.
 */

/** The timer functions used; tests inject their own to take no real time. */
export interface IdleTimers {
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** Real timers, unref'd: a pending watch alone does not keep the agent alive. */
export const REAL_TIMERS: IdleTimers = {
  setTimeout: (callback, ms) => setTimeout(callback, ms).unref(),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

/**
 * Calls `onIdle` once, `idleTimeoutMs` after the last authenticated request ended (or after
 * {@link IdleWatch.start} when none came).
 *
 * @example
 * const idle = new IdleWatch(600_000, () => agent.stop("idle"));
 * idle.start();
 * const done = idle.busy(); try { ... } finally { done(); }
 */
export class IdleWatch {
  readonly #ms: number;
  readonly #onIdle: () => void;
  readonly #timers: IdleTimers;
  #handle: unknown;
  #busy = 0;
  #stopped = true;

  constructor(idleTimeoutMs: number, onIdle: () => void, timers: IdleTimers = REAL_TIMERS) {
    if (!(idleTimeoutMs > 0)) throw new RangeError("idleTimeoutMs must be positive");
    this.#ms = idleTimeoutMs;
    this.#onIdle = onIdle;
    this.#timers = timers;
  }

  /** Arms the clock. */
  start(): void {
    this.#stopped = false;
    this.#arm();
  }

  /** Marks an authenticated request in progress; call the returned function when it ends. */
  busy(): () => void {
    this.#busy++;
    this.#disarm();
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.#busy--;
      this.#arm();
    };
  }

  /** Disarms for good (the agent is stopping anyway). */
  stop(): void {
    this.#stopped = true;
    this.#disarm();
  }

  #arm(): void {
    this.#disarm();
    if (this.#stopped || this.#busy > 0) return;
    this.#handle = this.#timers.setTimeout(() => {
      this.#handle = undefined;
      if (this.#stopped || this.#busy > 0) return;
      this.#stopped = true;
      this.#onIdle();
    }, this.#ms);
  }

  #disarm(): void {
    if (this.#handle !== undefined) this.#timers.clearTimeout(this.#handle);
    this.#handle = undefined;
  }
}
