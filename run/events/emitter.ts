/**
 * Where a run's events go: each one to the display (`onEvent`) and, for those the bus defines
 * (bus/subjects.ts), published there too, checked against its schema. Publishing does not wait;
 * `drain` waits for what is still in flight before the bus closes. Nothing here throws: a failure
 * becomes a warning of the run. A target's install output goes through its budget first
 * (output-budget.ts).
 */
import { clip } from "../../base/text.ts";
import type { z } from "zod";
import type { Bus } from "../../bus/bus.ts";
import { encode } from "../../bus/subjects.ts";
import { subjects, TargetLogLine, TargetStateChanged, type LogLevel } from "./subjects.ts";
import type { ViewChange } from "./transitions.ts";
import {
  DEFAULT_OUTPUT_BUDGET,
  droppedText,
  OutputBudget,
  type OutputBudgetOptions,
} from "./output-budget.ts";
import type { LogOrigin, RunEvent, RunEvents } from "../types.ts";
import type { Warnings } from "../warnings.ts";

/** Lines one call makes at most: beyond, one line says how much was left out. */
export const MAX_LINES_PER_CALL = 50;

/**
 * The lines of `text`, each at most 8192 characters (the bus schema's limit), empty lines dropped,
 * at most `maxLines` of them and then one saying how much more there was: however many line breaks
 * a text has, it makes a bounded number of events. (Text from a target is made one line before it
 * gets here, its breaks escaped; this bounds what is left, e.g. an error message quoting one.)
 */
export function logLines(text: string, maxLines = MAX_LINES_PER_CALL): string[] {
  const lines: string[] = [];
  let start = 0;
  while (start < text.length) {
    let end = text.indexOf("\n", start);
    if (end < 0) end = text.length;
    if (lines.length === maxLines) {
      let breaks = 0;
      for (let i = text.indexOf("\n", start); i >= 0; i = text.indexOf("\n", i + 1)) breaks++;
      const chars = text.length - start;
      lines.push(
        `…[${chars.toLocaleString("en-US")} more characters in ${(breaks + 1).toLocaleString("en-US")} more lines not shown]`,
      );
      break;
    }
    let line = text.slice(start, end);
    start = end + 1;
    if (line.endsWith("\r")) line = line.slice(0, -1);
    if (line.trim() === "") continue;
    lines.push(line.length > 8192 ? `${line.slice(0, 8191)}…` : line);
  }
  return lines;
}

export class RunEmitter {
  readonly #runId: string;
  readonly #now: () => number;
  readonly #onEvent: ((event: RunEvent) => void) | undefined;
  readonly #warnings: Warnings;
  readonly #inFlight = new Set<Promise<void>>();
  #bus: Bus | null = null;
  /** Notes made before `run.started` (while the steps are prepared) wait for it. */
  #early: RunEvent[] | null = [];
  readonly #budgetOptions: OutputBudgetOptions;
  /**
   * The highest progress of each target and component in the target's current state, so that an
   * agent repeating a value or going back (1, 2, 1, 2, …) is not heard: at most 101 events per
   * component and state.
   */
  readonly #progress = new Map<string, number>();
  /** Each target's output budget, made with its first line. */
  readonly #budgets = new Map<string, OutputBudget>();

  constructor(
    runId: string,
    now: () => number,
    onEvent: ((e: RunEvent) => void) | undefined,
    warnings: Warnings,
    budget: Partial<OutputBudgetOptions> = {},
  ) {
    this.#runId = runId;
    this.#now = now;
    this.#onEvent = onEvent;
    this.#warnings = warnings;
    this.#budgetOptions = { ...DEFAULT_OUTPUT_BUDGET, ...budget };
  }

  /** From now on, events the bus defines are published on `bus`. */
  attach(bus: Bus): void {
    this.#bus = bus;
  }

  emit(event: RunEvent): void {
    try {
      this.#onEvent?.(event);
    } catch (error) {
      this.#warnings.add("the display failed on an event", error);
    }
  }

  /** Emits `run.started`, then the notes that waited for it. */
  started(event: Extract<RunEvent, { type: "run.started" }>): void {
    this.emit(event);
    for (const note of this.#early ?? []) this.emit(note);
    this.#early = null;
  }

  publish<S extends z.ZodType>(subject: string, schema: S, value: z.input<S>): void {
    const bus = this.#bus;
    if (!bus) return;
    let data: Uint8Array;
    try {
      data = encode(schema, value);
    } catch (error) {
      this.#warnings.add(`an event did not match its schema (${subject.split(".")[2]})`, error);
      return;
    }
    const p = bus.publish(subject, data).then(
      () => undefined,
      (error: unknown) => this.#warnings.add("publishing an event on the bus failed", error),
    );
    this.#inFlight.add(p);
    void p.finally(() => this.#inFlight.delete(p));
  }

  /** Resolves when every publish made so far has settled. */
  async drain(): Promise<void> {
    while (this.#inFlight.size > 0) await Promise.all([...this.#inFlight]);
  }

  /** A target machine's change: `TargetStateChanged` on the bus, `target.state` to the display. */
  stateChange(targetId: string, change: ViewChange, at: number): void {
    this.#sayDropped(targetId, true);
    // A new state (an install again after a retry) starts its progress from zero.
    const prefix = `${targetId}\u0000`;
    for (const key of this.#progress.keys()) if (key.startsWith(prefix)) this.#progress.delete(key);
    const { component, retrying, ...rest } = change;
    const message = { run: this.#runId, target: targetId, at, ...rest };
    this.publish(subjects.targetState(this.#runId, targetId), TargetStateChanged, message);
    this.emit({
      type: "target.state",
      ...message,
      ...(component === undefined ? {} : { component }),
      ...(retrying === undefined ? {} : { retrying }),
    });
  }

  /**
   * A step's line. Lines from the target itself (`source: "agent"`, e.g. what its agent process
   * writes) go through the target's output budget like its install output.
   */
  log(targetId: string, level: LogLevel, text: string, origin: LogOrigin = {}): void {
    for (const message of logLines(text)) {
      if (origin.source === "agent") this.#budgeted(targetId, level, message, origin);
      else this.#line(targetId, level, message, origin);
    }
  }

  #line(targetId: string, level: LogLevel, message: string, origin: LogOrigin): void {
    const line = {
      run: this.#runId,
      target: targetId,
      at: this.#now(),
      level,
      source: origin.source ?? ("sumac" as const),
      ...(origin.step === undefined ? {} : { step: origin.step }),
      message,
    };
    this.publish(subjects.targetLog(this.#runId, targetId), TargetLogLine, line);
    this.emit({ type: "target.log", ...line });
  }

  /**
   * A line of a target's install output, as its agent forwarded it: cut to the budget's line
   * length, then shown and published if the target's budget allows, else counted.
   */
  output(targetId: string, line: string): void {
    this.#budgeted(targetId, "info", line, { source: "agent", step: "install" });
  }

  #budgeted(targetId: string, level: LogLevel, line: string, origin: LogOrigin): void {
    const now = this.#now();
    let budget = this.#budgets.get(targetId);
    if (budget === undefined)
      this.#budgets.set(targetId, (budget = new OutputBudget(this.#budgetOptions, now)));
    const text = clip(line, this.#budgetOptions.maxLineChars);
    if (!budget.take(Buffer.byteLength(text), now)) {
      this.#sayDropped(targetId, false);
      return;
    }
    // Output flows again: what was dropped before it is said first.
    this.#sayDropped(targetId, true);
    for (const message of logLines(text, 1)) this.#line(targetId, level, message, origin);
  }

  /** Says how much of a target's output was dropped, if any (`force`: now, else when it is time). */
  #sayDropped(targetId: string, force: boolean): void {
    const budget = this.#budgets.get(targetId);
    if (budget === undefined || !budget.dropping) return;
    const dropped = budget.report(this.#now(), force);
    if (dropped !== undefined)
      this.#line(targetId, "warn", droppedText(dropped, this.#budgetOptions), {
        source: "sumac",
        step: "install",
      });
  }

  note(text: string): void {
    for (const message of logLines(text)) {
      const event = { type: "run.note" as const, run: this.#runId, at: this.#now(), message };
      if (this.#early) this.#early.push(event);
      else this.emit(event);
    }
  }

  /**
   * An install's progress; a value not above the highest the target reported for the component
   * in this state is not repeated.
   */
  progress(targetId: string, component: string, percent: number): void {
    const clamped = Math.round(Math.min(100, Math.max(0, Number.isFinite(percent) ? percent : 0)));
    const key = `${targetId}\u0000${component}`;
    const last = this.#progress.get(key);
    if (last !== undefined && clamped <= last) return;
    this.#progress.set(key, clamped);
    this.emit({
      type: "target.progress",
      run: this.#runId,
      target: targetId,
      at: this.#now(),
      component,
      percent: clamped,
    });
  }

  /** The sink the steps are given. */
  sink(): RunEvents {
    return {
      log: (targetId, level, line, origin) => this.log(targetId, level, line, origin),
      output: (targetId, line) => this.output(targetId, line),
      progress: (targetId, component, percent) => this.progress(targetId, component, percent),
      note: (line) => this.note(line),
    };
  }
}
