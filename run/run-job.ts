/**
 * `runJob`: runs one target machine per job target, at most `job.options.concurrency` at once, on
 * step implementations made by the given factory. Every state change and log line is published on
 * the bus (bus/subjects.ts) and given to `onEvent`; every machine's snapshot is kept in the bus KV
 * after each transition; one failing target never stops the others. At the end a report is written
 * to `<runDir>/report.json` and the run's exit code is worked out (exit-codes.ts).
 */
import { join } from "node:path";
import { provideSteps } from "../actors/target/steps.ts";
import { encode } from "../bus/subjects.ts";
import type { NatsSecurity } from "../bus/open.ts";
import { RunFinished, RunStarted, subjects } from "./events/subjects.ts";
import type { Job, JobTarget } from "./job/types.ts";
import { openBackend, RunSetupError, type Backend } from "./backend.ts";
import { targetExitCode } from "./exit-codes.ts";
import { machineInputs } from "./machine-input.ts";
import { newRunId, privateDir, runDirOf, targetLogDirOf } from "./paths.ts";
import { runReport, writeJsonAtomic } from "./report.ts";
import { RunEmitter } from "./events/emitter.ts";
import { SnapshotWriter, snapshotKey } from "./snapshot-store.ts";
import { TargetRun, type TargetResult } from "./target-run.ts";
import { busError } from "./events/transitions.ts";
import type { RunContext, RunEvent, RunFlags, RunResult, RunSteps, StepsFactory } from "./types.ts";
import { Warnings } from "./warnings.ts";

export { RunSetupError } from "./backend.ts";

export interface RunJobOptions {
  readonly job: Job;
  readonly flags: RunFlags;
  /** Makes the run's step implementations (run/compose.ts's `createRunSteps`). */
  readonly steps: StepsFactory;
  /** The state directory (see paths.ts `resolveStateDir`). */
  readonly stateDir: string;
  /** A NATS URL; without one the run is embedded (in-process bus kept in `stateDir`). */
  readonly natsUrl?: string;
  /** TLS and credentials for NATS (docs/nats.md); used with `natsUrl` only. */
  readonly natsSecurity?: NatsSecurity;
  /** Told of every event, in order (the display). Must not throw. */
  readonly onEvent?: (event: RunEvent) => void;
  /** Wall clock, ms since the epoch; default `Date.now`. */
  readonly now?: () => number;
  /** The run's id; default a new one (paths.ts `newRunId`). */
  readonly runId?: string;
  /** How long the embedded lease service may take to become active; default 30 s. */
  readonly leaseActiveMs?: number;
}

/** A run in progress. */
export interface RunHandle {
  readonly runId: string;
  /** `<stateDir>/runs/<runId>`. */
  readonly runDir: string;
  /**
   * Cancels the run: the first call lets installs in progress finish (graceful), a second one, or
   * `force`, stops them at once. Cleanup runs on every target either way. Returns the mode now.
   */
  cancel(force?: boolean): "graceful" | "force";
  /** Settles when every target is final and the report is written; rejects with RunSetupError. */
  readonly result: Promise<RunResult>;
}

/**
 * Starts a run of `job` and returns at once.
 *
 * @example
 * const run = runJob({ job, flags, steps: createRunSteps, stateDir, onEvent: display.event });
 * process.once("SIGINT", () => run.cancel());
 * const { exitCode, reportPath } = await run.result;
 */
export function runJob(options: RunJobOptions): RunHandle {
  const now = options.now ?? Date.now;
  const runId = options.runId ?? newRunId(now());
  const runDir = runDirOf(options.stateDir, runId);
  const run = new Run(options, runId, runDir, now);
  return {
    runId,
    runDir,
    cancel: (force = false) => run.cancel(force),
    result: run.execute(),
  };
}

class Run {
  readonly #o: RunJobOptions;
  readonly #runId: string;
  readonly #runDir: string;
  readonly #now: () => number;
  readonly #warnings = new Warnings();
  readonly #events: RunEmitter;
  readonly #active = new Set<TargetRun>();
  #cancel: "none" | "graceful" | "force" = "none";

  constructor(options: RunJobOptions, runId: string, runDir: string, now: () => number) {
    this.#o = options;
    this.#runId = runId;
    this.#runDir = runDir;
    this.#now = now;
    const { maxBytes, bytesPerSecond } = options.job.options.output;
    this.#events = new RunEmitter(runId, now, options.onEvent, this.#warnings, { maxBytes, bytesPerSecond });
  }

  cancel(force: boolean): "graceful" | "force" {
    const mode = force || this.#cancel !== "none" ? "force" : "graceful";
    if (mode === this.#cancel) return mode;
    this.#cancel = mode;
    this.#events.emit({ type: "run.cancel", run: this.#runId, at: this.#now(), mode });
    for (const target of this.#active) target.cancel(mode === "force");
    return mode;
  }

  async execute(): Promise<RunResult> {
    const { job, flags } = this.#o;
    const startedAt = this.#now();
    await privateDir(this.#runDir).catch((error: unknown) => {
      throw new RunSetupError(`cannot create the run directory ${this.#runDir}: ${String(error)}`, {
        cause: error,
      });
    });
    const backend = await openBackend({
      job,
      stateDir: this.#o.stateDir,
      ...(this.#o.natsUrl === undefined ? {} : { natsUrl: this.#o.natsUrl }),
      ...(this.#o.natsSecurity === undefined ? {} : { natsSecurity: this.#o.natsSecurity }),
      ...(this.#o.leaseActiveMs === undefined ? {} : { leaseActiveMs: this.#o.leaseActiveMs }),
    });
    this.#events.attach(backend.bus);
    const closeBackend = () => backend.close((what, error) => this.#warnings.add(what, error));
    let steps: RunSteps;
    try {
      steps = await this.#o.steps(this.#context(backend));
    } catch (error) {
      await closeBackend();
      const why = error instanceof Error ? error.message : String(error);
      throw new RunSetupError(`cannot prepare the run's steps: ${why}`, { cause: error });
    }
    const started = {
      run: this.#runId,
      at: startedAt,
      job: job.name.slice(0, 64),
      targets: job.targets.length,
      inventoryOnly: flags.inventoryOnly,
    };
    this.#events.publish(subjects.runStarted(this.#runId), RunStarted, started);
    this.#events.started({ type: "run.started", ...started, runDir: this.#runDir, bus: backend.mode });

    let results: TargetResult[];
    try {
      results = await this.#runTargets(backend, steps);
    } catch (error) {
      // A bug in sumac: release what the run holds (the state directory's lock, the lease
      // service's timers) before it propagates.
      await steps.close().catch(() => undefined);
      await closeBackend();
      throw error;
    }
    await steps.close().catch((error: unknown) => this.#warnings.add("closing the run's steps", error));
    const report = runReport(
      {
        runId: this.#runId,
        job,
        flags,
        bus: backend.mode,
        stateDir: this.#o.stateDir,
        runDir: this.#runDir,
        startedAt,
        finishedAt: this.#now(),
        interrupted: this.#cancel,
        warnings: [],
      },
      results,
    );
    const { counts } = report;
    const finished = {
      run: this.#runId,
      at: report.finishedAt,
      status: report.status,
      targets: { succeeded: counts.succeeded, failed: counts.failed, cancelled: counts.cancelled },
      durationMs: report.durationMs,
    };
    // Appended to the event stream and awaited: once it is stored, the events published before
    // it are too (the stream stores in order), so closing the bus loses none of them.
    try {
      await backend.events.append(subjects.runFinished(this.#runId), encode(RunFinished, finished));
    } catch (error) {
      this.#warnings.add("storing the run's end in the event stream", error);
      this.#events.publish(subjects.runFinished(this.#runId), RunFinished, finished);
    }
    await this.#events.drain();
    await closeBackend();
    // Written last, so that the warnings of the bus's last writes and its closing are in it.
    report.warnings = this.#warnings.list();
    const reportPath = join(this.#runDir, "report.json");
    let written: string | null = reportPath;
    try {
      await writeJsonAtomic(reportPath, report);
    } catch (error) {
      this.#warnings.add(`writing the report to ${reportPath}`, error);
      written = null;
    }
    this.#events.emit({ type: "run.finished", ...finished, exitCode: report.exitCode, report: written });
    return { exitCode: report.exitCode, report, reportPath: written, warnings: this.#warnings.list() };
  }

  #context(backend: Backend): RunContext {
    const { job, flags } = this.#o;
    return {
      runId: this.#runId,
      job,
      targets: new Map(job.targets.map((t) => [t.id, t])),
      flags,
      stateDir: this.#o.stateDir,
      runDir: this.#runDir,
      bus: backend.bus,
      leases: { service: backend.leaseService, transport: backend.leaseTransport },
      events: this.#events.sink(),
      targetLogDir: (targetId) => privateDir(targetLogDirOf(this.#runDir, targetId)),
    };
  }

  #done(target: JobTarget, result: TargetResult): void {
    const f = result.outcome.status === "failed" ? result.outcome.failure : null;
    const failure = f && {
      ...busError(f.step, f.code, f.message, f.retryable),
      ...(f.componentId === undefined ? {} : { component: f.componentId }),
    };
    this.#events.emit({
      type: "target.done",
      run: this.#runId,
      target: target.id,
      at: result.finishedAt,
      status: result.outcome.status,
      exitCode: targetExitCode(result.outcome, this.#o.flags.inventoryOnly),
      ...(failure ? { failure } : {}),
    });
  }

  /** Runs every target, `concurrency` at a time; resolves with their results in job order. */
  #runTargets(backend: Backend, steps: RunSteps): Promise<TargetResult[]> {
    const { job, flags } = this.#o;
    const machine = provideSteps(steps.steps);
    const inputOf = machineInputs(this.#runId, job, flags);
    const targets = job.targets;
    const results: TargetResult[] = new Array<TargetResult>(targets.length);
    const limit = Math.max(1, job.options.concurrency);
    const writers: SnapshotWriter[] = [];
    let next = 0;
    let finished = 0;
    return new Promise((resolve) => {
      const launch = (index: number, target: JobTarget): void => {
        const writer = new SnapshotWriter(backend.snapshots, snapshotKey(this.#runId, target.id), (error) =>
          this.#warnings.add("saving a target's snapshot in the bus KV", error),
        );
        writers.push(writer);
        const run = new TargetRun({
          target,
          machine,
          input: inputOf(target),
          writer,
          now: this.#now,
          onChange: (change, at) => this.#events.stateChange(target.id, change, at),
        });
        this.#active.add(run);
        void run.result.then((result) => {
          this.#active.delete(run);
          results[index] = result;
          this.#done(target, result);
          finished++;
          if (finished === targets.length) {
            void Promise.all(writers.map((w) => w.flush())).then(() => resolve(results));
          } else {
            fill();
          }
        });
        run.start(this.#cancel === "none" ? "start" : "cancel");
      };
      const fill = (): void => {
        while (next < targets.length && this.#active.size < limit) {
          const index = next++;
          launch(index, targets[index]!);
        }
      };
      if (targets.length === 0) resolve(results);
      else fill();
    });
  }
}
