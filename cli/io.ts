/** What the command line needs from its process, injected so that tests run it in-process. */
export interface CliIo {
  /** Standard output: progress, the summary, `--json` events, help. */
  out(s: string): void;
  /** Standard error: errors, and with `--json` the notices and the summary. */
  err(s: string): void;
  /** Whether stdout is a terminal (live view); default false. */
  readonly isTTY?: boolean;
  /** Terminal size, for the live view and the summary's width. */
  readonly columns?: number;
  readonly rows?: number;
  /** Environment (`SUMAC_NATS_URL`, `XDG_STATE_HOME`); default none. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /**
   * Calls `handler` on every interrupt (SIGINT) until the returned function is called. Without it
   * a run cannot be interrupted gracefully.
   */
  onInterrupt?(handler: () => void): () => void;
  /** Wall clock; default `Date.now`. */
  readonly now?: () => number;
}
