import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { StepName, TargetOutcome } from "../../machines/target/types.ts";
import {
  ALL_STEPS,
  clockAt,
  FakeSteps,
  input,
  pathOf,
  persist,
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

const T0 = 1_000_000;

function outcome(run: Run): TargetOutcome {
  const s = run.actor.getSnapshot();
  assert.equal(s.status, "done", `not done: ${pathOf(s)}`);
  return s.output;
}

/** Takes a snapshot as a store would keep it, then stops the original actor (the process "dies"). */
function snapshotAndStop(run: Run): unknown {
  const snapshot = persist(run.actor);
  run.actor.stop();
  return snapshot;
}

/** Restores on a fresh clock at the snapshot's time, with fresh fakes. */
function restore(snapshot: unknown, steps: FakeSteps, at: number): Run {
  return start(steps, { snapshot, clock: clockAt(at) });
}

async function advance(run: Run, ms: number) {
  run.clock.increment(ms);
  return settle(run.actor);
}

function oneAttempt(step: StepName) {
  return input({
    policy: { all: { timeoutMs: TIMEOUT_MS, maxAttempts: 3 }, steps: { [step]: { maxAttempts: 1 } } },
  });
}

describe("target machine restore", () => {
  it("target machine restore - from queued, then START runs to the end", async () => {
    const snapshot = snapshotAndStop(start(new FakeSteps(), { send: false }));
    const steps = new FakeSteps();
    const run = restore(snapshot, steps, T0);
    assert.equal(pathOf(await settle(run.actor)), "queued");
    run.actor.send({ type: "START" });
    await settle(run.actor);
    assert.equal(outcome(run).status, "succeeded");
    assert.equal(steps.steps()[0], "connect");
  });

  for (const step of ALL_STEPS) {
    const state = `${STATE_OF[step]}.running`;

    it(`target machine restore - in ${state}: the step runs again with the same input, then to the end`, async () => {
      const first = new FakeSteps().setAlways(step, "hang");
      const original = start(first);
      await until(original, state);
      original.clock.increment(600);
      const snapshot = snapshotAndStop(original);
      assert.ok(first.aborted.includes(step));
      const steps = new FakeSteps();
      const run = restore(snapshot, steps, T0 + 600);
      await settle(run.actor);
      const out = outcome(run);
      assert.equal(out.status, "succeeded");
      assert.equal(steps.calls[0]?.step, step);
      assert.deepEqual(steps.calls[0]?.input, first.calls.at(-1)?.input);
      assert.deepEqual(out.leftovers, []);
    });

    it(`target machine restore - in ${state}: the deadline fires at its original time`, async () => {
      const original = start(new FakeSteps().setAlways(step, "hang"), { input: oneAttempt(step) });
      await until(original, state);
      original.clock.increment(600);
      const snapshot = snapshotAndStop(original);
      const run = restore(snapshot, new FakeSteps().setAlways(step, "hang"), T0 + 600);
      assert.equal(
        pathOf(await advance(run, TIMEOUT_MS - 600 - 1)),
        state,
        "not re-armed for a full timeout",
      );
      await advance(run, 1);
      const out = outcome(run);
      const failure = out.status === "failed" ? out.failure : out.secondaryFailures[0];
      assert.deepEqual(
        [failure?.step, failure?.code, failure?.at],
        [step, timeoutCode(step), T0 + TIMEOUT_MS],
      );
    });

    it(`target machine restore - in ${STATE_OF[step]}.retrying: the backoff ends at its original time`, async () => {
      const first = new FakeSteps({ [step]: [stepError("TRANSIENT", true)] });
      const original = start(first);
      await until(original, `${STATE_OF[step]}.retrying`);
      original.clock.increment(40);
      const snapshot = snapshotAndStop(original);
      const steps = new FakeSteps();
      const run = restore(snapshot, steps, T0 + 40);
      assert.equal(pathOf(await advance(run, 59)), `${STATE_OF[step]}.retrying`);
      assert.equal(steps.called(step), 0);
      await advance(run, 1);
      assert.equal(outcome(run).status, "succeeded");
      assert.equal(steps.calls[0]?.step, step);
      assert.equal((steps.calls[0]?.input as { attempt: number }).attempt, 2);
    });
  }

  it("target machine restore - a deadline that passed while nothing ran fires at once", async () => {
    const original = start(new FakeSteps({ connect: ["hang"] }));
    await until(original, "connecting.running");
    const steps = new FakeSteps().setAlways("connect", "hang");
    const run = restore(snapshotAndStop(original), steps, T0 + 5 * TIMEOUT_MS);
    await advance(run, 0);
    assert.equal(pathOf(run.actor.getSnapshot()), "connecting.retrying");
    assert.equal(run.actor.getSnapshot().context.lastError?.code, "STEP_TIMEOUT");
    run.actor.stop();
  });

  it("target machine restore - between components: only the remaining one is installed", async () => {
    const original = start(new FakeSteps({ install: ["ok", "hang"] }));
    const s = await until(original, "exchanging.install.running");
    assert.equal(s.context.installIndex, 1);
    const steps = new FakeSteps();
    const run = restore(snapshotAndStop(original), steps, T0);
    await settle(run.actor);
    const out = outcome(run);
    assert.deepEqual(
      steps.calls
        .filter((c) => c.step === "install")
        .map((c) => (c.input as { component: { id: string } }).component.id),
      ["nic"],
    );
    assert.deepEqual(
      out.results.map((r) => r.id),
      ["fw", "nic"],
    );
  });

  it("target machine restore - after a graceful cancel during an install, the cancel still holds", async () => {
    const original = start(new FakeSteps({ install: ["hang"] }));
    await until(original, "exchanging.install.running");
    original.actor.send({ type: "CANCEL" });
    const steps = new FakeSteps();
    const run = restore(snapshotAndStop(original), steps, T0);
    await settle(run.actor);
    assert.equal(outcome(run).status, "cancelled");
    assert.equal(steps.called("install"), 1, "the component being installed finishes");
    assert.equal(steps.called("logs"), 0);
  });

  const finals: [string, FakeSteps, boolean][] = [
    ["succeeded", new FakeSteps(), true],
    ["failed", new FakeSteps({ connect: [stepError("REFUSED", false)] }), true],
    ["cancelled", new FakeSteps(), false],
  ];
  for (const [name, steps, send] of finals) {
    it(`target machine restore - in ${name}: stays done with the same output, runs nothing`, async () => {
      const original = start(steps, { send });
      if (!send) original.actor.send({ type: "CANCEL" });
      await settle(original.actor);
      const before = outcome(original);
      assert.equal(before.status, name);
      const again = new FakeSteps();
      const run = restore(snapshotAndStop(original), again, T0);
      await settle(run.actor);
      assert.deepEqual(outcome(run), before);
      assert.deepEqual(again.calls, []);
    });
  }
});
