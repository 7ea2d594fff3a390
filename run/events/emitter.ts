/**
 * Where a run's events go: each one to the display (`onEvent`) and, for those the bus defines
 * (bus/subjects.ts), published there too, checked against its schema. Publishing does not wait;
 * `drain` waits for what is still in flight before the bus closes. Nothing here throws: a failure
 * becomes a warning of the run. A target's install output goes through its budget first
 * (output-budget.ts).
 */
import type { z } from "zod";
import type { Bus } from "../../bus/bus.ts";
import { encode } from "../../bus/subjects.ts";
import { subjects, TargetLogLine, TargetStateChanged, type LogLevel } from "./subjects.ts";
import type { ViewChange } from "./transitions.ts";
import {
  clipLine,
  DEFAULT_OUTPUT_BUDGET,
  droppedText,
  OutputBudget,
  type OutputBudgetOptions,
} from "./output-budget.ts";
import type { LogOrigin, RunEvent, RunEvents } from "../types.ts";
import type { Warnings } from "../warnings.ts";

/** One line, at most 8192 characters (the bus schema's limit); empty lines dropped. */
export function logLines(text: string): string[] {
  return text
    .split(/\r?\n/)
    .filter((l) => l.trim() !== "")
    .map((l) => (l.length > 8192 ? `${l.slice(0, 8191)}…` : l));
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
  /** The last progress of each target and component, so that an agent repeating it is not heard. */
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

  log(targetId: string, level: LogLevel, text: string, origin: LogOrigin = {}): void {
    const at = this.#now();
    for (const message of logLines(text)) {
      const line = {
        run: this.#runId,
        target: targetId,
        at,
        level,
        source: origin.source ?? ("sumac" as const),
        ...(origin.step === undefined ? {} : { step: origin.step }),
        message,
      };
      this.publish(subjects.targetLog(this.#runId, targetId), TargetLogLine, line);
      this.emit({ type: "target.log", ...line });
    }
  }

  /**
   * A line of a target's install output, as its agent forwarded it: cut to the budget's line
   * length, then shown and published if the target's budget allows, else counted.
   */
  output(targetId: string, line: string): void {
    const now = this.#now();
    let budget = this.#budgets.get(targetId);
    if (budget === undefined)
      this.#budgets.set(targetId, (budget = new OutputBudget(this.#budgetOptions, now)));
    const text = clipLine(line, this.#budgetOptions.maxLineChars);
    if (!budget.take(Buffer.byteLength(text), now)) {
      this.#sayDropped(targetId, false);
      return;
    }
    // Output flows again: what was dropped before it is said first.
    this.#sayDropped(targetId, true);
    this.log(targetId, "info", text, { source: "agent", step: "install" });
  }

  /** Says how much of a target's output was dropped, if any (`force`: now, else when it is time). */
  #sayDropped(targetId: string, force: boolean): void {
    const budget = this.#budgets.get(targetId);
    if (budget === undefined || !budget.dropping) return;
    const dropped = budget.report(this.#now(), force);
    if (dropped !== undefined)
      this.log(targetId, "warn", droppedText(dropped, this.#budgetOptions), {
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

  /** An install's progress; a value the target already reported for the component is not repeated. */
  progress(targetId: string, component: string, percent: number): void {
    const clamped = Math.round(Math.min(100, Math.max(0, Number.isFinite(percent) ? percent : 0)));
    const key = `${targetId}\u0000${component}`;
    if (this.#progress.get(key) === clamped) return;
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
