import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  backoffDelay,
  DEFAULT_POLICY,
  InvalidPolicyError,
  policyFor,
  resolvePolicy,
} from "../../machines/target/policy.ts";

describe("target policy", () => {
  it("target policy - defaults apply to every step when nothing is given", () => {
    assert.deepEqual(resolvePolicy(), DEFAULT_POLICY);
    assert.equal(policyFor(null, "install"), DEFAULT_POLICY.install);
  });

  it("target policy - options for all steps, then for one step, override the defaults", () => {
    const p = resolvePolicy({
      all: { timeoutMs: 5000, backoff: { jitter: 0 } },
      steps: { connect: { maxAttempts: 7 } },
    });
    assert.equal(p.stage.timeoutMs, 5000);
    assert.equal(p.connect.timeoutMs, 5000);
    assert.equal(p.connect.maxAttempts, 7);
    assert.equal(p.stage.maxAttempts, DEFAULT_POLICY.stage.maxAttempts);
    assert.deepEqual(p.stage.backoff, { ...DEFAULT_POLICY.stage.backoff, jitter: 0 });
  });

  const bad: [object, RegExp][] = [
    [{ all: { timeoutMs: 0 } }, /policy all\.timeoutMs must be a number of ms above 0, got 0/],
    [
      { steps: { hello: { maxAttempts: 1.5 } } },
      /policy steps\.hello\.maxAttempts must be an integer from 1, got 1\.5/,
    ],
    [
      { steps: { logs: { backoff: { jitter: 2 } } } },
      /policy steps\.logs\.backoff\.jitter must be from 0 to 1, got 2/,
    ],
    [{ all: { backoff: { factor: 0.5 } } }, /policy all\.backoff\.factor must be a number from 1, got 0\.5/],
    [{ all: { timeoutMs: Number.NaN } }, /policy all\.timeoutMs must be a number of ms above 0, got NaN/],
    [{ steps: { reboot: {} } }, /policy steps\.reboot is not a step/],
  ];
  for (const [options, message] of bad) {
    it(`target policy - ${JSON.stringify(options)} is refused, naming the option`, () => {
      assert.throws(
        () => resolvePolicy(options),
        (e: unknown) =>
          e instanceof InvalidPolicyError && e.code === "INVALID_POLICY" && message.test(e.message),
      );
    });
  }

  it("target policy - backoff doubles from its start up to its cap", () => {
    const b = { initialMs: 100, factor: 2, maxMs: 1000, jitter: 0 };
    assert.deepEqual(
      [1, 2, 3, 4, 5, 6].map((n) => backoffDelay(b, n, "t1")),
      [100, 200, 400, 800, 1000, 1000],
    );
  });

  it("target policy - jitter takes off up to its fraction, the same for the same target and attempt", () => {
    const b = { initialMs: 1000, factor: 1, maxMs: 1000, jitter: 0.5 };
    const delays = Array.from({ length: 200 }, (_, i) => backoffDelay(b, 1, `t${i}`));
    assert.ok(
      delays.every((d) => d > 500 && d <= 1000),
      "within the jitter range",
    );
    assert.ok(new Set(delays).size > 100, "targets are spread");
    assert.equal(backoffDelay(b, 1, "t7"), delays[7]);
    assert.notEqual(backoffDelay(b, 2, "t7"), backoffDelay(b, 3, "t7"));
  });
});
