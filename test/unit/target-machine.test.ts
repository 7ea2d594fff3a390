import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createActor } from "xstate";
import { targetMachine } from "../../machines/target/target.machine.ts";
import { CLEANUP_STEPS, MAIN_STEPS, type StepName, type TargetOutcome } from "../../machines/target/types.ts";
import {
  FakeSteps,
  input,
  LEASES,
  pathOf,
  settle,
  start,
  stepError,
  type TargetSnapshot,
} from "../support/target-harness.ts";

const FULL_RUN = [
  "queued",
  "connecting.running",
  "pushingAgent.running",
  "allocatingPorts.running",
  "startingAgent.running",
  "exchanging.hello.running",
  "exchanging.inventory.running",
  "exchanging.stage.running",
  "exchanging.install.running",
  "exchanging.logs.running",
  "shuttingDown.stopAgent.running",
  "shuttingDown.removeFiles.running",
  "shuttingDown.closeFirewall.running",
  "shuttingDown.releaseLeases.running",
  "shuttingDown.disconnect.running",
  "succeeded",
];

function outcomeOf(s: TargetSnapshot): TargetOutcome {
  assert.equal(s.status, "done", `not done: ${pathOf(s)}`);
  return s.output;
}

// Only what JSON keeps as it is: plain objects, arrays, strings, finite numbers, booleans, null
// (undefined counts as absent).
function assertPlainData(value: unknown, at = "snapshot"): void {
  if (value === null || value === undefined || typeof value === "string" || typeof value === "boolean")
    return;
  if (typeof value === "number") return assert.ok(Number.isFinite(value), `${at} is ${value}`);
  assert.equal(typeof value, "object", `${at} is a ${typeof value}`);
  const proto = Object.getPrototypeOf(value) as unknown;
  assert.ok(
    proto === Object.prototype || proto === Array.prototype || proto === null,
    `${at} is a class instance`,
  );
  for (const [k, v] of Object.entries(value)) assertPlainData(v, `${at}.${k}`);
}

describe("target machine", () => {
  it("target machine - goes through every state in order and succeeds having installed", async () => {
    const steps = new FakeSteps();
    const run = start(steps);
    const out = outcomeOf(await settle(run.actor));
    assert.deepEqual(run.paths, FULL_RUN);
    assert.deepEqual(steps.steps(), [...MAIN_STEPS.slice(0, 8), "install", "logs", ...CLEANUP_STEPS]);
    assert.equal(out.status, "succeeded");
    assert.equal(out.status === "succeeded" && out.installed, true);
    assert.equal(out.rebootNeeded, false);
    assert.deepEqual(out.leftovers, []);
    assert.deepEqual(
      out.results.map((r) => [r.id, r.action, r.status]),
      [
        ["fw", "install", "installed"],
        ["nic", "install", "installed"],
      ],
    );
    assert.ok(run.persisted.length >= FULL_RUN.length);
    run.persisted.forEach((p, i) => assertPlainData(p, `snapshot ${i}`));
  });

  it("target machine - each step gets what earlier steps produced", async () => {
    const steps = new FakeSteps({ inventory: [{ output: { installed: { fw: "2.0.9", nic: "1.4" } } }] });
    await settle(start(steps).actor);
    const inputOf = (step: StepName) => steps.calls.find((c) => c.step === step)?.input;
    const base = { runId: "r1", target: input().target, attempt: 1 };
    assert.deepEqual(inputOf("pushAgent"), { ...base, sessionId: "ssh-1" });
    assert.deepEqual(inputOf("startAgent"), {
      ...base,
      sessionId: "ssh-1",
      agentDir: "/tmp/sumac-agent",
      leases: LEASES,
    });
    // The agent's actual port (62287) wins over the leased one (62286).
    assert.deepEqual(inputOf("hello"), { ...base, agentPort: 62287 });
    assert.deepEqual(inputOf("inventory"), { ...base, agentPort: 62287, componentIds: ["fw", "nic"] });
    assert.deepEqual(inputOf("stage"), {
      ...base,
      agentPort: 62287,
      components: [{ id: "fw", version: "2.1.0" }],
    });
    assert.deepEqual(inputOf("install"), {
      ...base,
      agentPort: 62287,
      component: { id: "fw", version: "2.1.0" },
      action: "update",
    });
    assert.equal(steps.called("install"), 1, "nic 1.4 is current and skipped");
    assert.deepEqual(inputOf("releaseLeases"), {
      ...base,
      sessionId: "ssh-1",
      agentDir: "/tmp/sumac-agent",
      leases: LEASES,
      agentPort: 62287,
    });
  });

  it("target machine - an install that needs a reboot is reported", async () => {
    const steps = new FakeSteps({ install: ["ok", { output: { rebootNeeded: true } }] });
    const out = outcomeOf(await settle(start(steps).actor));
    assert.equal(out.status, "succeeded");
    assert.equal(out.rebootNeeded, true);
    assert.deepEqual(
      out.results.map((r) => r.rebootNeeded),
      [false, true],
    );
  });

  it("target machine - nothing needed: current and newer components are skipped, no stage or install", async () => {
    const steps = new FakeSteps({ inventory: [{ output: { installed: { fw: "2.1.0", nic: "1.10" } } }] });
    const run = start(steps);
    const out = outcomeOf(await settle(run.actor));
    assert.ok(!run.paths.some((p) => p.includes("stage") || p.includes("install")));
    assert.equal(out.status === "succeeded" && out.installed, false);
    assert.deepEqual(
      out.plan?.map((p) => [p.id, p.action, p.reason]),
      [
        ["fw", "skip", "current"],
        ["nic", "skip", "newer-installed"],
      ],
    );
    assert.equal(steps.called("logs"), 1);
  });

  it("target machine - rewrite and downgrade install current and newer components again", async () => {
    const steps = new FakeSteps({ inventory: [{ output: { installed: { fw: "2.1.0", nic: "1.10" } } }] });
    const out = outcomeOf(
      await settle(start(steps, { input: input({ rewrite: true, downgrade: true }) }).actor),
    );
    assert.deepEqual(
      out.results.map((r) => [r.id, r.action, r.status]),
      [
        ["fw", "rewrite", "installed"],
        ["nic", "downgrade", "installed"],
      ],
    );
  });

  it("target machine - inventory-only reports what would be installed and changes nothing", async () => {
    const steps = new FakeSteps({ inventory: [{ output: { installed: { fw: "1.0" } } }] });
    const run = start(steps, { input: input({ inventoryOnly: true }) });
    const out = outcomeOf(await settle(run.actor));
    assert.equal(steps.called("stage") + steps.called("install"), 0);
    assert.equal(out.status === "succeeded" && out.installed, false);
    assert.deepEqual(
      out.plan?.map((p) => [p.id, p.installedVersion, p.action]),
      [
        ["fw", "1.0", "update"],
        ["nic", null, "install"],
      ],
    );
    assert.deepEqual(out.results, []);
    assert.equal(steps.called("removeFiles"), 1, "the agent is still removed");
  });

  it("target machine - a component that fails stops the installs, logs are collected, the run fails", async () => {
    const steps = new FakeSteps({ install: [stepError("INSTALL_EXIT_CODE", false)] });
    const run = start(steps);
    const out = outcomeOf(await settle(run.actor));
    assert.equal(out.status, "failed");
    assert.deepEqual(out.status === "failed" && out.failure, {
      code: "INSTALL_EXIT_CODE",
      retryable: false,
      message: "INSTALL_EXIT_CODE from a fake",
      step: "install",
      kind: "component",
      attempts: 1,
      componentId: "fw",
      at: 1_000_000,
    });
    assert.equal(steps.called("install"), 1, "nic is not installed after fw failed");
    assert.equal(steps.called("logs"), 1);
    assert.deepEqual(out.results, [
      { id: "fw", version: "2.1.0", action: "install", status: "failed", rebootNeeded: false },
    ]);
    assert.deepEqual(run.paths.slice(-3), [
      "shuttingDown.releaseLeases.running",
      "shuttingDown.disconnect.running",
      "failed",
    ]);
  });

  it("target machine - a connection failure is told apart from a component failure", async () => {
    const steps = new FakeSteps({ connect: [stepError("HOST_KEY_MISMATCH", false)] });
    const out = outcomeOf(await settle(start(steps).actor));
    assert.equal(out.status === "failed" && out.failure.kind, "connection");
    assert.equal(out.status === "failed" && out.failure.componentId, undefined);
    assert.deepEqual(steps.steps(), ["connect", "disconnect"]);
  });

  it("target machine - a version the inventory cannot compare fails the inventory step", async () => {
    const steps = new FakeSteps({ inventory: [{ output: { installed: { fw: "2.0 beta" } } }] });
    const out = outcomeOf(await settle(start(steps).actor));
    assert.equal(out.status, "failed");
    const failure = out.status === "failed" ? out.failure : null;
    assert.equal(failure?.step, "inventory");
    assert.equal(failure?.code, "INVALID_VERSION");
    assert.match(failure?.message ?? "", /component fw: version "2.0 beta" may hold only/);
    assert.equal(steps.called("stage"), 0);
  });

  it("target machine - an error without a code is unexpected and not retried", async () => {
    const steps = new FakeSteps({ hello: [{ throws: new TypeError("boom") }] });
    const out = outcomeOf(await settle(start(steps).actor));
    assert.equal(out.status === "failed" && out.failure.code, "UNEXPECTED_ERROR");
    assert.equal(out.status === "failed" && out.failure.message, "boom");
    assert.equal(steps.called("hello"), 1);
  });

  it("target machine - a non-retryable error is not retried though attempts are left", async () => {
    const steps = new FakeSteps({ allocatePorts: [stepError("NO_PORTS", false)] });
    const out = outcomeOf(await settle(start(steps).actor));
    assert.equal(steps.called("allocatePorts"), 1);
    assert.equal(out.status === "failed" && out.failure.kind, "ports");
  });

  it("target machine - cleanup steps all run when some fail; failures are secondary, leftovers named", async () => {
    const steps = new FakeSteps()
      .setAlways("stopAgent", stepError("AGENT_STOP_FAILED", false))
      .setAlways("closeFirewall", stepError("NFT_FAILED", false));
    const out = outcomeOf(await settle(start(steps).actor));
    assert.deepEqual(steps.steps().slice(-5), [...CLEANUP_STEPS]);
    assert.equal(out.status, "succeeded");
    assert.deepEqual(
      out.secondaryFailures.map((f) => [f.step, f.code, f.kind]),
      [
        ["stopAgent", "AGENT_STOP_FAILED", "cleanup"],
        ["closeFirewall", "NFT_FAILED", "cleanup"],
      ],
    );
    assert.deepEqual(out.leftovers, ["agent", "firewall"]);
  });

  it("target machine - logs failing after a failure keep the first failure", async () => {
    const steps = new FakeSteps({
      stage: [stepError("DISK_FULL", false)],
      logs: [stepError("LOGS_GONE", false)],
    });
    const out = outcomeOf(await settle(start(steps).actor));
    assert.equal(out.status === "failed" && out.failure.code, "DISK_FULL");
    assert.deepEqual(
      out.secondaryFailures.map((f) => f.code),
      ["LOGS_GONE"],
    );
  });

  it("target machine - a step with no actor provided fails with STEP_NOT_PROVIDED", async () => {
    const actor = createActor(targetMachine, { input: input() });
    actor.start();
    actor.send({ type: "START" });
    const out = outcomeOf(await settle(actor));
    assert.equal(out.status === "failed" && out.failure.code, "STEP_NOT_PROVIDED");
    assert.match(out.status === "failed" ? out.failure.message : "", /no actor provided for step connect/);
  });

  it("target machine - a policy out of range fails the start, naming the option", () => {
    const actor = createActor(targetMachine, {
      input: input({ policy: { steps: { install: { maxAttempts: 0 } } } }),
    });
    let error: unknown;
    actor.subscribe({ error: (e) => (error = e) });
    actor.start();
    assert.equal(actor.getSnapshot().status, "error");
    assert.equal((error as { code?: string }).code, "INVALID_POLICY");
    assert.match(
      (error as Error).message,
      /policy steps\.install\.maxAttempts must be an integer from 1, got 0/,
    );
  });

  it("target machine - a timer event for a time that is not armed is ignored", async () => {
    const steps = new FakeSteps({ connect: ["hang"] });
    const run = start(steps);
    const before = await settle(run.actor);
    run.actor.send({ type: "target.timer", at: 5 });
    assert.equal(pathOf(run.actor.getSnapshot()), "connecting.running");
    assert.equal(run.actor.getSnapshot().context.deadlineAt, before.context.deadlineAt);
    run.actor.stop();
  });

  it("target machine - stays queued until START", async () => {
    const run = start(new FakeSteps(), { send: false });
    assert.equal(pathOf(await settle(run.actor)), "queued");
    run.actor.send({ type: "START" });
    assert.equal(outcomeOf(await settle(run.actor)).status, "succeeded");
  });
});
