/**
 * The types of a run: what `runJob` is given (the job, the flags, the steps factory), what the
 * steps factory is given (`RunContext`), the events a run emits to whoever displays it, and the
 * run's result. One run is one `sumac deploy` or `sumac inventory` of a job over its targets.
 */
import type { StepImpls } from "../actors/target/steps.ts";
import type { LeaseService } from "../actors/lease/service.ts";
import type { LeaseTransport } from "../actors/lease/transport.ts";
import type { Bus } from "../bus/bus.ts";
import type {
  LogLevel,
  RunFinished,
  RunStarted,
  TargetError,
  TargetLogLine,
  TargetStateChanged,
} from "./events/subjects.ts";
import type { StepName } from "../machines/target/types.ts";
import type { Job, JobTarget } from "./job/types.ts";
import type { RunReport } from "./report-types.ts";

/** What the command line asked, beyond the job file. */
export interface RunFlags {
  /** `sumac inventory`: connect, take inventory, report what would be installed; change nothing. */
  readonly inventoryOnly: boolean;
  /** `--rewrite`: install a component again even when the installed version is current. */
  readonly rewrite: boolean;
  /** `--downgrade`: install a component even when a newer version is installed. */
  readonly downgrade: boolean;
}

/** Where a log line comes from and which step wrote it; both optional. */
export interface LogOrigin {
  /** `sumac` (default): the workstation's own steps; `agent`: a line of the agent's log. */
  readonly source?: "sumac" | "agent";
  readonly step?: StepName;
}

/**
 * How steps report to the operator and the bus while they run. Calls are cheap and never throw:
 * a line is published on the bus as a `TargetLogLine` (clipped to 8192 characters) and shown.
 */
export interface RunEvents {
  log(targetId: string, level: LogLevel, line: string, origin?: LogOrigin): void;
  /**
   * A line of a target's install output, forwarded by its agent: within the target's output budget
   * (run/events/output-budget.ts) it is a log line like the others; beyond it, it is counted, and
   * the count is said in one line.
   */
  output(targetId: string, line: string): void;
  /** An install's progress, 0 to 100 (values outside are clamped). */
  progress(targetId: string, componentId: string, percent: number): void;
  /** A message about the whole run (the firewall backend chosen, rules swept), for the operator. */
  note(line: string): void;
}

/** What the steps factory is given: everything about the run the steps may need. */
export interface RunContext {
  readonly runId: string;
  readonly job: Job;
  /** The job's targets by id. */
  readonly targets: ReadonlyMap<string, JobTarget>;
  readonly flags: RunFlags;
  /** The state directory (embedded bus, runs). */
  readonly stateDir: string;
  /** `<stateDir>/runs/<runId>`, mode 0700: the report, and the targets' logs. */
  readonly runDir: string;
  readonly bus: Bus;
  /** The lease service started for the run, and how a `LeaseClient` in this process reaches it. */
  readonly leases: { readonly service: LeaseService; readonly transport: LeaseTransport };
  readonly events: RunEvents;
  /**
   * Where the `logs` step copies a target's logs: `<runDir>/targets/<target>/logs`, created (0700)
   * by this call. The id is the directory's name (paths.ts `targetDirName` escapes `/` and the like).
   */
  targetLogDir(targetId: string): Promise<string>;
}

/** The step implementations of one run, and how to release what they hold once every target is done. */
export interface RunSteps {
  readonly steps: StepImpls;
  close(): Promise<void>;
}

/** Makes the steps of a run (the real one is `createRunSteps` in run/compose.ts). */
export type StepsFactory = (run: RunContext) => Promise<RunSteps>;

/** A state change as displayed: the bus message, and which component an install is on. */
export type TargetStateEvent = { type: "target.state" } & Omit<TargetStateChanged, "error"> & {
    /** The component being installed, during `install`. */
    component?: string;
    /** True while the step waits out a backoff before its next attempt. */
    retrying?: boolean;
    /** The failure behind the change; `component` when it was an install's. */
    error?: TargetError & { component?: string };
  };

/** What a run tells its display, in order. The `--json` output is these, one per line. */
export type RunEvent =
  | ({ type: "run.started" } & RunStarted & {
        runDir: string;
        /** `embedded` (in-process bus, no server) or `nats`. */
        bus: "embedded" | "nats";
      })
  | TargetStateEvent
  | ({ type: "target.log" } & TargetLogLine)
  | { type: "target.progress"; run: string; target: string; at: number; component: string; percent: number }
  | {
      type: "target.done";
      run: string;
      target: string;
      at: number;
      status: "succeeded" | "failed" | "cancelled";
      exitCode: number;
      failure?: TargetError & { component?: string };
    }
  | { type: "run.cancel"; run: string; at: number; mode: "graceful" | "force" }
  | { type: "run.note"; run: string; at: number; message: string }
  | ({ type: "run.finished" } & RunFinished & {
        exitCode: number;
        /** The report's path; null when it could not be written (see the warnings). */
        report: string | null;
      });

/** The result of a run: its exit code, its report and where the report was written. */
export interface RunResult {
  readonly exitCode: number;
  readonly report: RunReport;
  /** `<runDir>/report.json`; null when it could not be written (the reason is in `warnings`). */
  readonly reportPath: string | null;
  /** Problems that changed no outcome (the report's `warnings`, and a failure to write it). */
  readonly warnings: readonly string[];
}
