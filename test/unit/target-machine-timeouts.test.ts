import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { failureKind } from "../../machines/target/errors.ts";
import { CLEANUP_STEPS, type StepName, type TargetOutcome } from "../../machines/target/types.ts";
import {
  ALL_STEPS,
  FakeSteps,
  input,
  pathOf,
  settle,
  start,
  STATE_OF,
  stepError,
  TIMEOUT_MS,
  until,
  type Run,
} from "../support/target-harness.ts";

/** The code of an attempt past its deadline: install's is never retried, so it has its own. */
const timeoutCode = (step: StepName) => (step === "install" ? "INSTALL_TIMEOUT" : "STEP_TIMEOUT");

const CLEANUP_HOLD: Record<string, string> = {
  stopAgent: "agent",
  removeFiles: "files",
  closeFirewall: "firewall",
  releaseLeases: "leases",
  disconnect: "connection",
};

const isCleanup = (step: StepName) => (CLEANUP_STEPS as readonly string[]).includes(step);

/** Steps called after `step` failed for good: logs once the session is up, then what must be undone. */
function expectedAfterFailure(step: StepName): StepName[] {
  const order = ["connect", "pushAgent", "allocatePorts", "startAgent"];
  const reached = order.indexOf(step) === -1 ? 4 : order.indexOf(step) + 1;
  const cleanup: StepName[] = [];
  if (reached >= 4) cleanup.push("stopAgent");
  if (reached >= 2) cleanup.push("removeFiles");
  if (reached >= 3) cleanup.push("closeFirewall", "releaseLeases");
  cleanup.push("disconnect");
  return ["inventory", "stage", "install"].includes(step) ? ["logs", ...cleanup] : cleanup;
}

function oneAttempt(step: StepName) {
  return input({
    policy: { all: { timeoutMs: TIMEOUT_MS, maxAttempts: 3 }, steps: { [step]: { maxAttempts: 1 } } },
  });
}

async function advance(run: Run, ms: number) {
  run.clock.increment(ms);
  return settle(run.actor);
}

function outcome(run: Run): TargetOutcome {
  const s = run.actor.getSnapshot();
  assert.equal(s.status, "done", `not done: ${pathOf(s)}`);
  return s.output;
}

describe("target machine deadlines", () => {
  for (const step of ALL_STEPS) {
    it(`target machine deadlines - ${step} times out at its deadline on the simulated clock`, async () => {
      const steps = new FakeSteps().setAlways(step, "hang");
      const run = start(steps, { input: oneAttempt(step) });
      const s = await until(run, `${STATE_OF[step]}.running`);
      assert.equal(s.context.step, step);
      assert.equal(s.context.deadlineAt, run.clock.now() + TIMEOUT_MS);
      assert.equal(pathOf(await advance(run, TIMEOUT_MS - 1)), `${STATE_OF[step]}.running`);
      const callsBefore = steps.calls.length;
      await advance(run, 1);
      assert.ok(steps.aborted.includes(step), "the attempt's signal is aborted");
      const out = outcome(run);
      const after = steps.steps().slice(callsBefore);
      if (isCleanup(step)) {
        assert.equal(out.status, "succeeded");
        assert.deepEqual(
          out.secondaryFailures.map((f) => [f.step, f.code, f.attempts]),
          [[step, timeoutCode(step), 1]],
        );
        assert.deepEqual(out.leftovers, [CLEANUP_HOLD[step]]);
        assert.deepEqual(after, CLEANUP_STEPS.slice(CLEANUP_STEPS.indexOf(step as never) + 1));
      } else {
        assert.equal(out.status, "failed");
        const f = out.status === "failed" ? out.failure : null;
        assert.deepEqual(
          [f?.step, f?.code, f?.kind, f?.attempts, f?.at],
          [step, timeoutCode(step), failureKind(step), 1, 1_000_000 + TIMEOUT_MS],
        );
        assert.match(f?.message ?? "", new RegExp(`${step} did not finish within ${TIMEOUT_MS} ms`));
        assert.deepEqual(after, expectedAfterFailure(step));
        assert.deepEqual(out.leftovers, []);
      }
    });
  }

  it("target machine deadlines - a timed-out attempt is retried with a fresh deadline", async () => {
    const steps = new FakeSteps({ connect: ["hang", "ok"] });
    const run = start(steps);
    await until(run, "connecting.running");
    assert.equal(pathOf(await advance(run, TIMEOUT_MS)), "connecting.retrying");
    assert.equal(run.actor.getSnapshot().context.lastError?.code, "STEP_TIMEOUT");
    run.actor.subscribe((s) => {
      if (pathOf(s) === "connecting.running")
        assert.equal(s.context.deadlineAt, run.clock.now() + TIMEOUT_MS);
    });
    await advance(run, 100);
    assert.equal(outcome(run).status, "succeeded");
    assert.equal(steps.called("connect"), 2);
  });

  it("target machine deadlines - an install that times out is not retried (it may still run)", async () => {
    const steps = new FakeSteps({ install: ["hang"] });
    const run = start(steps);
    await until(run, "exchanging.install.running");
    await advance(run, TIMEOUT_MS);
    const out = outcome(run);
    assert.equal(out.status === "failed" && out.failure.attempts, 1);
    assert.equal(out.status === "failed" && out.failure.retryable, false);
    assert.equal(steps.called("install"), 1);
  });
});

describe("target machine retries", () => {
  for (const step of ALL_STEPS) {
    it(`target machine retries - ${step} retries a retryable error after its backoff, then goes on`, async () => {
      const flaky = stepError("TRANSIENT", true);
      const steps = new FakeSteps({ [step]: [flaky, flaky, "ok"] });
      const run = start(steps);
      await until(run, `${STATE_OF[step]}.retrying`);
      assert.equal(steps.called(step), 1);
      assert.equal(run.actor.getSnapshot().context.retryAt, run.clock.now() + 100);
      assert.equal(pathOf(await advance(run, 99)), `${STATE_OF[step]}.retrying`);
      assert.equal(steps.called(step), 1, "no attempt before the backoff is over");
      assert.equal(pathOf(await advance(run, 1)), `${STATE_OF[step]}.retrying`);
      assert.equal(steps.called(step), 2);
      await advance(run, 199);
      assert.equal(steps.called(step), 2, "the second backoff is twice the first");
      await advance(run, 1);
      assert.equal(outcome(run).status, "succeeded");
      const attempts = steps.calls
        .filter((c) => c.step === step)
        .map((c) => (c.input as { attempt: number }).attempt);
      assert.deepEqual(attempts, step === "install" ? [1, 2, 3, 1] : [1, 2, 3]);
    });

    it(`target machine retries - ${step} fails for good when its attempts are used up`, async () => {
      const steps = new FakeSteps().setAlways(step, stepError("STILL_DOWN", true));
      const run = start(steps);
      await until(run, `${STATE_OF[step]}.retrying`);
      await advance(run, 100);
      await advance(run, 200);
      const out = outcome(run);
      assert.equal(steps.called(step), 3);
      const failure = isCleanup(step)
        ? out.secondaryFailures[0]
        : out.status === "failed"
          ? out.failure
          : undefined;
      assert.deepEqual(
        [failure?.step, failure?.code, failure?.retryable, failure?.attempts, failure?.message],
        [step, "STILL_DOWN", true, 3, "STILL_DOWN from a fake"],
      );
      assert.equal(out.status, isCleanup(step) ? "succeeded" : "failed");
    });
  }
});
