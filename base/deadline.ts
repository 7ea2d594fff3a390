/**
 * The one deadline helper (STYLE.md item 7): every network call and every command sumac runs goes
 * through it, or through a library's own deadline that it backs up.
 */

export interface DeadlineOptions<T = unknown> {
  /** Milliseconds from the call. */
  readonly ms: number;
  /**
   * What the result rejects with when time is up. Made by the caller before the call, its stack
   * names the operation that timed out; a function makes it only when the timer fires, for calls
   * so frequent that a stack each would cost (the bus's requests).
   */
  readonly timeout: Error | (() => Error);
  /** Aborting it stops the work as the deadline does, and the result rejects with its reason. */
  readonly signal?: AbortSignal | undefined;
  /**
   * At the deadline (or abort), only abort the work's signal and settle when the work does: for
   * work that must have ended before its caller goes on (a local process group, killed and
   * reaped). The work must then settle on its signal; the result is what it settles with.
   */
  readonly waitForWork?: boolean;
  /**
   * Called with what the work gives when it gives it too late (the deadline passed, or the caller
   * aborted, while its value was on its way): a process, a session, a socket the caller will never
   * see, to be closed.
   */
  readonly dispose?: (value: T) => void;
}

/**
 * Runs `work` with a deadline. `work` gets a signal that aborts when time is up or when
 * `options.signal` aborts: it should stop what it started then (kill the child, close the
 * channel). The result settles once: with what `work` gives, or with the timeout error or the
 * signal's reason, at that moment, even when `work` ignores its signal (what it does afterwards is
 * ignored, a late rejection included).
 *
 * @example
 * const timeout = new RemoteTimeoutError(`command on ${host} did not finish within ${ms} ms`);
 * const result = await withDeadline({ ms, timeout, signal }, (stop) => runCommand(command, stop));
 */
export function withDeadline<T>(
  options: DeadlineOptions<T>,
  work: (signal: AbortSignal) => Promise<T> | T,
): Promise<T> {
  const outer = options.signal;
  if (outer?.aborted === true) return Promise.reject(reasonOf(outer));
  const controller = new AbortController();
  let stopped = false;
  return new Promise<T>((resolve, reject) => {
    const finish = (): void => {
      clearTimeout(timer);
      outer?.removeEventListener("abort", onAbort);
    };
    const stop = (reason: Error): void => {
      stopped = true;
      finish();
      if (options.waitForWork !== true) reject(reason);
      controller.abort(reason);
    };
    const timer = setTimeout(
      () => stop(typeof options.timeout === "function" ? options.timeout() : options.timeout),
      options.ms,
    );
    const onAbort = (): void => stop(reasonOf(outer!));
    outer?.addEventListener("abort", onAbort, { once: true });
    // A throw of `work` becomes a rejection. Whichever comes first settles the result: the work
    // (its rejection passed on as it is, by adopting it), or the deadline or abort above.
    const pending = (async () => work(controller.signal))();
    pending.then(
      (value) => {
        finish();
        if (stopped && options.waitForWork !== true) options.dispose?.(value);
        resolve(value);
      },
      () => {
        finish();
        resolve(pending);
      },
    );
  });
}

/** How work that holds something ends: see {@link endsOnce}. */
export interface Ending {
  /** True once the work has ended, one way or the other. */
  readonly done: boolean;
  /** Claims the ending for a success; false when the work has ended already (release then). */
  readonly succeed: () => boolean;
  /** Ends the work with `error`: releases what it holds, then rejects; later calls do nothing. */
  readonly fail: (error: Error) => void;
}

/**
 * The one ending of work given to {@link withDeadline} that holds something while it runs (a
 * channel, a client, a child process): the first failure, or its signal aborting at the deadline,
 * releases what it holds and rejects; whatever comes later does nothing.
 *
 * @example
 * withDeadline({ ms, timeout }, (stop) => new Promise((resolve, reject) => {
 *   const end = endsOnce(stop, reject, () => client.destroy());
 *   client.on("ready", () => end.succeed() ? resolve(client) : client.end());
 *   client.on("error", end.fail);
 * }));
 */
export function endsOnce(stop: AbortSignal, reject: (error: Error) => void, release: () => void): Ending {
  let done = false;
  const ending: Ending = {
    get done() {
      return done;
    },
    succeed: () => !done && (done = true),
    fail: (error) => {
      if (done) return;
      done = true;
      release();
      reject(error);
    },
  };
  stop.addEventListener("abort", () => ending.fail(stop.reason as Error), { once: true });
  return ending;
}

/** An aborted signal's reason as an Error (`abort()` without one gives an AbortError already). */
export function reasonOf(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  return reason instanceof Error ? reason : new Error(String(reason));
}
