import assert from "node:assert/strict";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { main, type CliIo } from "../../cli/main.ts";
import type { RunReport } from "../../run/report-types.ts";
import type { StepsFactory } from "../../run/types.ts";
import { fakeSteps, gate, makeJob, ManualClock, tempDir, type TargetScript } from "../support/run-fakes.ts";

let work: { dir: string; cleanup: () => Promise<void> };
let n = 0;
before(async () => (work = await tempDir()));
after(() => work.cleanup());

interface Cli {
  code: Promise<number>;
  out: () => string;
  err: () => string;
  /** Sends what Ctrl-C sends. */
  interrupt: () => void;
  stateDir: string;
}

function cli(
  argv: string[],
  steps: StepsFactory | undefined,
  io: Partial<CliIo> = {},
  stateDir?: string,
): Cli {
  let out = "";
  let err = "";
  let handler: (() => void) | undefined;
  const dir = stateDir ?? join(work.dir, `state${n++}`);
  const code = main(
    [...argv, "--state-dir", dir],
    {
      out: (s) => (out += s),
      err: (s) => (err += s),
      onInterrupt: (h) => {
        handler = h;
        return () => (handler = undefined);
      },
      ...io,
    },
    steps,
  );
  return {
    code,
    out: () => out,
    err: () => err,
    interrupt: () => {
      assert.ok(handler, "no interrupt handler installed while the run lasts");
      handler();
    },
    stateDir: dir,
  };
}

async function jobFile(ids: string[], concurrency = 32): Promise<string> {
  return (await makeJob(join(work.dir, `job${n++}`), ids, ["app@2.0"], concurrency)).file;
}

async function report(out: string): Promise<RunReport> {
  const path = /^report: (.+)$/m.exec(out)?.[1];
  assert.ok(path, `no report path in:\n${out}`);
  return JSON.parse(await readFile(path, "utf8")) as RunReport;
}

function steps(scripts: Record<string, TargetScript> = {}) {
  return fakeSteps(scripts, new ManualClock());
}

describe("cli run", () => {
  it("cli run - Ctrl-C once: the install in progress finishes, cleanup runs, queued targets never start, exit 130", async () => {
    const install = gate();
    const fake = steps({ t1: { gates: { install } } });
    const run = cli(["deploy", await jobFile(["t1", "t2"], 1)], fake.factory);
    await install.reached;
    run.interrupt();
    assert.match(
      run.out(),
      /interrupt: installs in progress finish, then every target is cleaned up \(press Ctrl-C again/,
    );
    install.open();
    assert.equal(await run.code, 130, run.out() + run.err());
    assert.deepEqual(fake.record.aborted, [], "nothing was aborted");
    const calls = fake.record.calls;
    assert.deepEqual(calls.slice(calls.indexOf("t1:install")), [
      "t1:install",
      "t1:stopAgent",
      "t1:removeFiles",
      "t1:closeFirewall",
      "t1:releaseLeases",
      "t1:disconnect",
    ]);
    assert.ok(!calls.some((c) => c.startsWith("t2:")), `t2 never started: ${calls.join()}`);
    const r = await report(run.out());
    assert.equal(r.interrupted, "graceful");
    assert.equal(r.status, "cancelled");
    assert.equal(r.exitCode, 130);
    const [t1, t2] = r.targets;
    assert.equal(t1?.status, "cancelled");
    assert.equal(t1?.components[0]?.result, "installed", "the install that was running finished");
    assert.equal(t1?.steps.find((s) => s.step === "install")?.status, "ok");
    assert.equal(
      t1?.steps.find((s) => s.step === "logs"),
      undefined,
      "no more exchange after the cancel",
    );
    assert.deepEqual([t2?.status, t2?.startedAt, t2?.steps], ["cancelled", null, []]);
  });

  it("cli run - Ctrl-C twice: the install is stopped at once, cleanup still runs, exit 130", async () => {
    const fake = steps({ t1: { hang: "install" } });
    const install = gate();
    // Tell the test when the install started: the hanging step passes no gate, so watch the calls.
    const factory: StepsFactory = async (ctx) => {
      const made = await fake.factory(ctx);
      const inner = made.steps.install;
      return { ...made, steps: { ...made.steps, install: (i, s) => (install.arrive(), inner(i, s)) } };
    };
    const run = cli(["deploy", await jobFile(["t1"])], factory);
    await install.reached;
    run.interrupt();
    run.interrupt();
    assert.match(run.out(), /second interrupt: stopping installs now; cleanup still runs on every target/);
    run.interrupt();
    assert.match(run.out(), /cleanup is running on every target/);
    assert.equal(await run.code, 130);
    assert.deepEqual(fake.record.aborted, ["t1:install"]);
    const calls = fake.record.calls;
    assert.deepEqual(calls.slice(calls.indexOf("t1:install") + 1), [
      "t1:stopAgent",
      "t1:removeFiles",
      "t1:closeFirewall",
      "t1:releaseLeases",
      "t1:disconnect",
    ]);
    const r = await report(run.out());
    assert.equal(r.interrupted, "force");
    assert.equal(r.targets[0]?.steps.find((s) => s.step === "install")?.status, "aborted");
    assert.deepEqual(r.targets[0]?.leftovers, []);
  });

  it("cli run - not a terminal: one line per state change, progress and log lines, then the summary", async () => {
    const fake = steps({
      t2: { fail: { install: { code: "INSTALL_FAILED", retryable: false, message: "exit 7" } } },
    });
    const run = cli(["deploy", await jobFile(["t1", "t2"], 1)], fake.factory);
    assert.equal(await run.code, 253);
    const out = run.out();
    const line = (text: string) => new RegExp(`^\\[\\s*\\d+\\.\\ds\\] ${text}$`, "m");
    assert.match(out, line(`deploy test-job run \\S+: 2 target\\(s\\), embedded bus, run directory \\S+`));
    assert.match(out, line("firewall: none \\(fake steps\\)"));
    assert.match(out, line("t1\\s+connecting \\(connect\\)"));
    assert.match(out, line("t1\\s+exchanging: install app"));
    assert.match(out, line("t1\\s+install app 50%"));
    assert.match(out, line("t1\\s+agent info: installing app"));
    assert.match(out, line("t1\\s+succeeded"));
    assert.match(out, line("t2\\s+exchanging: logs after install app: INSTALL_FAILED: exit 7"));
    assert.match(out, line("t2\\s+failed: install app: INSTALL_FAILED: exit 7"));
    assert.match(out, /^TARGET\s+STATUS\s+EXIT\s+COMPONENTS\s+DURATION\s+FAILURE$/m);
    assert.match(out, /^t1\s+succeeded\s+0\s+1 installed\s+\S+$/m);
    assert.match(out, /^t2\s+failed\s+253\s+1 failed\s+\S+\s+install app: INSTALL_FAILED: exit 7$/m);
    assert.match(
      out,
      /^deploy \S+: 1 succeeded, 1 failed, 0 cancelled of 2 in \S+; exit 253 \(a component failed\)$/m,
    );
    assert.equal((await report(out)).exitCode, 253);
    assert.equal(run.err(), "");
  });

  it("cli run - --json: stdout is one JSON event per line, from run.started to run.finished; the summary on stderr", async () => {
    const run = cli(["deploy", await jobFile(["t1"]), "--json"], steps().factory);
    assert.equal(await run.code, 0);
    const lines = run.out().trimEnd().split("\n");
    const events = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.equal(events[0]?.type, "run.started");
    const last = events.at(-1)!;
    assert.equal(last.type, "run.finished");
    assert.equal(last.exitCode, 0);
    assert.equal(typeof last.report, "string");
    const types = new Set(events.map((e) => e.type));
    for (const t of ["target.state", "target.log", "target.progress", "target.done", "run.note"])
      assert.ok(types.has(t), t);
    assert.deepEqual(
      events.filter((e) => e.type === "run.note").map((e) => e.message),
      ["firewall: none (fake steps)"],
    );
    const install = events.find((e) => e.type === "target.state" && e.step === "install");
    assert.deepEqual(
      {
        target: install?.target,
        from: install?.from,
        to: install?.to,
        component: install?.component,
        attempt: install?.attempt,
      },
      { target: "t1", from: "exchanging", to: "exchanging", component: "app", attempt: 1 },
    );
    assert.match(run.err(), /^TARGET\s+STATUS/m);
    assert.match(run.err(), new RegExp(`^report: ${String(last.report)}$`, "m"));
  });

  it("cli run - a terminal: the live view redraws one row per target in place, then the summary", async () => {
    const ids = ["t1", "t2", "t3", "t4", "t5", "t6", "t7", "t8"];
    const run = cli(["deploy", await jobFile(ids, 2)], steps().factory, {
      isTTY: true,
      columns: 100,
      rows: 8,
    });
    assert.equal(await run.code, 0);
    const out = run.out();
    assert.match(out, /\x1b\[\d+F\x1b\[J/, "moves up and clears to redraw");
    assert.match(out, /\x1b\[Jsumac: run \S+ on the embedded bus; run directory \S+\/runs\/\S+\n/);
    assert.match(out, /^sumac deploy test-job · \S+ · \d+ running, \d+ queued, /m);
    assert.match(out, /^ {2}… \d+ more target\(s\) not shown$/m, "8 targets do not fit in 8 lines");
    // The last view drawn, before the summary: every target succeeded.
    const lastView = out.slice(out.lastIndexOf("\x1b[J"), out.indexOf("TARGET"));
    assert.match(lastView, /0 running, 0 queued, 8 succeeded, 0 failed/);
    // View lines are clipped to the width, so that redrawing in place never meets a wrapped line.
    const views = out.slice(0, out.indexOf("\nTARGET"));
    for (const l of views.split("\n").filter((l) => !l.includes("run directory")))
      assert.ok(l.replace(/\x1b\[\d*[A-Za-z]/g, "").length <= 99, `too wide: ${l}`);
    assert.match(out, /^t8\s+succeeded\s+0/m);
  });

  it("cli run - --retry last runs only the targets that did not succeed in the job's newest run", async () => {
    const stateDir = join(work.dir, `state${n++}`);
    const job = await jobFile(["t1", "t2", "t3"]);
    const failing = steps({
      t2: { fail: { install: { code: "INSTALL_FAILED", retryable: false, message: "exit 7" } } },
      t3: { fail: { connect: { code: "EHOSTUNREACH", retryable: false, message: "no route" } } },
    });
    const first = cli(["deploy", job], failing.factory, {}, stateDir);
    assert.equal(await first.code, 255);
    const firstRun = (await report(first.out())).runId;
    // A run of another job in between is passed over by 'last'.
    const otherJob = await jobFile(["t9"]);
    await writeFile(
      otherJob,
      (await readFile(otherJob, "utf8")).replace("name: test-job", "name: other-job"),
    );
    const other = cli(["deploy", otherJob], steps().factory, {}, stateDir);
    assert.equal(await other.code, 0);

    const fixed = steps();
    const retry = cli(["deploy", job, "--retry", "last"], fixed.factory, {}, stateDir);
    assert.equal(await retry.code, 0);
    assert.match(
      retry.err(),
      new RegExp(
        `^sumac: retrying 2 of the job's 3 target\\(s\\), those that did not succeed in run ${firstRun}$`,
        "m",
      ),
    );
    assert.deepEqual([...new Set(fixed.record.calls.map((c) => c.split(":")[0]))].sort(), ["t2", "t3"]);
    const retried = await report(retry.out());
    assert.deepEqual(
      retried.targets.map((t) => [t.id, t.status]),
      [
        ["t2", "succeeded"],
        ["t3", "succeeded"],
      ],
    );
    assert.notEqual(retried.runId, firstRun);

    const again = cli(["deploy", job, "--retry", "last"], steps().factory, {}, stateDir);
    assert.equal(await again.code, 3);
    assert.equal(again.err(), `sumac: run ${retried.runId}: every target succeeded; nothing to retry\n`);
    const byId = cli(["deploy", job, "--retry", firstRun], steps().factory, {}, stateDir);
    assert.equal(await byId.code, 0, "an earlier run named by its id");
  });

  it("cli run - --retry refused: not a run id, no such run, no run of the job, none of its targets in the job", async () => {
    const stateDir = join(work.dir, `state${n++}`);
    const job = await jobFile(["t1"]);
    const bad = cli(["deploy", job, "--retry", "../../etc"], steps().factory, {}, stateDir);
    assert.equal(await bad.code, 254);
    assert.match(
      bad.err(),
      /--retry "\.\.\/\.\.\/etc": expected a run id such as \S+ \(the name of its directory under \S+\/runs\) or 'last'/,
    );
    const none = cli(["deploy", job, "--retry", "last"], steps().factory, {}, stateDir);
    assert.equal(await none.code, 254);
    assert.match(none.err(), /^sumac: --retry last: no run of job 'test-job' with a report in \S+\/runs$/m);
    const missing = cli(
      ["deploy", job, "--retry", "20260101-000000-000-abcdef"],
      steps().factory,
      {},
      stateDir,
    );
    assert.equal(await missing.code, 254);
    assert.match(
      missing.err(),
      /20260101-000000-000-abcdef\/report\.json does not exist \(no such run, or it ended before writing its report\)/,
    );

    const failed = cli(
      ["deploy", await jobFile(["t5"])],
      steps({ t5: { fail: { connect: { code: "EHOSTUNREACH", retryable: false, message: "no route" } } } })
        .factory,
      {},
      stateDir,
    );
    assert.equal(await failed.code, 255);
    const runId = (await report(failed.out())).runId;
    const elsewhere = cli(["deploy", job, "--retry", runId], steps().factory, {}, stateDir);
    assert.equal(await elsewhere.code, 254);
    assert.match(elsewhere.err(), /^sumac: --retry: not in the job any more, not run: t5$/m);
    assert.match(elsewhere.err(), /none of the targets that did not succeed is in this job/);
  });

  it("cli run - inventory is a dry run; its exit code says whether something would be installed", async () => {
    const fake = steps({ t2: { installed: { app: "2.0" } } });
    const run = cli(["inventory", await jobFile(["t1", "t2"])], fake.factory);
    assert.equal(await run.code, 0);
    assert.ok(!fake.record.calls.some((c) => /:(stage|install)$/.test(c)));
    assert.match(run.out(), /^t1\s+succeeded\s+0\s+1 to install/m);
    assert.match(run.out(), /^t2\s+succeeded\s+3\s+1 skipped/m);
    const current = cli(
      ["inventory", await jobFile(["t2"])],
      steps({ t2: { installed: { app: "2.0" } } }).factory,
    );
    assert.equal(await current.code, 3);
  });

  it("cli run - --rewrite and --downgrade reach the machines", async () => {
    const same = cli(
      ["deploy", await jobFile(["t1"]), "--rewrite"],
      steps({ t1: { installed: { app: "2.0" } } }).factory,
    );
    assert.equal(await same.code, 0);
    assert.match(same.out(), /exchanging: install app/);
    const newer = cli(
      ["deploy", await jobFile(["t1"]), "--downgrade"],
      steps({ t1: { installed: { app: "9.0" } } }).factory,
    );
    assert.equal(await newer.code, 0);
    assert.equal((await report(newer.out())).targets[0]?.components[0]?.action, "downgrade");
  });

  it("cli run - the state directory defaults to $XDG_STATE_HOME/sumac", async () => {
    const xdg = join(work.dir, "xdg");
    let out = "";
    const code = await main(
      ["deploy", await jobFile(["t1"])],
      { out: (s) => (out += s), err: () => undefined, env: { XDG_STATE_HOME: xdg } },
      steps().factory,
    );
    assert.equal(code, 0);
    assert.match(out, new RegExp(`^report: ${join(xdg, "sumac", "runs")}/\\S+/report\\.json$`, "m"));
  });

  it("cli run - a state directory in use by another run: exit 255 saying so, nothing run", async () => {
    const { openMemoryBus } = await import("../../bus/memory.ts");
    const stateDir = join(work.dir, "locked");
    const holder = await openMemoryBus({ stateDir });
    try {
      const fake = steps();
      const run = cli(["deploy", await jobFile(["t1"])], fake.factory, {}, stateDir);
      assert.equal(await run.code, 255);
      assert.match(
        run.err(),
        new RegExp(
          `^sumac: cannot open the bus on the state directory ${stateDir}: state directory .* is in use by process ${process.pid}`,
          "m",
        ),
      );
      assert.deepEqual(fake.record.calls, []);
    } finally {
      await holder.close();
    }
  });

  it("cli run - steps that cannot be prepared: exit 255 with the reason", async () => {
    const broken: StepsFactory = () =>
      Promise.reject(new Error("agent bundle missing: run npm run build:agent"));
    const run = cli(["deploy", await jobFile(["t1"])], broken);
    assert.equal(await run.code, 255);
    assert.equal(
      run.err(),
      "sumac: cannot prepare the run's steps: agent bundle missing: run npm run build:agent\n",
    );
  });
});
