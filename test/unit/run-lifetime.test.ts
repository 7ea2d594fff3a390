/**
 * How long a run can last by its job (run/run-lifetime.ts): what the run's CA must cover.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { Job } from "../../run/job/types.ts";
import {
  jobLifetimeMs,
  MAX_RUN_LIFETIME_MS,
  MIN_RUN_LIFETIME_MS,
  RUN_LIFETIME_MARGIN_MS,
  runLifetimeMs,
  stepLongestMs,
  targetLongestMs,
} from "../../run/run-lifetime.ts";

const HOUR = 3_600_000;

function job(targets: number, concurrency: number, components: { timeoutMs?: number }[], policy = {}): Job {
  return {
    targets: Array.from({ length: targets }, (_, i) => ({ id: `t${i}` })),
    package: { name: "p", components: components.map((c, i) => ({ id: `c${i}`, version: "1", ...c })) },
    options: { concurrency, policy },
  } as unknown as Job;
}

describe("run lifetime", () => {
  it("run lifetime - a step lasts at most its attempts' deadlines and the backoffs between them", () => {
    // install by default: 2 attempts of 30 minutes, 1 s of backoff between them.
    assert.equal(stepLongestMs(null, "install"), 2 * 1800_000 + 1000);
    // connect: 3 attempts of 30 s, backoffs 1 s and 2 s.
    assert.equal(stepLongestMs(null, "connect"), 3 * 30_000 + 1000 + 2000);
    const one = { all: { maxAttempts: 1 } };
    assert.equal(stepLongestMs(one, "install"), 1800_000);
  });

  it("run lifetime - a target runs one install per component, and the run ceil(targets / concurrency) targets in a row", () => {
    const perTarget = targetLongestMs({ components: 1, policy: null });
    const twoComponents = targetLongestMs({ components: 2, policy: null });
    assert.equal(twoComponents - perTarget, stepLongestMs(null, "install"));
    const shape = { targets: 1000, concurrency: 32, components: 1, policy: null };
    assert.equal(runLifetimeMs(shape), 32 * perTarget + RUN_LIFETIME_MARGIN_MS);
    assert.ok(runLifetimeMs(shape) > 48 * HOUR, "thousands of targets can take days");
  });

  it("run lifetime - never under a day nor over ten years", () => {
    assert.equal(
      runLifetimeMs({ targets: 1, concurrency: 32, components: 1, policy: null }),
      MIN_RUN_LIFETIME_MS,
    );
    const absurd = { all: { timeoutMs: 365 * 24 * HOUR } };
    assert.equal(
      runLifetimeMs({ targets: 100, concurrency: 1, components: 5, policy: absurd }),
      MAX_RUN_LIFETIME_MS,
    );
  });

  it("run lifetime - of a job: under the policy its machines run with, a component's own longer deadline included", () => {
    // 20 rounds of targets: over the one-day floor either way.
    const plain = jobLifetimeMs(job(640, 32, [{}]));
    const long = jobLifetimeMs(job(640, 32, [{ timeoutMs: 10 * HOUR }]));
    assert.ok(plain > MIN_RUN_LIFETIME_MS);
    // The install step's deadline is raised to the component's 10 h (run/machine-input.ts).
    assert.equal(long - plain, 20 * 2 * (10 * HOUR - 1800_000));
    // A policy out of range gives the minimum (each machine refuses it at its start).
    assert.equal(jobLifetimeMs(job(5000, 1, [{}], { all: { maxAttempts: 0 } })), MIN_RUN_LIFETIME_MS);
  });
});
