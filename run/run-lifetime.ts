/**
 * How long a run can last at most, by its job: what the run's CA, and so every certificate it
 * issues (agents', callback listeners', the workstation's), must cover, since a handshake after
 * the CA's notAfter fails (a retry's new connection, an agent's callbacks reconnecting).
 *
 * Each target's machine bounds every step: an attempt ends at its deadline, attempts are counted,
 * and the backoff between them is capped (machines/target/policy.ts). So one target lasts at most
 * the sum, over its steps (install once per component, the cleanup steps included), of
 * `attempts × deadline + the backoffs between them`; targets run `concurrency` at a time, so the
 * run lasts at most `ceil(targets / concurrency)` times that. A margin covers what runs outside
 * the machines (set-up, the report), and the result is never under a day (the former fixed
 * lifetime) nor over ten years.
 */
import { backoffDelay, InvalidPolicyError, policyFor } from "../machines/target/policy.ts";
import { CLEANUP_STEPS, MAIN_STEPS, type PolicyOptions, type StepName } from "../machines/target/types.ts";
import type { Job } from "./job/types.ts";
import { runPolicy } from "./machine-input.ts";

const HOUR = 3_600_000;
/** Set-up before the first target and the report after the last. */
export const RUN_LIFETIME_MARGIN_MS = HOUR;
/** Never shorter than this. */
export const MIN_RUN_LIFETIME_MS = 24 * HOUR;
/** Never longer than this (deadlines of years would be a mistake, not a plan). */
export const MAX_RUN_LIFETIME_MS = 10 * 365 * 24 * HOUR;

/** What of the job bounds its run. */
export interface RunShape {
  readonly targets: number;
  readonly concurrency: number;
  /** Components of the package: the most installs one target can run. */
  readonly components: number;
  readonly policy: PolicyOptions | null;
}

/** The longest one step can take, all its attempts and the backoffs between them. */
export function stepLongestMs(policy: PolicyOptions | null, step: StepName): number {
  const p = policyFor(policy, step);
  let total = p.timeoutMs * p.maxAttempts;
  // Without jitter, a backoff is as long as it can be.
  for (let failed = 1; failed < p.maxAttempts; failed++)
    total += backoffDelay({ ...p.backoff, jitter: 0 }, failed, step);
  return total;
}

/** The longest one target can take through every step. */
export function targetLongestMs(shape: Pick<RunShape, "components" | "policy">): number {
  let total = 0;
  for (const step of [...MAIN_STEPS, ...CLEANUP_STEPS])
    total += stepLongestMs(shape.policy, step) * (step === "install" ? Math.max(1, shape.components) : 1);
  return total;
}

/** The longest the run can last, margin included, within [1 day, 10 years]. */
export function runLifetimeMs(shape: RunShape): number {
  const rounds = Math.ceil(Math.max(1, shape.targets) / Math.max(1, shape.concurrency));
  const longest = rounds * targetLongestMs(shape) + RUN_LIFETIME_MARGIN_MS;
  return Math.min(MAX_RUN_LIFETIME_MS, Math.max(MIN_RUN_LIFETIME_MS, longest));
}

/**
 * {@link runLifetimeMs} of a job, under the policy its machines run with (run/machine-input.ts). A
 * policy out of range gives the minimum: every target's machine refuses it at its start anyway.
 */
export function jobLifetimeMs(job: Job): number {
  try {
    return runLifetimeMs({
      targets: job.targets.length,
      concurrency: job.options.concurrency,
      components: job.package.components.length,
      policy: runPolicy(job),
    });
  } catch (error) {
    if (error instanceof InvalidPolicyError) return MIN_RUN_LIFETIME_MS;
    throw error;
  }
}
