/** The target machine's input for one target of a job: what it deploys and how. */
import { policyFor } from "../machines/target/policy.ts";
import type { PolicyOptions, TargetMachineInput, TargetRef } from "../machines/target/types.ts";
import type { Job, JobTarget } from "./job/types.ts";
import type { RunFlags } from "./types.ts";

/** The machine's view of a job target. */
export function targetRef(target: JobTarget): TargetRef {
  if (target.transport === "local") return { id: target.id, host: "local", os: "local" };
  return { id: target.id, host: target.host, os: target.os, port: target.port };
}

/**
 * The job's policy, with the install deadline raised to the longest component `timeout`: the
 * machine has one install deadline for every component, and a component allowed longer than the
 * install step's deadline must not be cut by it (the install step keeps each component's own).
 */
export function runPolicy(job: Job): PolicyOptions {
  const longest = Math.max(0, ...job.package.components.map((c) => c.timeoutMs ?? 0));
  const policy = job.options.policy;
  let installMs: number;
  try {
    installMs = policyFor(policy, "install").timeoutMs;
  } catch {
    // Out of range (the job loader checks the ranges, so a job built in code): each target's
    // machine refuses it at its start and fails with the policy's own error.
    return policy;
  }
  if (longest <= installMs) return policy;
  const install = { ...policy.steps?.install, timeoutMs: longest };
  return { ...policy, steps: { ...policy.steps, install } };
}

/**
 * The input of `createActor(targetMachine, { input })` for each target of `job`. The components
 * and the policy are made once and shared by every target's input (a run may have thousands).
 */
export function machineInputs(
  runId: string,
  job: Job,
  flags: RunFlags,
): (target: JobTarget) => TargetMachineInput {
  const components = job.package.components.map(({ id, version }) => ({ id, version }));
  const policy = runPolicy(job);
  return (target) => ({
    runId,
    target: targetRef(target),
    components,
    inventoryOnly: flags.inventoryOnly,
    rewrite: flags.rewrite,
    downgrade: flags.downgrade,
    policy,
  });
}
