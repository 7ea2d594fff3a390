/**
 * Types of the target machine: its input, context, events and outcome (the step actors' inputs
 * and outputs are in step-io.ts). Everything here is plain data, so a snapshot of the
 * machine is JSON.
 */

/** Steps of a target's run, in order. `install` runs once per component to install. */
export const MAIN_STEPS = [
  "connect",
  "pushAgent",
  "allocatePorts",
  "startAgent",
  "hello",
  "inventory",
  "stage",
  "install",
  "logs",
] as const;

/** Steps of shuttingDown, in order. Each runs when what it undoes may exist, even after a failure. */
export const CLEANUP_STEPS = [
  "stopAgent",
  "removeFiles",
  "closeFirewall",
  "releaseLeases",
  "disconnect",
] as const;

export type MainStep = (typeof MAIN_STEPS)[number];
export type CleanupStep = (typeof CLEANUP_STEPS)[number];
export type StepName = MainStep | CleanupStep;

/** The host a target machine works on. */
export interface TargetRef {
  /** Stable identifier within the run (also the seed of the retry jitter). */
  id: string;
  host: string;
  os: "linux" | "windows" | "local";
  /** Management port (22 for SSH, 445 for SMB) when not the default. */
  port?: number;
}

/** A component of the package being deployed. */
export interface ComponentSpec {
  id: string;
  version: string;
}

/** The error shape every step actor fails with; guards branch on `code` and `retryable` only. */
export interface StepError {
  code: string;
  retryable: boolean;
  message: string;
}

/**
 * What went wrong, for the operator: `component` when a component's install failed, `connection`
 * when the target could not be reached or the agent pushed, `ports` when no ports were granted,
 * `agent` when the agent did not start or its session failed, `cleanup` for shuttingDown's steps.
 */
export type FailureKind = "connection" | "ports" | "agent" | "component" | "cleanup";

/** A step that failed for good: its retries were used up or its error was not retryable. */
export interface StepFailure extends StepError {
  step: StepName;
  kind: FailureKind;
  /** Attempts made, the failing one included. */
  attempts: number;
  /** Set when `step` is `install`. */
  componentId?: string;
  /** Time of the failure on the machine's clock (ms since the epoch, or simulated). */
  at: number;
}

/** Deadline and retry rules of one step. */
export interface StepPolicy {
  /** Deadline of one attempt, from its start. */
  timeoutMs: number;
  /** Attempts in all (1 = no retry). */
  maxAttempts: number;
  /** Backoff before attempt n+1: min(maxMs, initialMs * factor^(n-1)), less up to `jitter` of it. */
  backoff: BackoffPolicy;
}

export interface BackoffPolicy {
  initialMs: number;
  factor: number;
  maxMs: number;
  /** 0..1: fraction of the delay taken off, deterministically per target, step and attempt. */
  jitter: number;
}

/** Overrides of a step's policy; what is not given is kept. */
export interface StepPolicyOptions {
  timeoutMs?: number;
  maxAttempts?: number;
  backoff?: Partial<BackoffPolicy>;
}

/** Overrides of the default policy: for every step, then per step. */
export interface PolicyOptions {
  all?: StepPolicyOptions;
  steps?: Partial<Record<StepName, StepPolicyOptions>>;
}

/** Input of `createActor(targetMachine, { input })`. */
export interface TargetMachineInput {
  runId: string;
  target: TargetRef;
  components: ComponentSpec[];
  /** Dry run: connect, take inventory, report what would be installed; skip stage and install. */
  inventoryOnly?: boolean;
  /** Install a component again even when the installed version is current. */
  rewrite?: boolean;
  /** Install a component even when the installed version is newer. */
  downgrade?: boolean;
  policy?: PolicyOptions;
}

/** What a component's decision is, given the installed version. */
export type ComponentAction = "install" | "update" | "rewrite" | "downgrade" | "skip";

export interface ComponentPlan {
  id: string;
  version: string;
  /** Null when the component is not installed. */
  installedVersion: string | null;
  action: ComponentAction;
  /** Why: `not-installed`, `older-installed`, `current`, `newer-installed`, with `rewrite`/`downgrade`. */
  reason: string;
}

export interface ComponentResult {
  id: string;
  version: string;
  action: Exclude<ComponentAction, "skip">;
  status: "installed" | "failed";
  rebootNeeded: boolean;
}

/** Resources the run may hold on the target or the workstation; shuttingDown releases them. */
export interface Held {
  connection: boolean;
  files: boolean;
  agent: boolean;
  firewall: boolean;
  leases: boolean;
}

/** Ports granted by the lease service for this target. */
export interface PortLeases {
  leaseIds: string[];
  workstationPort: number;
  callbackPort: number;
  agentPort: number;
}

/** What was collected by `logs`: a reference and sizes, never the content. */
export interface LogsSummary {
  location: string;
  files: number;
  bytes: number;
}

export type CancelMode = "none" | "graceful" | "force";

/** What the machine was asked to do: fixed for its whole life. */
export interface TargetJob {
  runId: string;
  target: TargetRef;
  components: ComponentSpec[];
  inventoryOnly: boolean;
  rewrite: boolean;
  downgrade: boolean;
  /** Policy options as given (null: the defaults); see `policyFor`. */
  policy: PolicyOptions | null;
}

/** What earlier steps produced that later ones need: references, never content. */
export interface SessionRefs {
  sessionId: string | null;
  agentDir: string | null;
  leases: PortLeases | null;
  agentPort: number | null;
  agentVersion: string | null;
}

/**
 * The machine's context. Kept to few top-level fields on purpose: XState copies the context on
 * every update, and V8 copies objects of about 20 fields or more many times slower (measured:
 * 25 fields, 5 µs a copy; 15 fields, 0.05 µs).
 */
export interface TargetContext {
  job: TargetJob;
  /** The step being run (or waited on for a retry), null in queued and final states. */
  step: StepName | null;
  attempt: number;
  /** Absolute deadline of the running attempt; re-armed from here on restore. */
  deadlineAt: number | null;
  /** Absolute time of the next attempt while waiting out a backoff. */
  retryAt: number | null;
  lastError: StepError | null;
  held: Held;
  session: SessionRefs;
  plan: ComponentPlan[] | null;
  /** Index into the install list (the plan without skipped components). */
  installIndex: number;
  results: ComponentResult[];
  logs: LogsSummary | null;
  cancel: CancelMode;
  /** The failure that decides the outcome. */
  failure: StepFailure | null;
  /** Failures that did not decide it: every cleanup step's, and logs' after an earlier failure. */
  secondaryFailures: StepFailure[];
}

/**
 * Events. `CANCEL` stops the run through shuttingDown; during an install the first one lets the
 * component finish and a second one, or `force: true`, stops it at once. `target.timer` comes from
 * the machine's own timer actor only, with the time it was armed for.
 */
export type TargetEvent =
  { type: "START" } | { type: "CANCEL"; force?: boolean } | { type: "target.timer"; at: number };

interface OutcomeBase {
  plan: ComponentPlan[] | null;
  results: ComponentResult[];
  rebootNeeded: boolean;
  secondaryFailures: StepFailure[];
  /** Resources that shuttingDown could not release. */
  leftovers: (keyof Held)[];
}

/** The machine's output. `installed: false` on success means nothing needed installing. */
export type TargetOutcome =
  | (OutcomeBase & { status: "succeeded"; installed: boolean })
  | (OutcomeBase & { status: "failed"; failure: StepFailure })
  | (OutcomeBase & { status: "cancelled"; cancel: "graceful" | "force" });
