/**
 * Pure functions over the target machine's context: the first context from the input, each step
 * actor's input, and the outcome the machine reports when it is done.
 */
import { errorClass } from "../../base/errors.ts";
import { toInstall } from "./components.ts";
import { policyFor } from "./policy.ts";
import type {
  CleanupStep,
  Held,
  StepName,
  TargetContext,
  TargetMachineInput,
  TargetOutcome,
} from "./types.ts";
import type { CleanupInput, StepActorTypes, StepInputBase } from "./step-io.ts";

/** Error of a step input that the context cannot provide: a bug in the machine, not the target. */
export class MissingStepInputError extends errorClass("MISSING_STEP_INPUT") {
  constructor(step: StepName, what: string) {
    super(`${step} needs ${what}, which no earlier step provided`);
  }
}

/**
 * The context of a new target machine.
 *
 * @throws {InvalidPolicyError} when `input.policy` is out of range.
 */
export function initialContext(input: TargetMachineInput): TargetContext {
  // Checked now, so that bad options fail the machine's start, not a step halfway through.
  if (input.policy) policyFor(input.policy, "connect");
  return {
    job: {
      runId: input.runId,
      target: input.target,
      components: input.components,
      inventoryOnly: input.inventoryOnly ?? false,
      rewrite: input.rewrite ?? false,
      downgrade: input.downgrade ?? false,
      policy: input.policy ?? null,
    },
    step: null,
    attempt: 0,
    deadlineAt: null,
    retryAt: null,
    lastError: null,
    held: { connection: false, files: false, agent: false, firewall: false, leases: false },
    session: { sessionId: null, agentDir: null, leases: null, agentPort: null, agentVersion: null },
    plan: null,
    installIndex: 0,
    results: [],
    logs: null,
    cancel: "none",
    failure: null,
    secondaryFailures: [],
  };
}

function need<T>(step: StepName, what: string, value: T | null): T {
  if (value === null) throw new MissingStepInputError(step, what);
  return value;
}

/** The input of `step`'s actor, from what earlier steps left in the context. */
export function stepInput(step: StepName, context: TargetContext): StepActorTypes[StepName][0] {
  const c = context.session;
  const { job } = context;
  const base: StepInputBase = { runId: job.runId, target: job.target, attempt: context.attempt };
  switch (step) {
    case "connect":
    case "allocatePorts":
      return base;
    case "pushAgent":
      return { ...base, sessionId: need(step, "a session", c.sessionId) };
    case "startAgent":
      return {
        ...base,
        sessionId: need(step, "a session", c.sessionId),
        agentDir: need(step, "the agent's directory", c.agentDir),
        leases: need(step, "port leases", c.leases),
      };
    case "hello":
    case "logs":
      return { ...base, agentPort: need(step, "the agent's port", c.agentPort) };
    case "inventory":
      return {
        ...base,
        agentPort: need(step, "the agent's port", c.agentPort),
        componentIds: job.components.map((x) => x.id),
      };
    case "stage":
      return {
        ...base,
        agentPort: need(step, "the agent's port", c.agentPort),
        components: toInstall(context.plan).map(({ id, version }) => ({ id, version })),
      };
    case "install": {
      const p = toInstall(context.plan)[context.installIndex];
      if (!p || p.action === "skip") throw new MissingStepInputError(step, "a component to install");
      return {
        ...base,
        agentPort: need(step, "the agent's port", c.agentPort),
        component: { id: p.id, version: p.version },
        action: p.action,
      };
    }
    default: {
      const cleanup: CleanupInput = {
        ...base,
        sessionId: c.sessionId,
        agentDir: c.agentDir,
        leases: c.leases,
        agentPort: c.agentPort,
        ...(context.cancel === "none" ? {} : { cancel: context.cancel }),
      };
      return cleanup;
    }
  }
}

/** Whether a cleanup step has something to undo; it is skipped otherwise. */
export const CLEANUP_HOLDS: Readonly<Record<CleanupStep, keyof Held>> = {
  stopAgent: "agent",
  removeFiles: "files",
  closeFirewall: "firewall",
  releaseLeases: "leases",
  disconnect: "connection",
};

/** The machine's output, from its final context. */
export function outcome(c: TargetContext): TargetOutcome {
  const base = {
    plan: c.plan,
    results: c.results,
    rebootNeeded: c.results.some((r) => r.status === "installed" && r.rebootNeeded),
    secondaryFailures: c.secondaryFailures,
    leftovers: (Object.keys(c.held) as (keyof Held)[]).filter((k) => c.held[k]),
  };
  if (c.failure) return { ...base, status: "failed", failure: c.failure };
  if (c.cancel !== "none") return { ...base, status: "cancelled", cancel: c.cancel };
  return { ...base, status: "succeeded", installed: c.results.some((r) => r.status === "installed") };
}
