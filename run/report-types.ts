/**
 * The shape of a run's report (`<runDir>/report.json`), documented in docs/cli.md. Times are
 * integers, ms since the epoch; durations are ms.
 */
import type { ComponentAction, FailureKind, Held, StepName } from "../machines/target/types.ts";

/** Format version of the report; fields are only added within a version. */
export const REPORT_VERSION = 1;

/** One step as it ran on a target (an install once per component). */
export interface StepRecord {
  step: StepName;
  /** The component, for `install`. */
  component?: string;
  /** Attempts made (retries after retryable errors included). */
  attempts: number;
  startedAt: number;
  durationMs: number;
  /** `ok`, `failed` (for good, after its retries), or `aborted` by a cancel. */
  status: "ok" | "failed" | "aborted";
}

/** A component on a target: what was there, what was decided, what is there now. */
export interface ComponentReport {
  id: string;
  /** The version the package brings. */
  version: string;
  /** The version installed before the run; null when not installed. */
  before: string | null;
  /** The version installed after the run (for a dry run: still `before`); null when not installed. */
  after: string | null;
  action: ComponentAction;
  /** Why: `not-installed`, `older-installed`, `current`, `newer-installed`, ... */
  reason: string;
  /**
   * `installed`, `failed`, `skipped` (nothing needed), `not-run` (an earlier failure or a cancel
   * stopped the run first), or `planned` (a dry run would install it).
   */
  result: "installed" | "failed" | "skipped" | "not-run" | "planned";
  rebootNeeded: boolean;
}

/** A failure as reported: the machine's, or sumac's own when the target's machine broke. */
export interface FailureReport {
  /** The step that failed; null when the target's machine itself failed (a bug in sumac). */
  step: StepName | null;
  code: string;
  message: string;
  retryable: boolean;
  kind: FailureKind | "internal";
  attempts: number;
  component?: string;
  at: number;
}

export interface TargetReport {
  id: string;
  host: string;
  transport: "ssh" | "smb" | "local";
  status: "succeeded" | "failed" | "cancelled";
  exitCode: number;
  /** When its machine started (null: it never started, the run was cancelled first). */
  startedAt: number | null;
  finishedAt: number;
  durationMs: number;
  /** Whether the inventory was taken: without it `components` lists the package with no `before`. */
  inventoried: boolean;
  installed: boolean;
  rebootNeeded: boolean;
  failure: FailureReport | null;
  /** Failures of cleanup steps, and of logs after an earlier failure; they do not change `status`. */
  secondaryFailures: FailureReport[];
  /** What cleanup could not release (an agent left running, files, firewall rules, leases). */
  leftovers: (keyof Held)[];
  steps: StepRecord[];
  /** The package's components in order, once inventoried; `[]` when the inventory was not taken. */
  components: ComponentReport[];
  /**
   * Ports used: leased on the workstation and the callback range, and the agent's on the target
   * (`agentPort` is where it listened: the next port when the leased one was busy there).
   */
  ports: { workstationPort: number; callbackPort: number; agentPort: number; leasedAgentPort: number } | null;
  /** The agent's logs as collected by the `logs` step; null when they were not collected. */
  logs: { location: string; files: number; bytes: number } | null;
  /** Where this target's logs are copied in the run directory. */
  logDir: string;
}

export interface RunReport {
  version: typeof REPORT_VERSION;
  runId: string;
  command: "deploy" | "inventory";
  job: { name: string; file: string; package: string; components: number };
  flags: { inventoryOnly: boolean; rewrite: boolean; downgrade: boolean };
  bus: "embedded" | "nats";
  stateDir: string;
  runDir: string;
  startedAt: number;
  finishedAt: number;
  durationMs: number;
  status: "succeeded" | "failed" | "cancelled";
  exitCode: number;
  /** Whether the operator interrupted the run, and how far (`force` after a second Ctrl-C). */
  interrupted: "none" | "graceful" | "force";
  counts: { total: number; succeeded: number; failed: number; cancelled: number };
  targets: TargetReport[];
  /** Problems of the run itself that did not change an outcome (a bus write that failed, ...). */
  warnings: string[];
}
