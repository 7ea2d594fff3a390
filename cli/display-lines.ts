/**
 * The display when stdout is not a terminal: one line per state change, per log line (debug lines
 * left out) and per tenth of an install's progress, each with the time since the run started.
 */
import { CANCEL_NOTICE, type DisplayOptions, type RunDisplay } from "./display.ts";
import { stateText } from "./format.ts";
import { summaryText } from "./summary.ts";
import { printable } from "../base/text.ts";
import type { RunEvent, RunResult } from "../run/types.ts";

export class LineDisplay implements RunDisplay {
  readonly #o: DisplayOptions;
  #startedAt: number | null = null;
  readonly #width: number;
  /** Last tenth of progress printed, per target and component. */
  readonly #progress = new Map<string, number>();

  constructor(options: DisplayOptions) {
    this.#o = options;
    this.#width = Math.max(
      20,
      options.targets.reduce((w, id) => Math.max(w, id.length), 0),
    );
  }

  #line(at: number, target: string | null, text: string): void {
    const elapsed = this.#startedAt === null ? 0 : Math.max(0, at - this.#startedAt) / 1000;
    const prefix = `[${elapsed.toFixed(1).padStart(6)}s]`;
    const who = target === null ? "" : `${printable(target).padEnd(Math.min(this.#width, 40))}  `;
    // What a target sent is in `text` and perhaps in its id: shown, never run by the terminal.
    this.#o.out(`${prefix} ${who}${printable(text)}\n`);
  }

  event(e: RunEvent): void {
    switch (e.type) {
      case "run.started":
        this.#startedAt = e.at;
        this.#line(
          e.at,
          null,
          `${this.#o.command} ${e.job ?? ""} run ${e.run}: ${e.targets} target(s), ${e.bus} bus, run directory ${e.runDir}`,
        );
        return;
      case "target.state":
        this.#line(e.at, e.target, stateText(e));
        return;
      case "target.log":
        if (e.level !== "debug") this.#line(e.at, e.target, `${e.source} ${e.level}: ${e.message}`);
        return;
      case "target.progress": {
        const key = `${e.target}\u0000${e.component}`;
        const tenth = Math.floor(e.percent / 10);
        if ((this.#progress.get(key) ?? -1) >= tenth) return;
        this.#progress.set(key, tenth);
        this.#line(e.at, e.target, `install ${e.component} ${e.percent}%`);
        return;
      }
      case "run.cancel":
        this.#line(e.at, null, CANCEL_NOTICE[e.mode]);
        return;
      case "run.note":
        this.#line(e.at, null, e.message);
        return;
      case "target.done":
      case "run.finished":
        return;
    }
  }

  notice(text: string): void {
    this.#o.out(`sumac: ${printable(text)}\n`);
  }

  finish(result: RunResult): void {
    this.#o.out(`\n${summaryText(result, this.#o.columns)}`);
  }

  close(): void {}
}
