/**
 * The display on a terminal: one line per target, redrawn in place at most every `redrawMs`
 * (default 100 ms) when something changed, under a header with the counts. Warnings, errors and
 * notices are printed above the view and stay; a target's latest other log line shows on its row.
 * With more targets than the terminal has lines, the rows shown are those at work, then those that
 * failed, then the rest, and one line counts what is not shown.
 */
import { CANCEL_NOTICE, type DisplayOptions, type RunDisplay } from "./display.ts";
import { clip, errorText, formatDuration, stateText } from "./format.ts";
import { summaryText } from "./summary.ts";
import { printable } from "../base/text.ts";
import type { RunEvent, RunResult } from "../run/types.ts";

type Status = "queued" | "running" | "succeeded" | "failed" | "cancelled";

interface Row {
  readonly id: string;
  status: Status;
  text: string;
  progress: string;
  last: string;
}

/** ESC [ n F: to the start of the line n lines up; ESC [ J: clear to the end of the screen. */
const up = (n: number): string => (n > 0 ? `\x1b[${n}F` : "\r");
const CLEAR_DOWN = "\x1b[J";

export class LiveDisplay implements RunDisplay {
  readonly #o: DisplayOptions;
  readonly #rows = new Map<string, Row>();
  #drawn = 0;
  #dirty = false;
  #timer: NodeJS.Timeout | undefined;
  #header = "";
  #startedAt = 0;
  #lastAt = 0;
  #cancel = "";

  constructor(options: DisplayOptions) {
    this.#o = options;
    for (const id of options.targets)
      this.#rows.set(id, { id, status: "queued", text: "queued", progress: "", last: "" });
  }

  get #width(): number {
    return Math.max(20, (this.#o.columns ?? 80) - 1);
  }

  event(e: RunEvent): void {
    this.#lastAt = Math.max(this.#lastAt, e.at);
    switch (e.type) {
      case "run.started":
        this.#startedAt = e.at;
        this.#header = `sumac ${this.#o.command} ${e.job ?? ""}`;
        this.#above([`sumac: run ${e.run} on the ${e.bus} bus; run directory ${e.runDir}`]);
        this.#timer ??= setInterval(() => this.#tick(), this.#o.redrawMs ?? 100);
        this.#timer.unref();
        break;
      case "target.state": {
        const row = this.#row(e.target);
        row.status = e.to === "succeeded" || e.to === "failed" || e.to === "cancelled" ? e.to : "running";
        row.text = stateText(e);
        if (e.step !== "install") row.progress = "";
        if (row.status !== "running") row.last = "";
        if (e.error && !e.retrying && e.to !== "failed") this.#above([`${e.target}: ${errorText(e.error)}`]);
        break;
      }
      case "target.progress":
        this.#row(e.target).progress = `${e.percent}%`;
        break;
      case "target.log":
        if (e.level === "warn" || e.level === "error")
          this.#above([`${e.target}: ${e.source} ${e.level}: ${e.message}`]);
        else if (e.level === "info") this.#row(e.target).last = e.message;
        break;
      case "run.cancel":
        this.#cancel = e.mode === "force" ? " · stopping" : " · cancelling";
        this.#above([`sumac: ${CANCEL_NOTICE[e.mode]}`]);
        break;
      case "run.note":
        this.#above([`sumac: ${e.message}`]);
        break;
      case "target.done":
      case "run.finished":
        break;
    }
    this.#dirty = true;
  }

  #row(id: string): Row {
    let row = this.#rows.get(id);
    if (!row) this.#rows.set(id, (row = { id, status: "queued", text: "queued", progress: "", last: "" }));
    return row;
  }

  #tick(): void {
    if (!this.#dirty) return;
    this.#dirty = false;
    this.#o.out(`${up(this.#drawn)}${CLEAR_DOWN}${this.#view()}`);
  }

  /**
   * Lines that stay: printed above the view, which is drawn again under them. Not clipped (a path
   * or an error must be read whole); wrapping does not matter, only the view's lines are redrawn.
   */
  #above(lines: readonly string[]): void {
    const text = lines.map((l) => `${printable(l)}\n`).join("");
    this.#o.out(`${up(this.#drawn)}${CLEAR_DOWN}${text}${this.#view()}`);
    this.#dirty = false;
  }

  /** The view as text (each line ending in a newline); counts the lines drawn. */
  #view(): string {
    const all = [...this.#rows.values()];
    const count = (s: Status) => all.filter((r) => r.status === s).length;
    const elapsed = formatDuration(Math.max(0, this.#lastAt - this.#startedAt));
    const counts =
      `${count("running")} running, ${count("queued")} queued, ${count("succeeded")} succeeded, ` +
      `${count("failed")} failed${count("cancelled") ? `, ${count("cancelled")} cancelled` : ""}`;
    const lines = [`${this.#header} · ${elapsed} · ${counts}${this.#cancel}`];
    const room = Math.max(3, (this.#o.rows ?? 24) - 3);
    const rank: Record<Status, number> = { running: 0, failed: 1, cancelled: 2, queued: 3, succeeded: 4 };
    const shown =
      all.length <= room ? all : [...all].sort((a, b) => rank[a.status] - rank[b.status]).slice(0, room - 1);
    const idWidth = Math.min(
      40,
      shown.reduce((w, r) => Math.max(w, r.id.length), 0),
    );
    for (const r of shown) {
      const extra = [r.progress, r.last].filter((s) => s !== "").join("  ");
      lines.push(`  ${clip(r.id, 40).padEnd(idWidth)}  ${r.text}${extra ? `  ${extra}` : ""}`);
    }
    if (shown.length < all.length) lines.push(`  … ${all.length - shown.length} more target(s) not shown`);
    this.#drawn = lines.length;
    // Escaped before it is clipped, so that the width counts what the terminal shows.
    return lines.map((l) => `${clip(printable(l), this.#width)}\n`).join("");
  }

  /** Draws the view now (also what the timer does when something changed). */
  render(): void {
    this.#dirty = true;
    this.#tick();
  }

  finish(result: RunResult): void {
    this.close();
    this.render();
    this.#o.out(`\n${summaryText(result, this.#o.columns)}`);
  }

  notice(text: string): void {
    this.#above([`sumac: ${text}`]);
  }

  close(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }
}
