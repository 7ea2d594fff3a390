/**
 * How the target machine's context changes when a step starts, succeeds or fails: pure functions
 * returning the changed fields, used by the machine's `assign` actions.
 */
import { planComponents, toInstall } from "./components.ts";
import { CLEANUP_HOLDS } from "./context.ts";
import { failureKind } from "./errors.ts";
import { backoffDelay, policyFor } from "./policy.ts";
import type { CleanupStep, Held, StepError, StepName, TargetContext } from "./types.ts";
import type { StepActorTypes } from "./step-io.ts";

type Update = Partial<TargetContext>;

// What a step may leave behind once it has started (even if it then fails or times out), so that
// shuttingDown undoes it: marked on entry, cleared when the matching cleanup step succeeds.
const ACQUIRES: Partial<Record<StepName, (keyof Held)[]>> = {
  connect: ["connection"],
  pushAgent: ["files"],
  allocatePorts: ["leases", "firewall"],
  startAgent: ["agent"],
};

/** A step starts: first attempt and its deadline, and what it may acquire marked as held. */
export function beginStep(c: TargetContext, step: StepName, now: number): Update {
  const acquires = ACQUIRES[step];
  let held = c.held;
  if (acquires && acquires.some((k) => !held[k])) {
    held = { ...held };
    for (const k of acquires) held[k] = true;
  }
  return {
    step,
    attempt: 1,
    lastError: null,
    deadlineAt: now + policyFor(c.job.policy, step).timeoutMs,
    retryAt: null,
    held,
  };
}

/** The backoff is over: the next attempt and its deadline. */
export function nextAttempt(c: TargetContext, now: number): Update {
  const deadlineAt = c.step ? now + policyFor(c.job.policy, c.step).timeoutMs : null;
  return { attempt: c.attempt + 1, deadlineAt, retryAt: null };
}

/** The next component's install: first attempt and its deadline. */
export function nextComponent(c: TargetContext, now: number): Update {
  return {
    installIndex: c.installIndex + 1,
    attempt: 1,
    lastError: null,
    deadlineAt: now + policyFor(c.job.policy, "install").timeoutMs,
  };
}

/** An attempt failed and will be retried: when. */
export function armBackoff(c: TargetContext, error: StepError, now: number): Update {
  const step = c.step;
  if (!step) return {};
  const delay = backoffDelay(policyFor(c.job.policy, step).backoff, c.attempt, `${c.job.target.id}:${step}`);
  return { lastError: error, deadlineAt: null, retryAt: now + delay };
}

/** Whether a failed attempt of the current step is retried. A cancel stops retries. */
export function canRetry(c: TargetContext, error: StepError): boolean {
  return (
    error.retryable &&
    c.cancel === "none" &&
    c.step !== null &&
    c.attempt < policyFor(c.job.policy, c.step).maxAttempts
  );
}

function installing(c: TargetContext) {
  return toInstall(c.plan)[c.installIndex];
}

/** A step succeeded: what it produced, by reference and size. */
export function applyOutput(c: TargetContext, step: StepName, output: unknown): Update {
  const done = { deadlineAt: null, retryAt: null, lastError: null };
  switch (step) {
    case "connect":
      return {
        ...done,
        session: { ...c.session, sessionId: (output as StepActorTypes["connect"][1]).sessionId },
      };
    case "pushAgent":
      return {
        ...done,
        session: { ...c.session, agentDir: (output as StepActorTypes["pushAgent"][1]).agentDir },
      };
    case "allocatePorts":
      return {
        ...done,
        session: { ...c.session, leases: (output as StepActorTypes["allocatePorts"][1]).leases },
      };
    case "startAgent":
      return {
        ...done,
        session: { ...c.session, agentPort: (output as StepActorTypes["startAgent"][1]).agentPort },
      };
    case "hello":
      return {
        ...done,
        session: { ...c.session, agentVersion: (output as StepActorTypes["hello"][1]).agentVersion },
      };
    case "inventory": {
      const { installed } = output as StepActorTypes["inventory"][1];
      const planned = planComponents(c.job.components, installed, c.job);
      return planned.ok ? { ...done, plan: planned.plan, installIndex: 0 } : done;
    }
    case "stage":
      return done;
    case "install": {
      const p = installing(c);
      if (!p || p.action === "skip") return done;
      const { rebootNeeded } = output as StepActorTypes["install"][1];
      const result = {
        id: p.id,
        version: p.version,
        action: p.action,
        status: "installed" as const,
        rebootNeeded,
      };
      return { ...done, results: [...c.results, result] };
    }
    case "logs": {
      const { location, files, bytes } = output as StepActorTypes["logs"][1];
      return { ...done, logs: { location, files, bytes } };
    }
    default:
      return { ...done, held: { ...c.held, [CLEANUP_HOLDS[step]]: false } };
  }
}

/** The inventory's plan failed (a version that cannot be compared): its error, or null. */
export function inventoryError(c: TargetContext, output: unknown): StepError | null {
  const planned = planComponents(
    c.job.components,
    (output as StepActorTypes["inventory"][1]).installed,
    c.job,
  );
  return planned.ok ? null : planned.error;
}

/** Whether the inventory's plan installs anything (false also when it failed). */
export function inventoryNeedsInstall(c: TargetContext, output: unknown): boolean {
  const planned = planComponents(
    c.job.components,
    (output as StepActorTypes["inventory"][1]).installed,
    c.job,
  );
  return planned.ok && toInstall(planned.plan).length > 0;
}

/** Whether another component follows the one being installed. */
export function moreToInstall(c: TargetContext): boolean {
  return c.installIndex + 1 < toInstall(c.plan).length;
}

/**
 * A step failed for good. The first failure of a main step decides the outcome; cleanup steps'
 * failures, and any after the first, are kept as secondary.
 */
export function recordFailure(c: TargetContext, step: StepName, error: StepError, now: number): Update {
  const p = step === "install" ? installing(c) : undefined;
  const failure = {
    ...error,
    step,
    kind: failureKind(step),
    attempts: c.attempt,
    ...(p ? { componentId: p.id } : {}),
    at: now,
  };
  const update: Update = { deadlineAt: null, retryAt: null, lastError: error };
  if (p && p.action !== "skip") {
    update.results = [
      ...c.results,
      { id: p.id, version: p.version, action: p.action, status: "failed", rebootNeeded: false },
    ];
  }
  if (c.failure === null && !isCleanup(step)) update.failure = failure;
  else update.secondaryFailures = [...c.secondaryFailures, failure];
  return update;
}

function isCleanup(step: StepName): step is CleanupStep {
  return step in CLEANUP_HOLDS;
}
