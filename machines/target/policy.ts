/**
 * Deadlines and retries of the target machine's steps: the defaults, the options that override
 * them, and the backoff between attempts (deterministic, so tests and replays see the same times).
 */
import { errorClass } from "../../base/errors.ts";
import {
  CLEANUP_STEPS,
  MAIN_STEPS,
  type BackoffPolicy,
  type PolicyOptions,
  type StepName,
  type StepPolicy,
  type StepPolicyOptions,
} from "./types.ts";

const SECOND = 1000;

/** Backoff used unless overridden: 1 s, 2 s, 4 s ... up to 30 s, up to 20% less per target. */
export const DEFAULT_BACKOFF: BackoffPolicy = {
  initialMs: SECOND,
  factor: 2,
  maxMs: 30 * SECOND,
  jitter: 0.2,
};

const cleanup = { timeoutMs: 30 * SECOND, maxAttempts: 3, backoff: DEFAULT_BACKOFF };

/** Deadline of one attempt and attempts in all, per step, unless overridden. */
export const DEFAULT_POLICY: Readonly<Record<StepName, StepPolicy>> = {
  connect: { timeoutMs: 30 * SECOND, maxAttempts: 3, backoff: DEFAULT_BACKOFF },
  pushAgent: { timeoutMs: 120 * SECOND, maxAttempts: 3, backoff: DEFAULT_BACKOFF },
  allocatePorts: { timeoutMs: 15 * SECOND, maxAttempts: 5, backoff: DEFAULT_BACKOFF },
  startAgent: { timeoutMs: 60 * SECOND, maxAttempts: 3, backoff: DEFAULT_BACKOFF },
  hello: { timeoutMs: 15 * SECOND, maxAttempts: 3, backoff: DEFAULT_BACKOFF },
  // The agent allows an Inventory 300 s (agent/protocol/deadlines.ts) and the workstation waits
  // 315 s for it; the component uploads that come first need their own time on top.
  inventory: { timeoutMs: 420 * SECOND, maxAttempts: 2, backoff: DEFAULT_BACKOFF },
  stage: { timeoutMs: 300 * SECOND, maxAttempts: 3, backoff: DEFAULT_BACKOFF },
  install: { timeoutMs: 1800 * SECOND, maxAttempts: 2, backoff: DEFAULT_BACKOFF },
  logs: { timeoutMs: 120 * SECOND, maxAttempts: 3, backoff: DEFAULT_BACKOFF },
  stopAgent: cleanup,
  removeFiles: cleanup,
  closeFirewall: cleanup,
  releaseLeases: cleanup,
  disconnect: cleanup,
};

/** A policy option that is out of range; `path` names it, e.g. `steps.connect.timeoutMs`. */
export class InvalidPolicyError extends errorClass("INVALID_POLICY") {
  readonly path: string;
  constructor(path: string, problem: string, options?: ErrorOptions) {
    super(`policy ${path} ${problem}`, options);
    this.path = path;
  }
}

function check(path: string, value: number, ok: boolean, range: string): number {
  if (!Number.isFinite(value) || !ok) throw new InvalidPolicyError(path, `must be ${range}, got ${value}`);
  return value;
}

function merge(base: StepPolicy, over: StepPolicyOptions | undefined, path: string): StepPolicy {
  if (!over) return base;
  const b = { ...base.backoff, ...over.backoff };
  const timeoutMs = over.timeoutMs ?? base.timeoutMs;
  const maxAttempts = over.maxAttempts ?? base.maxAttempts;
  return {
    timeoutMs: check(`${path}.timeoutMs`, timeoutMs, timeoutMs > 0, "a number of ms above 0"),
    maxAttempts: check(
      `${path}.maxAttempts`,
      maxAttempts,
      Number.isInteger(maxAttempts) && maxAttempts >= 1,
      "an integer from 1",
    ),
    backoff: {
      initialMs: check(`${path}.backoff.initialMs`, b.initialMs, b.initialMs >= 0, "a number of ms from 0"),
      factor: check(`${path}.backoff.factor`, b.factor, b.factor >= 1, "a number from 1"),
      maxMs: check(`${path}.backoff.maxMs`, b.maxMs, b.maxMs >= 0, "a number of ms from 0"),
      jitter: check(`${path}.backoff.jitter`, b.jitter, b.jitter >= 0 && b.jitter <= 1, "from 0 to 1"),
    },
  };
}

/**
 * The policy of every step: the defaults, then `options.all`, then `options.steps[step]`.
 *
 * @throws {InvalidPolicyError} naming the first option out of range or the unknown step.
 */
export function resolvePolicy(options: PolicyOptions = {}): Record<StepName, StepPolicy> {
  const known = new Set<string>([...MAIN_STEPS, ...CLEANUP_STEPS]);
  for (const step of Object.keys(options.steps ?? {})) {
    if (!known.has(step)) throw new InvalidPolicyError(`steps.${step}`, "is not a step");
  }
  const out = {} as Record<StepName, StepPolicy>;
  for (const step of [...MAIN_STEPS, ...CLEANUP_STEPS]) {
    const withAll = merge(DEFAULT_POLICY[step], options.all, "all");
    out[step] = merge(withAll, options.steps?.[step], `steps.${step}`);
  }
  return out;
}

const DEFAULTS = resolvePolicy();
const resolved = new WeakMap<PolicyOptions, Record<StepName, StepPolicy>>();

/**
 * The policy of `step` under `options` (null: the defaults). Resolved once per options object:
 * a context keeps the options as given (small in every persisted snapshot), not their expansion.
 *
 * @throws {InvalidPolicyError} as {@link resolvePolicy}.
 */
export function policyFor(options: PolicyOptions | null, step: StepName): StepPolicy {
  if (options === null) return DEFAULTS[step];
  let all = resolved.get(options);
  if (!all) {
    all = resolvePolicy(options);
    resolved.set(options, all);
  }
  return all[step];
}

// FNV-1a: a cheap, stable spread of targets over the jitter range (not a security measure).
function unitHash(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) / 2 ** 32;
}

/**
 * Wait before the attempt after `failedAttempt` (1-based): exponential with a cap, then up to
 * `jitter` of it taken off, the same every time for the same `seed` and attempt, so that targets
 * failing together do not retry together.
 *
 * @example backoffDelay({ initialMs: 1000, factor: 2, maxMs: 30000, jitter: 0 }, 3, "t1") // 4000
 */
export function backoffDelay(policy: BackoffPolicy, failedAttempt: number, seed: string): number {
  const raw = policy.initialMs * policy.factor ** Math.max(0, failedAttempt - 1);
  const capped = Math.min(policy.maxMs, raw);
  if (policy.jitter === 0) return Math.round(capped);
  return Math.round(capped * (1 - policy.jitter * unitHash(`${seed}:${failedAttempt}`)));
}
