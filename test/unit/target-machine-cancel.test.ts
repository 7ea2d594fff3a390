import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { CLEANUP_STEPS, MAIN_STEPS, type StepName, type TargetOutcome } from "../../machines/target/types.ts";
import {
  FakeSteps,
  gate,
  pathOf,
  settle,
  start,
  STATE_OF,
  stepError,
  until,
  type Run,
} from "../support/target-harness.ts";

function outcome(run: Run): TargetOutcome {
  const s = run.actor.getSnapshot();
  assert.equal(s.status, "done", `not done: ${pathOf(s)}`);
  return s.output;
}

/** What shuttingDown must undo once `step` has started (it may have acquired its resource). */
function cleanupAfter(step: StepName | "queued"): StepName[] {
  const i = step === "queued" ? 0 : Math.min(MAIN_STEPS.indexOf(step as never) + 1, 4);
  const out: StepName[] = [];
  if (i >= 4) out.push("stopAgent");
  if (i >= 2) out.push("removeFiles");
  if (i >= 3) out.push("closeFirewall", "releaseLeases");
  if (i >= 1) out.push("disconnect");
  return out;
}

// Where a plain CANCEL acts at once: every main step but install (which lets the component finish).
const IMMEDIATE = MAIN_STEPS.filter((s) => s !== "install");

describe("target machine cancel", () => {
  it("target machine cancel - from queued ends cancelled with nothing to clean up", async () => {
    const steps = new FakeSteps();
    const run = start(steps, { send: false });
    run.actor.send({ type: "CANCEL" });
    await settle(run.actor);
    const out = outcome(run);
    assert.equal(out.status === "cancelled" && out.cancel, "graceful");
    assert.deepEqual(steps.steps(), []);
    assert.deepEqual(run.paths, ["queued", "cancelled"]);
  });

  for (const step of IMMEDIATE) {
    for (const where of ["running", "retrying"] as const) {
      it(`target machine cancel - from ${STATE_OF[step]}.${where} goes through shuttingDown and cleans up`, async () => {
        const steps = new FakeSteps().setAlways(
          step,
          where === "running" ? "hang" : stepError("TRANSIENT", true),
        );
        const run = start(steps);
        await until(run, `${STATE_OF[step]}.${where}`);
        const before = steps.calls.length;
        run.actor.send({ type: "CANCEL" });
        await settle(run.actor);
        const out = outcome(run);
        assert.equal(out.status, "cancelled");
        assert.deepEqual(steps.steps().slice(before), cleanupAfter(step));
        assert.deepEqual(out.leftovers, []);
        if (where === "running") assert.ok(steps.aborted.includes(step), `${step} is aborted`);
        assert.ok(run.paths.includes("shuttingDown.disconnect.running"));
        assert.equal(run.paths.at(-1), "cancelled");
      });
    }
  }

  it("target machine cancel - during an install lets that component finish, installs no more", async () => {
    const fw = gate();
    const steps = new FakeSteps({ install: [fw] });
    const run = start(steps);
    await until(run, "exchanging.install.running");
    run.actor.send({ type: "CANCEL" });
    assert.equal(pathOf(await settle(run.actor)), "exchanging.install.running", "waits for the install");
    assert.deepEqual(steps.aborted, []);
    fw.resolve({ rebootNeeded: true });
    await settle(run.actor);
    const out = outcome(run);
    assert.equal(out.status === "cancelled" && out.cancel, "graceful");
    assert.deepEqual(
      out.results.map((r) => [r.id, r.status]),
      [["fw", "installed"]],
    );
    assert.equal(out.rebootNeeded, true, "what was installed is still reported");
    assert.equal(steps.called("install"), 1);
    assert.equal(steps.called("logs"), 0);
    assert.deepEqual(steps.steps().slice(-5), [...CLEANUP_STEPS]);
  });

  it("target machine cancel - during an install, a failing component is not retried after a cancel", async () => {
    const fw = gate();
    const steps = new FakeSteps({ install: [fw] });
    const run = start(steps);
    await until(run, "exchanging.install.running");
    run.actor.send({ type: "CANCEL" });
    fw.reject(stepError("INSTALLER_BUSY", true));
    await settle(run.actor);
    const out = outcome(run);
    assert.equal(out.status === "failed" && out.failure.code, "INSTALLER_BUSY");
    assert.equal(steps.called("install"), 1);
    assert.equal(steps.called("logs"), 0);
  });

  for (const how of ["force", "second cancel"] as const) {
    it(`target machine cancel - ${how} stops an install at once and still cleans up`, async () => {
      const steps = new FakeSteps({ install: ["hang"] });
      const run = start(steps);
      await until(run, "exchanging.install.running");
      if (how === "force") run.actor.send({ type: "CANCEL", force: true });
      else {
        run.actor.send({ type: "CANCEL" });
        run.actor.send({ type: "CANCEL" });
      }
      await settle(run.actor);
      const out = outcome(run);
      assert.equal(out.status === "cancelled" && out.cancel, "force");
      assert.deepEqual(steps.aborted, ["install"]);
      assert.deepEqual(out.results, []);
      assert.deepEqual(steps.steps().slice(-5), [...CLEANUP_STEPS]);
    });
  }

  it("target machine cancel - while waiting to retry an install stops without retrying", async () => {
    const steps = new FakeSteps({ install: [stepError("TRANSIENT", true)] });
    const run = start(steps);
    await until(run, "exchanging.install.retrying");
    run.actor.send({ type: "CANCEL" });
    await settle(run.actor);
    assert.equal(outcome(run).status, "cancelled");
    assert.equal(steps.called("install"), 1);
  });

  for (const step of CLEANUP_STEPS) {
    it(`target machine cancel - in ${STATE_OF[step]} is ignored: cleanup runs to its end`, async () => {
      const g = gate();
      const steps = new FakeSteps({ [step]: [g] });
      const run = start(steps);
      await until(run, `${STATE_OF[step]}.running`);
      run.actor.send({ type: "CANCEL", force: true });
      assert.deepEqual(steps.aborted, []);
      g.resolve(undefined);
      await settle(run.actor);
      assert.equal(outcome(run).status, "succeeded");
      assert.deepEqual(steps.steps().slice(-5), [...CLEANUP_STEPS]);
    });
  }

  it("target machine cancel - after a failure, cleanup still runs and the failure is the outcome", async () => {
    const stop = gate();
    const steps = new FakeSteps({ startAgent: [stepError("AGENT_CRASHED", false)], stopAgent: [stop] });
    const run = start(steps);
    await until(run, "shuttingDown.stopAgent.running");
    run.actor.send({ type: "CANCEL" });
    stop.resolve(undefined);
    await settle(run.actor);
    const out = outcome(run);
    assert.equal(out.status === "failed" && out.failure.code, "AGENT_CRASHED");
    assert.deepEqual(steps.steps().slice(-5), [...CLEANUP_STEPS]);
    assert.deepEqual(out.leftovers, []);
  });
});
