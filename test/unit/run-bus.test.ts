import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { createActor } from "xstate";
import { provideSteps, type StepImpls } from "../../actors/target/steps.ts";
import { decodeJson } from "../../bus/bus.ts";
import { openMemoryBus } from "../../bus/memory.ts";
import { decode } from "../../bus/subjects.ts";
import {
  EVENT_STREAM,
  RunFinished,
  RunStarted,
  schemaFor,
  TargetLogLine,
  TargetStateChanged,
} from "../../run/events/subjects.ts";
import { runJob } from "../../run/run-job.ts";
import {
  EMBEDDED_SNAPSHOT_RUNS,
  pruneSnapshots,
  SNAPSHOT_BUCKET,
  snapshotKey,
} from "../../run/snapshot-store.ts";
import { newRunId } from "../../run/paths.ts";
import type { RunContext } from "../../run/types.ts";
import { fakeSteps, gate, makeJob, ManualClock, tempDir } from "../support/run-fakes.ts";

let work: { dir: string; cleanup: () => Promise<void> };
before(async () => (work = await tempDir()));
after(() => work.cleanup());

const DEPLOY = { inventoryOnly: false, rewrite: false, downgrade: false };

/** Waits, without a timer, until `check` holds; gives up after a bounded number of turns. */
async function eventually(what: string, check: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 5000; i++) {
    if (await check()) return;
    await new Promise((r) => setImmediate(r));
  }
  assert.fail(`never: ${what}`);
}

function pathOf(value: unknown): string {
  const parts: string[] = [];
  let v = value;
  while (typeof v === "object" && v !== null) {
    const [k, next] = Object.entries(v)[0] as [string, unknown];
    parts.push(k);
    v = next;
  }
  parts.push(String(v));
  return parts.join(".");
}

describe("run bus", () => {
  it("run bus - every state change, log line and the run's start and end are on the bus, valid", async () => {
    const dir = join(work.dir, "events");
    const { job } = await makeJob(dir, ["web-1.example", "t2"]);
    const seen: { subject: string; data: Uint8Array }[] = [];
    const fake = fakeSteps(
      { t2: { fail: { connect: { code: "EHOSTUNREACH", retryable: false, message: "no route" } } } },
      new ManualClock(),
      async (ctx: RunContext) => {
        await ctx.bus.subscribe("sumac.v1.>", (m) => seen.push(m));
      },
    );
    const handle = runJob({ job, flags: DEPLOY, steps: fake.factory, stateDir: join(dir, "state") });
    const result = await handle.result;
    const run = handle.runId;
    const events = seen
      .filter((m) => !m.subject.startsWith("sumac.v1.lease."))
      .map((m) => ({
        subject: m.subject,
        value: decode(schemaFor(m.subject)!, m.data) as Record<string, unknown>,
      }));
    assert.equal(events[0]?.subject, `sumac.v1.run.${run}.started`);
    assert.deepEqual(decode(RunStarted, seen.find((m) => m.subject.endsWith(".started"))!.data), {
      run,
      at: result.report.startedAt,
      job: "test-job",
      targets: 2,
      inventoryOnly: false,
    });
    assert.equal(events.at(-1)?.subject, `sumac.v1.run.${run}.finished`);
    const finished = decode(RunFinished, seen.find((m) => m.subject.endsWith(".finished"))!.data);
    assert.equal(finished.status, "failed");
    assert.deepEqual(finished.targets, { succeeded: 1, failed: 1, cancelled: 0 });

    // web-1.example's subject token is encoded; its payloads carry the id as it is.
    const states = seen
      .filter((m) => m.subject === `sumac.v1.target.${run}.web-1_2Eexample.state`)
      .map((m) => decode(TargetStateChanged, m.data));
    assert.ok(states.every((s) => s.target === "web-1.example" && s.run === run));
    assert.deepEqual(
      states.map((s) => `${s.from}>${s.to}${s.step ? `:${s.step}` : ""}`),
      [
        "queued>connecting:connect",
        "connecting>pushingAgent:pushAgent",
        "pushingAgent>allocatingPorts:allocatePorts",
        "allocatingPorts>startingAgent:startAgent",
        "startingAgent>exchanging:hello",
        "exchanging>exchanging:inventory",
        "exchanging>exchanging:stage",
        "exchanging>exchanging:install",
        "exchanging>exchanging:logs",
        "exchanging>shuttingDown:stopAgent",
        "shuttingDown>shuttingDown:removeFiles",
        "shuttingDown>shuttingDown:closeFirewall",
        "shuttingDown>shuttingDown:releaseLeases",
        "shuttingDown>shuttingDown:disconnect",
        "shuttingDown>succeeded",
      ],
    );
    const logs = seen
      .filter((m) => m.subject === `sumac.v1.target.${run}.web-1_2Eexample.log`)
      .map((m) => decode(TargetLogLine, m.data));
    assert.deepEqual(
      logs.map(({ level, source, step, message }) => ({ level, source, step, message })),
      [{ level: "info", source: "agent", step: "install", message: "installing app" }],
    );
    // The failure is on the change it caused, with its step and code.
    const t2 = seen
      .filter((m) => m.subject === `sumac.v1.target.${run}.t2.state`)
      .map((m) => decode(TargetStateChanged, m.data));
    const toShutdown = t2.find((s) => s.to === "shuttingDown");
    assert.deepEqual(toShutdown?.error, {
      step: "connect",
      code: "EHOSTUNREACH",
      message: "no route",
      retryable: false,
    });
    assert.equal(t2.at(-1)?.to, "failed");
  });

  it("run bus - each machine's snapshot is in the KV while it runs and at its end, and restores", async () => {
    const dir = join(work.dir, "kv");
    const stateDir = join(dir, "state");
    const { job } = await makeJob(dir, ["t1"]);
    const install = gate();
    let context: RunContext | undefined;
    const fake = fakeSteps({ t1: { gates: { install } } }, new ManualClock(), (ctx) => {
      context = ctx;
    });
    const handle = runJob({ job, flags: DEPLOY, steps: fake.factory, stateDir });
    await install.reached;
    const kv = await context!.bus.kv(SNAPSHOT_BUCKET);
    const key = snapshotKey(handle.runId, "t1");
    const snapshotNow = async () => {
      const entry = await kv.get(key);
      return entry ? (decodeJson(entry.value) as { value: unknown; status: string }) : undefined;
    };
    await eventually(
      "the install's snapshot in the KV",
      async () => pathOf((await snapshotNow())?.value) === "exchanging.install.running",
    );
    install.open();
    await handle.result;

    // The bus is closed with the run; its state directory has the last snapshot of the machine.
    const bus = await openMemoryBus({ stateDir });
    try {
      const entry = await (await bus.kv(SNAPSHOT_BUCKET)).get(key);
      assert.ok(entry, "snapshot kept");
      const persisted = decodeJson(entry.value) as {
        status: string;
        value: unknown;
        context: { job: { target: { id: string } } };
      };
      assert.equal(persisted.status, "done");
      assert.equal(persisted.value, "succeeded");
      assert.equal(persisted.context.job.target.id, "t1");
      // Final: nothing runs on restore, so no steps are needed.
      const restored = createActor(provideSteps({} as unknown as StepImpls), {
        snapshot: persisted as never,
        // xstate's types ask for the input even when restoring; the snapshot's context wins.
        input: persisted.context as never,
      });
      restored.start();
      assert.equal(restored.getSnapshot().status, "done");
      assert.equal(restored.getSnapshot().output?.status, "succeeded");
      restored.stop();
      // The run's events were kept in the state directory's stream too.
      const stream = await bus.stream(EVENT_STREAM.name, { subjects: EVENT_STREAM.subjects });
      const subjects: string[] = [];
      for await (const e of stream.read()) subjects.push(e.subject);
      assert.ok(subjects.includes(`sumac.v1.run.${handle.runId}.finished`), subjects.join("\n"));
      assert.ok(subjects.includes(`sumac.v1.target.${handle.runId}.t1.state`));
    } finally {
      await bus.close();
    }
  });
  it("run bus - the embedded state keeps the snapshots of the newest runs only", async () => {
    const bus = await openMemoryBus();
    try {
      const kv = await bus.kv("prune-test");
      const runs = Array.from({ length: 5 }, (_, i) => newRunId(Date.UTC(2026, 0, 1, 0, 0, i)));
      // Written out of order: what counts is the run id's time, not when its keys were written.
      for (const run of [...runs].reverse())
        for (const t of ["a", "b.c"]) await kv.put(snapshotKey(run, t), new Uint8Array([1]));
      assert.equal(await pruneSnapshots(kv, 3), 2);
      const left = await kv.keys();
      assert.equal(left.length, 6);
      for (const run of runs.slice(2)) assert.ok(left.includes(snapshotKey(run, "b.c")), run);
      for (const run of runs.slice(0, 2)) assert.ok(!left.some((k) => k.startsWith(`${run}.`)), run);
      assert.equal(await pruneSnapshots(kv, 3), 0, "nothing more to prune");
    } finally {
      await bus.close();
    }
  });

  it("run bus - a run on the embedded default prunes old runs' snapshots before it starts", async () => {
    const dir = join(work.dir, "prune");
    const { job } = await makeJob(dir, ["t1"]);
    const stateDir = join(dir, "state");
    const old = Array.from({ length: EMBEDDED_SNAPSHOT_RUNS + 3 }, (_, i) =>
      newRunId(Date.UTC(2025, 0, 1, 0, 0, i)),
    );
    const before = await openMemoryBus({ stateDir });
    const kv = await before.kv(SNAPSHOT_BUCKET);
    for (const run of old) await kv.put(snapshotKey(run, "t1"), new Uint8Array([1]));
    await before.close();
    const handle = runJob({ job, flags: DEPLOY, steps: fakeSteps({}, new ManualClock()).factory, stateDir });
    await handle.result;
    const after = await openMemoryBus({ stateDir });
    try {
      const runs = new Set((await (await after.kv(SNAPSHOT_BUCKET)).keys()).map((k) => k.split(".")[0]));
      assert.equal(runs.size, EMBEDDED_SNAPSHOT_RUNS + 1, "the newest 20 old runs and this one");
      assert.ok(runs.has(handle.runId));
      for (const run of old.slice(0, 3)) assert.ok(!runs.has(run), run);
    } finally {
      await after.close();
    }
  });
});
