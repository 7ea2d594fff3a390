/**
 * How much of a target's install output reaches the run's events: per target, a rate (a token
 * bucket in bytes, each line costing its bytes and {@link LINE_COST}) and a total for the run.
 * Beyond them lines are dropped and counted, and the count is said in one line: when output flows
 * again, at most every `reportEveryMs` while it stays over, and when the target changes state.
 * What an agent sends is untrusted: this is what keeps a flooding target from filling the
 * workstation's memory, the bus and the operator's screen, whatever its agent does.
 */

export interface OutputBudgetOptions {
  /** Bytes of output forwarded per target over the whole run; default 8 MiB. */
  readonly maxBytes: number;
  /** Bytes per second per target, sustained; default 64 KiB. */
  readonly bytesPerSecond: number;
  /** Bytes a target may send at once above its rate; default 1 MiB. */
  readonly burstBytes: number;
  /** A line longer than this many characters is cut; default 2000. */
  readonly maxLineChars: number;
  /** While output is dropped, its count is said at most this often; default 10 s. */
  readonly reportEveryMs: number;
}

export const DEFAULT_OUTPUT_BUDGET: OutputBudgetOptions = {
  maxBytes: 8 * 1024 * 1024,
  bytesPerSecond: 64 * 1024,
  burstBytes: 1024 * 1024,
  maxLineChars: 2000,
  reportEveryMs: 10_000,
};

/** What a line costs beyond its bytes: an event is more than its text. */
export const LINE_COST = 64;

/** Lines dropped and their bytes, since the last time they were said. */
export interface Dropped {
  readonly lines: number;
  readonly bytes: number;
}

/** One target's budget. */
export class OutputBudget {
  readonly #o: OutputBudgetOptions;
  #tokens: number;
  #refilledAt: number;
  #used = 0;
  #dropped = { lines: 0, bytes: 0 };
  #reportedAt: number;

  constructor(options: OutputBudgetOptions, now: number) {
    this.#o = options;
    this.#tokens = options.burstBytes;
    this.#refilledAt = now;
    this.#reportedAt = now;
  }

  /** Whether a line of `bytes` may go; when not, it is counted as dropped. */
  take(bytes: number, now: number): boolean {
    const elapsed = Math.max(0, now - this.#refilledAt);
    this.#refilledAt = now;
    this.#tokens = Math.min(this.#o.burstBytes, this.#tokens + (elapsed * this.#o.bytesPerSecond) / 1000);
    const cost = bytes + LINE_COST;
    if (cost <= this.#tokens && this.#used + bytes <= this.#o.maxBytes) {
      this.#tokens -= cost;
      this.#used += bytes;
      return true;
    }
    this.#dropped.lines++;
    this.#dropped.bytes += bytes;
    return false;
  }

  /**
   * The drops not yet said, when it is time to say them (`force`: now, e.g. at a change of state);
   * they count from zero again.
   */
  report(now: number, force: boolean): Dropped | undefined {
    if (this.#dropped.lines === 0) return undefined;
    if (!force && now - this.#reportedAt < this.#o.reportEveryMs) return undefined;
    const dropped = this.#dropped;
    this.#dropped = { lines: 0, bytes: 0 };
    this.#reportedAt = now;
    return dropped;
  }

  /** Whether lines are being dropped right now (some not yet said). */
  get dropping(): boolean {
    return this.#dropped.lines > 0;
  }
}

/** `… 12,345 lines (3.2 MiB) of output dropped`. */
export function droppedText(d: Dropped, o: OutputBudgetOptions): string {
  return (
    `… ${d.lines.toLocaleString("en-US")} line${d.lines === 1 ? "" : "s"} (${bytesText(d.bytes)}) of output dropped ` +
    `(over the output budget: ${bytesText(o.bytesPerSecond)}/s, ${bytesText(o.maxBytes)} per target)`
  );
}

/**
 * `850 B`, `12.3 KiB`, `3.2 MiB`, `1.1 GiB`: powers of 1024, the units a job's sizes are given in,
 * so the budget a job set as `64KiB` is said as `64.0 KiB/s`.
 */
export function bytesText(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let v = n;
  let unit = "B";
  for (const u of units) {
    if (v < 1024) break;
    v /= 1024;
    unit = u;
  }
  return `${v.toFixed(1)} ${unit}`;
}
