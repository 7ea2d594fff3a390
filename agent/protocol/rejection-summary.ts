/**
 * Refusals said without letting the refused write the log: within each interval the first few are
 * said as they come, the rest are counted, and their count (with the last one's text) is said in
 * one line when the interval ends. Whoever can reach a port can make refusals without end (a bad
 * handshake, a request without a MAC); this keeps each of them from becoming a line or an event.
 */

export interface RejectionSummaryOptions {
  /** Said as they come in each interval; default 3. */
  readonly burst?: number;
  /** Default 10 s. */
  readonly intervalMs?: number;
  readonly now?: () => number;
  /** What is counted, plural, for the summary: `requests refused`. */
  readonly what: string;
  /** Receives each line said: a refusal as it came, or the summary of those counted. */
  readonly say: (line: string) => void;
}

export class RejectionSummary {
  readonly #burst: number;
  readonly #intervalMs: number;
  readonly #now: () => number;
  readonly #what: string;
  readonly #say: (line: string) => void;
  #windowStart = -Infinity;
  #saidInWindow = 0;
  #counted = 0;
  #last = "";
  #timer: NodeJS.Timeout | undefined;

  constructor(options: RejectionSummaryOptions) {
    this.#burst = options.burst ?? 3;
    this.#intervalMs = options.intervalMs ?? 10_000;
    this.#now = options.now ?? Date.now;
    this.#what = options.what;
    this.#say = options.say;
  }

  /** Refusals counted and not yet said. */
  get pending(): number {
    return this.#counted;
  }

  add(line: string): void {
    const now = this.#now();
    if (now - this.#windowStart >= this.#intervalMs) {
      this.flush();
      this.#windowStart = now;
      this.#saidInWindow = 0;
    }
    if (this.#saidInWindow < this.#burst) {
      this.#saidInWindow++;
      this.#say(line);
      return;
    }
    this.#counted++;
    this.#last = line;
    // Said when the interval ends, even if nothing else comes.
    this.#timer ??= setTimeout(
      () => {
        this.#timer = undefined;
        this.flush();
      },
      Math.max(0, this.#windowStart + this.#intervalMs - now),
    ).unref();
  }

  /** Says the count now, if any (e.g. before the log records a stop). */
  flush(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#counted === 0) return;
    const seconds = Math.max(1, Math.round((this.#now() - this.#windowStart) / 1000));
    const line = `${this.#counted.toLocaleString("en-US")} more ${this.#what} in the last ${seconds} s (last: ${this.#last})`;
    this.#counted = 0;
    this.#last = "";
    this.#say(line);
  }
}
