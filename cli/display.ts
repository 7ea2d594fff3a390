/**
 * How a run is shown: a live per-target view on a terminal (display-live.ts), one line per state
 * change otherwise (display-lines.ts), or the events as JSON lines with `--json` (display-json.ts).
 * Every display ends with the summary (summary.ts).
 */
import type { RunEvent, RunResult } from "../run/types.ts";

export interface RunDisplay {
  /** One event of the run, in order. */
  event(e: RunEvent): void;
  /** A message from sumac itself for the operator (e.g. how an interrupt is handled). */
  notice(text: string): void;
  /** The run is over: the summary. */
  finish(result: RunResult): void;
  /** Stops what the display runs (the live view's timer) without a summary: the run did not start. */
  close(): void;
}

export interface DisplayOptions {
  /** Progress, the summary and (with `--json`) the events. */
  readonly out: (s: string) => void;
  /** Notices and, with `--json`, the summary (stdout holds only JSON then). */
  readonly err: (s: string) => void;
  readonly command: "deploy" | "inventory";
  /** The job's target ids in order: the live view has a row for each from the start. */
  readonly targets: readonly string[];
  /** Terminal width and height (live view, table widths). */
  readonly columns?: number;
  readonly rows?: number;
  /** Live view: least time between two redraws; default 100 ms (at most 10 redraws a second). */
  readonly redrawMs?: number;
}

/** What sumac says when the operator interrupts a run. */
export const CANCEL_NOTICE = {
  graceful:
    "interrupt: installs in progress finish, then every target is cleaned up " +
    "(press Ctrl-C again to stop installs at once)",
  force: "second interrupt: stopping installs now; cleanup still runs on every target",
} as const;
