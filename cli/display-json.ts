/**
 * `--json`: every event of the run as one JSON object per line on stdout (types.ts `RunEvent`,
 * the `type` field first), nothing else there; notices and the summary go to stderr.
 */
import { CANCEL_NOTICE, type DisplayOptions, type RunDisplay } from "./display.ts";
import { summaryText } from "./summary.ts";
import { printable, safeJson } from "../base/text.ts";
import type { RunEvent, RunResult } from "../run/types.ts";

export class JsonDisplay implements RunDisplay {
  readonly #o: DisplayOptions;

  constructor(options: DisplayOptions) {
    this.#o = options;
  }

  event(e: RunEvent): void {
    this.#o.out(`${safeJson(e)}\n`);
    if (e.type === "run.cancel") this.notice(CANCEL_NOTICE[e.mode]);
  }

  notice(text: string): void {
    this.#o.err(`sumac: ${printable(text)}\n`);
  }

  finish(result: RunResult): void {
    this.#o.err(summaryText(result, this.#o.columns));
  }

  close(): void {}
}
