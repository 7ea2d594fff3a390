/**
 * One target's machine during a run: created when its turn comes, started, followed transition by
 * transition (a state event for the bus and the display, a snapshot for the KV, the steps' times),
 * and settled into a {@link TargetResult} whatever happens, a broken machine included.
 */
import { createActor, type Actor } from "xstate";
import type { provideSteps } from "../actors/target/steps.ts";
import type { TargetContext, TargetMachineInput, TargetOutcome } from "../machines/target/types.ts";
import type { JobTarget } from "./job/types.ts";
import type { StepRecord } from "./report-types.ts";
import type { SnapshotWriter } from "./snapshot-store.ts";
import { TargetTracker, type ViewChange } from "./events/transitions.ts";

type TargetMachine = ReturnType<typeof provideSteps>;

/** How a target's machine ended. */
export interface TargetResult {
  readonly target: JobTarget;
  /** The machine's output; for a machine that broke (a bug), a failure made from its error. */
  readonly outcome: TargetOutcome;
  /** The last context (ports, logs, plan); null when the machine never had one. */
  readonly context: TargetContext | null;
  readonly steps: readonly StepRecord[];
  /** Null when the target never started: the run was cancelled before its turn. */
  readonly startedAt: number | null;
  readonly finishedAt: number;
  /** Set when the machine itself failed (not a step): its error. */
  readonly machineError?: { code: string; message: string };
}

export interface TargetRunOptions {
  readonly target: JobTarget;
  readonly machine: TargetMachine;
  readonly input: TargetMachineInput;
  readonly writer: SnapshotWriter;
  readonly now: () => number;
  /** Told of every change worth an event, in order. */
  readonly onChange: (change: ViewChange, at: number) => void;
}

/** Runs one target's machine; `result` settles when it is final (it never rejects). */
export class TargetRun {
  readonly result: Promise<TargetResult>;
  readonly #options: TargetRunOptions;
  readonly #tracker = new TargetTracker();
  #actor: Actor<TargetMachine> | null = null;
  #settle!: (result: TargetResult) => void;
  #startedAt: number | null = null;
  #settled = false;

  constructor(options: TargetRunOptions) {
    this.#options = options;
    this.result = new Promise((resolve) => (this.#settle = resolve));
  }

  /**
   * Creates and starts the machine, then sends START, or CANCEL when the run was cancelled before
   * this target's turn (it goes straight to `cancelled`: nothing was acquired, nothing to undo).
   */
  start(first: "start" | "cancel"): void {
    const { machine, input, writer, now } = this.#options;
    if (first === "start") this.#startedAt = now();
    let actor: Actor<TargetMachine>;
    try {
      actor = createActor(machine, { input });
    } catch (error) {
      this.#broken(error, null);
      return;
    }
    this.#actor = actor;
    actor.subscribe({
      next: (snapshot) => {
        if (snapshot.status === "error") return;
        const at = now();
        const change = this.#tracker.observe(snapshot, at);
        if (change) this.#options.onChange(change, at);
        // Kept at every change of state, step, attempt or retry, and at the end: a restore from
        // there runs the current step again (steps are idempotent), so the transitions in between
        // (timers armed, results assigned) are not worth a write each.
        if (change !== null || snapshot.status === "done") writer.save(() => actor.getPersistedSnapshot());
        if (snapshot.status === "done") this.#done(snapshot.output, snapshot.context);
      },
      error: (error) => this.#broken(error, actor.getSnapshot().context ?? null),
    });
    actor.start();
    actor.send(first === "start" ? { type: "START" } : { type: "CANCEL" });
  }

  /** Sends CANCEL (a second one, or `force`, stops an install at once). */
  cancel(force: boolean): void {
    if (this.#settled) return;
    this.#actor?.send(force ? { type: "CANCEL", force: true } : { type: "CANCEL" });
  }

  #done(output: TargetOutcome | undefined, context: TargetContext): void {
    if (this.#settled) return;
    if (output === undefined) {
      this.#broken(new Error("the target machine ended without an outcome"), context);
      return;
    }
    this.#settled = true;
    this.#settle({
      target: this.#options.target,
      outcome: output,
      context,
      steps: this.#tracker.steps,
      startedAt: this.#startedAt,
      finishedAt: this.#options.now(),
    });
  }

  /** The machine itself failed (a bug in sumac, or input it refused): the target failed. */
  #broken(error: unknown, context: TargetContext | null): void {
    if (this.#settled) return;
    this.#settled = true;
    const at = this.#options.now();
    this.#tracker.close(at, "failed");
    const e = error as { code?: unknown; message?: unknown };
    const code = typeof e?.code === "string" ? e.code : "MACHINE_FAILED";
    const message = typeof e?.message === "string" ? e.message : String(error);
    const held = context?.held;
    const outcome: TargetOutcome = {
      status: "failed",
      failure: {
        step: context?.step ?? "connect",
        code,
        retryable: false,
        message,
        kind: "agent",
        attempts: context?.attempt ?? 0,
        at,
      },
      plan: context?.plan ?? null,
      results: context?.results ?? [],
      rebootNeeded: false,
      secondaryFailures: context?.secondaryFailures ?? [],
      leftovers: held ? (Object.keys(held) as (keyof typeof held)[]).filter((k) => held[k]) : [],
    };
    this.#settle({
      target: this.#options.target,
      outcome,
      context,
      steps: this.#tracker.steps,
      startedAt: this.#startedAt,
      finishedAt: at,
      machineError: { code, message },
    });
  }
}
