/**
 * `sumac deploy` end to end, as an operator runs it: the real CLI in a child process, the embedded
 * default (in-process bus and lease service, a temporary state directory), real `linux-target`
 * containers reached over SSH at their bridge addresses, the real agent bundle, TLS SOAP, leases
 * and the host firewall. Each test checks the exit code, the report, and what is left on the
 * targets afterwards (only the logs).
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createServer, type Server } from "node:net";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { containerSkipReason } from "../support/engine.ts";
import { startLinuxTarget, type LinuxTarget } from "../support/linux-target.ts";
import { versionFileComponent, writeFleetJob } from "../support/fleet-job.ts";

const CLI = fileURLToPath(new URL("../../cli/sumac.ts", import.meta.url));
const RUN_MS = 180_000;

interface CliOutcome {
  code: number | null;
  stdout: string;
  stderr: string;
  /** The `--json` events, one per stdout line. */
  events: Record<string, unknown>[];
}

/**
 * Runs `sumac ARGS` and resolves when it exits. `onEvent` sees each JSON event as it arrives (for
 * a test that must act during the run) and may return a signal to send to the process.
 */
function sumac(
  args: readonly string[],
  onEvent?: (event: Record<string, unknown>) => NodeJS.Signals | undefined,
): Promise<CliOutcome> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ["ignore", "pipe", "pipe"] });
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`sumac ${args.join(" ")} did not exit within ${RUN_MS} ms`));
    }, RUN_MS);
    let stdout = "";
    let stderr = "";
    let pending = "";
    const events: Record<string, unknown>[] = [];
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      stdout += chunk;
      pending += chunk;
      let nl: number;
      while ((nl = pending.indexOf("\n")) >= 0) {
        const line = pending.slice(0, nl);
        pending = pending.slice(nl + 1);
        if (!line.startsWith("{")) continue;
        const event = JSON.parse(line) as Record<string, unknown>;
        events.push(event);
        const signal = onEvent?.(event);
        if (signal !== undefined) child.kill(signal);
      }
    });
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, events });
    });
  });
}

/** The report of the only (or latest) run in a state directory. */
async function latestReport(stateDir: string): Promise<Report> {
  const runs = (await readdir(join(stateDir, "runs"))).sort();
  const last = runs.at(-1);
  assert.ok(last !== undefined, `no run directory under ${stateDir}/runs`);
  return JSON.parse(await readFile(join(stateDir, "runs", last, "report.json"), "utf8")) as Report;
}

interface ReportTarget {
  id: string;
  status: string;
  exitCode: number;
  failure?: { step: string; code: string; message: string } | null;
  ports?: { workstationPort?: number; callbackPort?: number; agentPort?: number } | null;
  logs?: { location: string; files: number; bytes: number } | null;
  components?: unknown;
  steps?: { step: string; status: string }[];
}
interface Report {
  runId: string;
  exitCode: number;
  targets: ReportTarget[];
}

function target(report: Report, id: string): ReportTarget {
  const found = report.targets.find((t) => t.id === id);
  assert.ok(found, `no target ${id} in the report: ${JSON.stringify(report.targets.map((t) => t.id))}`);
  return found;
}

/**
 * Whether the target's agent got as far as writing its log: its start succeeded. (One cancelled
 * while starting may or may not have; its log is then not required.)
 */
function agentStarted(t: ReportTarget): boolean {
  return t.steps?.some((s) => s.step === "startAgent" && s.status === "ok") ?? false;
}

/** What a run may leave on a target: only its logs under /var/log/sumac/<run>. */
async function assertOnlyLogsLeft(t: LinuxTarget, runId: string, logExpected = true): Promise<void> {
  const outcome = await t.exec(
    [
      `test ! -e /var/tmp/sumac/${runId} || echo "run directory left"`,
      `ls /var/tmp/sumac 2>/dev/null | grep -v '^cache$' | sed 's/^/left in \\/var\\/tmp\\/sumac: /' || true`,
      `pgrep -af '[s]umac-agent-' | sed 's/^/agent process: /' || true`,
      `(nft list table inet sumac_agent >/dev/null 2>&1 && echo "nft table left") || true`,
      logExpected ? `ls /var/log/sumac/${runId} >/dev/null 2>&1 || echo "log missing"` : "true",
    ].join("; "),
    15_000,
  );
  assert.equal(outcome.stdout.trim(), "", `left on ${t.address}:\n${outcome.stdout}${outcome.stderr}`);
}

const skip = await containerSkipReason();

describe("deploy end to end - three linux targets over SSH", { skip, timeout: 900_000 }, () => {
  let targets: LinuxTarget[] = [];
  let work: string;

  before(async () => {
    work = await mkdtemp(join(tmpdir(), "sumac-e2e-"));
    targets = await Promise.all([
      startLinuxTarget({ withNode: true, capAdd: ["NET_ADMIN"] }),
      startLinuxTarget({ withNode: true, capAdd: ["NET_ADMIN"] }),
      startLinuxTarget({ withNode: false, capAdd: ["NET_ADMIN"] }),
    ]);
  });
  after(async () => {
    await Promise.allSettled(targets.map((t) => t.stop()));
    await rm(work, { recursive: true, force: true });
  });

  it("deploy end to end - all succeed (one without Node gets a runtime), only logs stay; a second run exits 3", async () => {
    const dir = join(work, "ok");
    const job = await writeFleetJob(dir, targets, [versionFileComponent("tool", "1.0.0")]);
    const stateDir = join(dir, "state");
    const first = await sumac(["deploy", job, "--state-dir", stateDir, "--json"]);
    assert.equal(first.code, 0, `first run:\n${first.stdout}\n${first.stderr}`);
    const report = await latestReport(stateDir);
    assert.equal(report.exitCode, 0);
    for (const id of ["t1", "t2", "t3"]) assert.equal(target(report, id).status, "succeeded");
    for (const t of targets) {
      assert.equal((await t.exec("cat /var/lib/sumac-test/tool")).stdout.trim(), "1.0.0");
      await assertOnlyLogsLeft(t, report.runId);
    }
    for (const id of ["t1", "t2", "t3"]) {
      const logs = target(report, id).logs;
      assert.ok(logs && logs.files > 0, `${id}: no log copied: ${JSON.stringify(logs)}`);
    }

    const second = await sumac(["deploy", job, "--state-dir", stateDir, "--json"]);
    assert.equal(second.code, 3, `second run:\n${second.stdout}\n${second.stderr}`);
    const again = await latestReport(stateDir);
    assert.notEqual(again.runId, report.runId);
    assert.equal(again.exitCode, 3);
    for (const t of targets) await assertOnlyLogsLeft(t, again.runId);
  });

  it("deploy end to end - a failing install fails its target with 253, the others succeed", async () => {
    const dir = join(work, "fail");
    // Fails where /etc/sumac-fail exists: on the second target only.
    await targets[1]!.exec("touch /etc/sumac-fail");
    const component = versionFileComponent(
      "flaky",
      "2.0.0",
      'if [ -e /etc/sumac-fail ]; then echo "cannot install here" >&2; exit 7; fi;',
    );
    const job = await writeFleetJob(dir, targets, [component]);
    const stateDir = join(dir, "state");
    const run = await sumac(["deploy", job, "--state-dir", stateDir, "--json"]);
    await targets[1]!.exec("rm -f /etc/sumac-fail");
    assert.equal(run.code, 253, `${run.stdout}\n${run.stderr}`);
    const report = await latestReport(stateDir);
    assert.equal(target(report, "t1").status, "succeeded");
    assert.equal(target(report, "t3").status, "succeeded");
    const failed = target(report, "t2");
    assert.equal(failed.status, "failed");
    assert.equal(failed.exitCode, 253);
    assert.equal(failed.failure?.step, "install");
    assert.match(failed.failure?.message ?? "", /7/);
    assert.ok(failed.logs && failed.logs.files > 0, "the failed target's log is in the report");
    for (const t of targets) await assertOnlyLogsLeft(t, report.runId);
  });

  it("deploy end to end - an unreachable host and a wrong host key exit 255, the other target succeeds", async () => {
    const dir = join(work, "refused");
    const wrongKey = targets[1]!.hostKeyFingerprint.replace(/^SHA256:./, (m) =>
      m.endsWith("A") ? "SHA256:B" : "SHA256:A",
    );
    const job = await writeFleetJob(dir, targets.slice(0, 2), [versionFileComponent("other", "1.0.0")], {
      overrides: { 1: { hostKey: wrongKey } },
      // 192.0.2.1 (TEST-NET-1) never answers; the connect deadline and its retries are kept short.
      extraTargets: [
        {
          name: "nowhere",
          host: "192.0.2.1",
          user: "root",
          auth: { key: { file: join(dir, "keys", "t1") } },
          hostKey: targets[0]!.hostKeyFingerprint,
        },
      ],
      options: { retries: 1, deadlines: { connect: "3s" } },
    });
    const stateDir = join(dir, "state");
    const run = await sumac(["deploy", job, "--state-dir", stateDir, "--json"]);
    assert.equal(run.code, 255, `${run.stdout}\n${run.stderr}`);
    const report = await latestReport(stateDir);
    assert.equal(target(report, "t1").status, "succeeded", JSON.stringify(target(report, "t1").failure));
    const wrong = target(report, "t2");
    assert.equal(wrong.status, "failed");
    assert.equal(wrong.failure?.step, "connect");
    assert.match(`${wrong.failure?.code} ${wrong.failure?.message}`, /host.key/i);
    const nowhere = target(report, "nowhere");
    assert.equal(nowhere.status, "failed");
    assert.equal(nowhere.failure?.step, "connect");
    // Nothing was touched on the host whose key did not match.
    const touched = await targets[1]!.exec(
      `ls /var/tmp/sumac/${report.runId} /var/log/sumac/${report.runId} 2>&1`,
    );
    assert.notEqual(touched.exitCode, 0, `files on the wrong-key host: ${touched.stdout}`);
  });

  it("deploy end to end - busy ports: 62286 on the target gives 62287; 60000 and 61000 here give the next ones", async () => {
    const dir = join(work, "ports");
    // Something else listens on 62286 in the first container, and on 60000 and 61000 here.
    await targets[0]!.exec(
      `nohup node -e "require('net').createServer().listen(62286, '0.0.0.0')" >/dev/null 2>&1 &`,
    );
    for (let i = 0; ; i++) {
      // 62286 is F34E in /proc/net/tcp; state 0A is LISTEN.
      const out = await targets[0]!.exec("cat /proc/net/tcp /proc/net/tcp6 2>/dev/null");
      if (/:F34E [0-9A-F:]+ 0A /.test(out.stdout)) break;
      assert.ok(i < 50, "port 62286 was not taken in the container within 10 s");
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    const held: Server[] = [];
    for (const port of [60000, 61000]) {
      const server = createServer();
      await new Promise<void>((resolve, reject) => {
        server.once("error", reject);
        server.listen(port, "0.0.0.0", () => resolve());
      }).catch((err: NodeJS.ErrnoException) => {
        // Already taken by another process: just as good for this test.
        if (err.code !== "EADDRINUSE") throw err;
      });
      held.push(server);
    }
    try {
      const job = await writeFleetJob(dir, targets.slice(0, 1), [versionFileComponent("ports", "1.0.0")]);
      const stateDir = join(dir, "state");
      const run = await sumac(["deploy", job, "--state-dir", stateDir, "--json"]);
      assert.equal(run.code, 0, `${run.stdout}\n${run.stderr}`);
      const ports = target(await latestReport(stateDir), "t1").ports;
      assert.equal(ports?.agentPort, 62287, JSON.stringify(ports));
      assert.ok((ports?.workstationPort ?? 0) > 60000, `workstation port ${ports?.workstationPort}`);
      assert.ok((ports?.callbackPort ?? 0) > 61000, `callback port ${ports?.callbackPort}`);
    } finally {
      for (const server of held) server.close();
      await targets[0]!.exec("pkill -f 'listen[(]62286' || true");
    }
  });

  it("deploy end to end - Ctrl-C during an install: the install finishes, every agent is removed, logs stay", async () => {
    const dir = join(work, "interrupt");
    // Takes 4 s, so the interrupt lands while it runs.
    const slow = versionFileComponent("slow", "1.0.0", "sleep 4;");
    const job = await writeFleetJob(dir, targets, [slow]);
    const stateDir = join(dir, "state");
    let sent = false;
    const run = await sumac(["deploy", job, "--state-dir", stateDir, "--json"], (event) => {
      if (!sent && JSON.stringify(event).includes("install")) {
        sent = true;
        return "SIGINT";
      }
      return undefined;
    });
    assert.ok(sent, "no install event seen");
    assert.notEqual(run.code, 0, `${run.stdout}\n${run.stderr}`);
    const report = await latestReport(stateDir);
    // A target interrupted before its agent started has no log; every other one keeps its log.
    for (const [i, t] of targets.entries()) {
      const started = agentStarted(target(report, `t${i + 1}`));
      await assertOnlyLogsLeft(t, report.runId, started);
    }
    // The install that was running finished: its target has the version file.
    const installed = await Promise.all(targets.map((t) => t.exec("cat /var/lib/sumac-test/slow")));
    assert.ok(
      installed.some((o) => o.stdout.trim() === "1.0.0"),
      "no install finished after the interrupt",
    );
  });

  it("deploy end to end - Ctrl-C as an agent starts listening: that agent is stopped, only logs stay", async () => {
    // Cancelled between its start and the first session, an agent can only be stopped by a
    // command: a signal through the SSH channel does not reach it when the login is root.
    const dir = join(work, "interrupt-start");
    const job = await writeFleetJob(dir, targets, [versionFileComponent("early", "1.0.0", "")]);
    const stateDir = join(dir, "state");
    let sent = false;
    const run = await sumac(["deploy", job, "--state-dir", stateDir, "--json"], (event) => {
      if (!sent && event.type === "target.log" && String(event.message).startsWith("agent listening")) {
        sent = true;
        return "SIGINT";
      }
      return undefined;
    });
    assert.ok(sent, `no agent started:\n${run.stdout}\n${run.stderr}`);
    assert.equal(run.code, 130, `${run.stdout}\n${run.stderr}`);
    const report = await latestReport(stateDir);
    for (const [i, t] of targets.entries()) {
      const started = agentStarted(target(report, `t${i + 1}`));
      await assertOnlyLogsLeft(t, report.runId, started);
    }
  });
});

describe("deploy end to end - job file errors exit 254 with file, line and column", () => {
  const cases: [string, string, RegExp][] = [
    ["missing field", "targets:\n  - host: local\npackage:\n  name: p\n", /components/],
    [
      "wrong type",
      "targets:\n  - host: local\n    port: twenty\npackage: { name: p, components: [] }\n",
      /port/,
    ],
    [
      "unknown key",
      "targets:\n  - hots: local\npackage: { name: p, components: [] }\n",
      /unknown key "hots"/,
    ],
    ["bad port", "targets:\n  - host: h\n    port: 70000\npackage: { name: p, components: [] }\n", /port/],
    [
      "missing file",
      "targets:\n  - host: local\npackage:\n  name: p\n  components:\n    - { id: c, version: '1', files: [nope.sh], detect: x, install: y }\n",
      /nope\.sh/,
    ],
  ];
  for (const [kind, text, pattern] of cases) {
    it(`deploy end to end - ${kind}`, async () => {
      const dir = await mkdtemp(join(tmpdir(), "sumac-e2e-job-"));
      try {
        const file = join(dir, "job.yaml");
        await import("node:fs/promises").then((fs) => fs.writeFile(file, text));
        const run = await sumac(["deploy", file, "--state-dir", join(dir, "state")]);
        assert.equal(run.code, 254, `${run.stdout}\n${run.stderr}`);
        assert.match(run.stderr, new RegExp(`job\\.yaml:\\d+:\\d+`));
        assert.match(run.stderr, pattern);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });
  }
});
