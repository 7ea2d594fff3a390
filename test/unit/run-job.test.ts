import assert from "node:assert/strict";
import { readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { runJob } from "../../run/run-job.ts";
import type { RunReport } from "../../run/report-types.ts";
import type { RunEvent, RunFlags } from "../../run/types.ts";
import {
  fakeSteps,
  makeJob,
  ManualClock,
  STEP_MS,
  tempDir,
  type TargetScript,
} from "../support/run-fakes.ts";

const DEPLOY: RunFlags = { inventoryOnly: false, rewrite: false, downgrade: false };

let work: { dir: string; cleanup: () => Promise<void> };
let n = 0;
before(async () => (work = await tempDir()));
after(() => work.cleanup());

/** Runs a job of `ids` with the scripts on an embedded bus in a fresh state directory. */
async function run(
  ids: string[],
  scripts: Record<string, TargetScript> = {},
  options: { components?: string[]; concurrency?: number; flags?: Partial<RunFlags> } = {},
) {
  const dir = join(work.dir, `run${n++}`);
  const { job } = await makeJob(dir, ids, options.components, options.concurrency);
  const clock = new ManualClock();
  const fake = fakeSteps(scripts, clock);
  const events: RunEvent[] = [];
  const stateDir = join(dir, "state");
  const handle = runJob({
    job,
    flags: { ...DEPLOY, ...options.flags },
    steps: fake.factory,
    stateDir,
    now: clock.now,
    onEvent: (e) => events.push(e),
  });
  const result = await handle.result;
  return { ...result, handle, events, record: fake.record, stateDir };
}

const fail = (code: string, retryable = false) => ({ code, retryable, message: `${code} from the fake` });

describe("run job", () => {
  it("run job - every target succeeds: exit 0, report with steps, durations, components, ports and logs", async () => {
    // One at a time: each step's time on the shared clock is its own.
    const r = await run(["t1", "t2"], { t2: { installed: { app: "1.0" } } }, { concurrency: 1 });
    assert.equal(r.exitCode, 0);
    assert.equal(r.reportPath, join(r.handle.runDir, "report.json"));
    const onDisk = JSON.parse(await readFile(r.reportPath, "utf8")) as RunReport;
    assert.deepEqual(onDisk, JSON.parse(JSON.stringify(r.report)));
    assert.equal((await stat(r.reportPath)).mode & 0o777, 0o600);
    assert.equal((await stat(r.handle.runDir)).mode & 0o777, 0o700);
    assert.equal(onDisk.runId, r.handle.runId);
    assert.equal(onDisk.status, "succeeded");
    assert.equal(onDisk.bus, "embedded");
    assert.deepEqual(onDisk.counts, { total: 2, succeeded: 2, failed: 0, cancelled: 0 });
    const [t1, t2] = onDisk.targets;
    assert.equal(t1?.id, "t1");
    assert.equal(t1?.exitCode, 0);
    // Each step's duration is the time it took on the clock the fake steps move.
    const steps = t1?.steps.map((s) => [s.step, s.component, s.durationMs, s.status, s.attempts]);
    assert.deepEqual(steps, [
      ["connect", undefined, STEP_MS.connect, "ok", 1],
      ["pushAgent", undefined, STEP_MS.pushAgent, "ok", 1],
      ["allocatePorts", undefined, STEP_MS.allocatePorts, "ok", 1],
      ["startAgent", undefined, STEP_MS.startAgent, "ok", 1],
      ["hello", undefined, STEP_MS.hello, "ok", 1],
      ["inventory", undefined, STEP_MS.inventory, "ok", 1],
      ["stage", undefined, STEP_MS.stage, "ok", 1],
      ["install", "app", STEP_MS.install, "ok", 1],
      ["logs", undefined, STEP_MS.logs, "ok", 1],
      ["stopAgent", undefined, STEP_MS.stopAgent, "ok", 1],
      ["removeFiles", undefined, STEP_MS.removeFiles, "ok", 1],
      ["closeFirewall", undefined, STEP_MS.closeFirewall, "ok", 1],
      ["releaseLeases", undefined, STEP_MS.releaseLeases, "ok", 1],
      ["disconnect", undefined, STEP_MS.disconnect, "ok", 1],
    ]);
    assert.deepEqual(t1?.components, [
      {
        id: "app",
        version: "2.0",
        before: null,
        after: "2.0",
        action: "install",
        reason: "not-installed",
        result: "installed",
        rebootNeeded: false,
      },
    ]);
    assert.equal(t2?.components[0]?.before, "1.0");
    assert.equal(t2?.components[0]?.action, "update");
    assert.equal(t2?.components[0]?.after, "2.0");
    // Ports from the leases; the agent's where it listened (the fake moves t2's to the next port).
    assert.deepEqual(t1?.ports, {
      workstationPort: 60000,
      callbackPort: 61000,
      agentPort: 62286,
      leasedAgentPort: 62286,
    });
    assert.deepEqual(t2?.ports, {
      workstationPort: 60001,
      callbackPort: 61001,
      agentPort: 62287,
      leasedAgentPort: 62286,
    });
    const logDir = join(r.handle.runDir, "targets", "t1", "logs");
    assert.equal(t1?.logDir, logDir);
    assert.deepEqual(t1?.logs, { location: logDir, files: 1, bytes: "log of t1\n".length });
    assert.equal(await readFile(join(logDir, "agent.log"), "utf8"), "log of t1\n");
    assert.equal((await stat(logDir)).mode & 0o777, 0o700);
    // The clock moves only in steps: a target's duration is the sum of its steps'.
    assert.equal(
      t1?.durationMs,
      Object.values(STEP_MS).reduce((a, b) => a + b, 0),
    );
    assert.equal(onDisk.durationMs, (t1?.durationMs ?? 0) + (t2?.durationMs ?? 0));
    assert.ok(r.record.closed, "the steps factory's close() was called");
  });

  it("run job - at most `concurrency` targets at once, and the limit is reached", async () => {
    const ids = ["a", "b", "c", "d", "e", "f", "g"];
    const r = await run(ids, {}, { concurrency: 3 });
    assert.equal(r.exitCode, 0);
    assert.equal(r.record.maxActive, 3);
    assert.equal(r.report.counts.succeeded, ids.length);
  });

  it("run job - one target failing does not stop the others; an unreachable target is 255", async () => {
    const r = await run(
      ["t1", "t2", "t3"],
      { t2: { fail: { connect: fail("ECONNREFUSED") } } },
      { concurrency: 1 },
    );
    assert.equal(r.exitCode, 255);
    const byId = new Map(r.report.targets.map((t) => [t.id, t]));
    assert.equal(byId.get("t1")?.status, "succeeded");
    assert.equal(byId.get("t3")?.status, "succeeded");
    const t2 = byId.get("t2");
    assert.equal(t2?.status, "failed");
    assert.equal(t2?.exitCode, 255);
    assert.equal(t2?.failure?.step, "connect");
    assert.equal(t2?.failure?.code, "ECONNREFUSED");
    assert.equal(t2?.failure?.kind, "connection");
    assert.deepEqual(t2?.components, [], "never inventoried");
    assert.equal(t2?.inventoried, false);
    assert.deepEqual(
      t2?.steps.map((s) => `${s.step}:${s.status}`),
      ["connect:failed", "disconnect:ok"],
    );
    assert.ok(r.record.calls.includes("t3:install"), "t3 ran after t2 failed");
    assert.equal(r.report.status, "failed");
  });

  it("run job - a failed install is 253 with its component; the logs are still collected", async () => {
    const r = await run(["t1", "t2"], { t1: { fail: { install: fail("INSTALL_FAILED") } } });
    assert.equal(r.exitCode, 253);
    const t1 = r.report.targets[0]!;
    assert.equal(t1.exitCode, 253);
    assert.equal(t1.failure?.component, "app");
    assert.equal(t1.components[0]?.result, "failed");
    assert.equal(t1.components[0]?.after, null);
    assert.equal(t1.logs?.files, 1);
    assert.equal(t1.steps.find((s) => s.step === "install")?.status, "failed");
    assert.equal(r.report.targets[1]!.exitCode, 0);
  });

  it("run job - exit codes across targets: 255 over 253 over 1 over 0 over 3", async () => {
    const current = { installed: { app: "2.0" } };
    const cases: [Record<string, TargetScript>, number][] = [
      [{ a: current, b: current }, 3],
      [{ a: current, b: {} }, 0],
      [{ a: current, b: {}, c: { rebootNeeded: true } }, 1],
      [{ a: { rebootNeeded: true }, b: { fail: { install: fail("BAD") } } }, 253],
      [{ a: { fail: { install: fail("BAD") } }, b: { fail: { hello: fail("TLS") } }, c: current }, 255],
    ];
    for (const [scripts, code] of cases) {
      const r = await run(Object.keys(scripts), scripts);
      assert.equal(r.exitCode, code, JSON.stringify(scripts));
      assert.equal(r.report.exitCode, code);
    }
  });

  it("run job - a current component is skipped (3); with rewrite it is installed again (0)", async () => {
    const scripts = { t1: { installed: { app: "2.0" } } };
    const plain = await run(["t1"], scripts);
    assert.equal(plain.exitCode, 3);
    assert.equal(plain.report.targets[0]!.components[0]?.result, "skipped");
    assert.ok(!plain.record.calls.includes("t1:install"));
    const rewrite = await run(["t1"], scripts, { flags: { rewrite: true } });
    assert.equal(rewrite.exitCode, 0);
    assert.equal(rewrite.report.targets[0]!.components[0]?.action, "rewrite");
    assert.equal(rewrite.report.flags.rewrite, true);
  });

  it("run job - a newer installed version is kept (3); with downgrade it is replaced", async () => {
    const scripts = { t1: { installed: { app: "3.0" } } };
    assert.equal((await run(["t1"], scripts)).exitCode, 3);
    const down = await run(["t1"], scripts, { flags: { downgrade: true } });
    assert.equal(down.exitCode, 0);
    assert.deepEqual(
      [down.report.targets[0]!.components[0]?.action, down.report.targets[0]!.components[0]?.after],
      ["downgrade", "2.0"],
    );
  });

  it("run job - inventory (dry run) stages and installs nothing and reports what would be installed", async () => {
    const r = await run(
      ["t1", "t2"],
      { t2: { installed: { app: "2.0", db: "1.0" } } },
      {
        components: ["app@2.0", "db@1.5"],
        flags: { inventoryOnly: true },
      },
    );
    assert.equal(r.exitCode, 0, "something would be installed");
    assert.ok(
      !r.record.calls.some((c) => c.endsWith(":stage") || c.endsWith(":install")),
      r.record.calls.join(),
    );
    assert.equal(r.report.command, "inventory");
    const t2 = r.report.targets[1]!;
    assert.deepEqual(
      t2.components.map((c) => [c.id, c.before, c.after, c.action, c.result]),
      [
        ["app", "2.0", "2.0", "skip", "skipped"],
        ["db", "1.0", "1.0", "update", "planned"],
      ],
    );
    const allCurrent = await run(
      ["t1"],
      { t1: { installed: { app: "2.0" } } },
      { flags: { inventoryOnly: true } },
    );
    assert.equal(allCurrent.exitCode, 3, "nothing would be installed");
  });

  it("run job - a retried step keeps one record with its attempts", async () => {
    const clock = new ManualClock();
    let tries = 0;
    const dir = join(work.dir, `retry${n++}`);
    const { job } = await makeJob(dir, ["t1"]);
    const fake = fakeSteps({}, clock);
    const factory: typeof fake.factory = async (ctx) => {
      const made = await fake.factory(ctx);
      const steps = {
        ...made.steps,
        hello: (input: Parameters<typeof made.steps.hello>[0], signal: AbortSignal) =>
          ++tries < 2
            ? Promise.reject(Object.assign(new Error("reset"), { code: "ECONNRESET", retryable: true }))
            : made.steps.hello(input, signal),
      };
      return { steps, close: () => made.close() };
    };
    const fastRetry = {
      ...job,
      options: { ...job.options, policy: { all: { backoff: { initialMs: 1, jitter: 0 } } } },
    };
    const events: RunEvent[] = [];
    const r = await runJob({
      job: fastRetry,
      flags: DEPLOY,
      steps: factory,
      stateDir: join(dir, "state"),
      now: clock.now,
      onEvent: (e) => events.push(e),
    }).result;
    assert.equal(r.exitCode, 0);
    const hello = r.report.targets[0]!.steps.filter((s) => s.step === "hello");
    assert.equal(hello.length, 1);
    assert.equal(hello[0]?.attempts, 2);
    const retry = events.find((e) => e.type === "target.state" && e.retrying === true);
    assert.ok(retry && retry.type === "target.state");
    assert.equal(retry.error?.code, "ECONNRESET");
    assert.equal(retry.error?.retryable, true);
  });

  it("run job - a machine that refuses its input fails its target (internal, 255) and the run still ends", async () => {
    const dir = join(work.dir, `broken${n++}`);
    const { job } = await makeJob(dir, ["t1", "t2"]);
    // Out of range: the job loader would refuse it; built in code, each machine refuses it.
    const bad = { ...job, options: { ...job.options, policy: { all: { maxAttempts: 0 } } } };
    const fake = fakeSteps({}, new ManualClock());
    const r = await runJob({ job: bad, flags: DEPLOY, steps: fake.factory, stateDir: join(dir, "state") })
      .result;
    assert.equal(r.exitCode, 255);
    for (const t of r.report.targets) {
      assert.equal(t.status, "failed");
      assert.equal(t.failure?.kind, "internal");
      assert.equal(t.failure?.step, null);
      assert.equal(t.failure?.code, "INVALID_POLICY");
      assert.match(t.failure?.message ?? "", /maxAttempts/);
    }
    assert.deepEqual(fake.record.calls, []);
    assert.ok(fake.record.closed);
  });
});
