/**
 * The endings of a run on a Windows target (`scm-peer`: SMB, a service control manager whose
 * services really run, the Windows programs of sumac's command lines), each with the real steps:
 * a Ctrl-C during an install lets it finish, a second one stops it, an agent killed on the target
 * fails the target with a clear message, a service left by a crashed earlier run is swept at the
 * next start, and a wrong password is one attempt and exit 255. After every one of them: no service
 * of the run, no agent process, no run directory, no firewall rule.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { stringify } from "yaml";
import { createRunSteps } from "../../run/compose.ts";
import { loadJob } from "../../run/job/load.ts";
import { runJob } from "../../run/run-job.ts";
import type { RunEvent } from "../../run/types.ts";
import { containerSkipReason } from "../support/engine.ts";
import { runScmClient, scmClientSkipReason, startScmPeer, type ScmPeer } from "../support/scm-peer.ts";

const skip = (await containerSkipReason()) ?? (await scmClientSkipReason());

describe("windows cancel - the endings of a run on an scm-peer target", { skip, timeout: 900_000 }, () => {
  let tmp: string;
  let peer: ScmPeer;
  let jobs = 0;

  before(async () => {
    tmp = await mkdtemp(join(tmpdir(), "sumac-windows-cancel-"));
    peer = await startScmPeer();
    process.env.SUMAC_TEST_CANCEL_PASSWORD = peer.password;
  });

  after(async () => {
    await peer?.stop();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  /** A run of one component on the peer; `install` is its install command (run by sh there). */
  async function start(install: string, options: { password?: string; agentCache?: boolean } = {}) {
    const file = join(tmp, `job-${++jobs}.yaml`);
    if (options.password !== undefined) process.env.SUMAC_TEST_CANCEL_WRONG = options.password;
    await writeFile(
      file,
      stringify({
        name: "windows-cancel",
        targets: [
          {
            name: "w1",
            host: peer.address,
            os: "windows",
            user: peer.user,
            domain: peer.domain,
            auth: {
              password: {
                env:
                  options.password === undefined ? "SUMAC_TEST_CANCEL_PASSWORD" : "SUMAC_TEST_CANCEL_WRONG",
              },
            },
          },
        ],
        package: {
          name: "p",
          components: [{ id: `c${jobs}`, version: "1.0.0", detect: "exit 1", install, timeout: "5m" }],
        },
        ...(options.agentCache === true ? { options: { agentCache: true } } : {}),
      }),
    );
    const events: RunEvent[] = [];
    const run = runJob({
      job: await loadJob(file),
      flags: { inventoryOnly: false, rewrite: false, downgrade: false },
      steps: createRunSteps,
      stateDir: join(tmp, "state"),
      onEvent: (e) => void events.push(e),
    });
    return { run, events };
  }

  const logLines = (events: RunEvent[]) =>
    events.flatMap((e) => (e.type === "target.log" ? [e.message] : [])).join("\n");

  /** The pid the install wrote into `file` on the peer, once it runs; fails if the run ends first. */
  async function installPid(
    file: string,
    run: { result: Promise<{ report: unknown }> },
    events: RunEvent[],
  ): Promise<number> {
    let ended = false;
    void run.result.then(() => (ended = true));
    for (let i = 0; i < 1200; i++) {
      if (ended)
        assert.fail(
          `the run ended before its install wrote ${file}: ${JSON.stringify((await run.result).report)}\n${logLines(events)}`,
        );
      const out = await peer.exec(`cat ${file} 2>/dev/null || true`);
      if (/^\d+$/.test(out.stdout.trim())) return Number(out.stdout.trim());
      await sleep(100);
    }
    return assert.fail(`the install did not write ${file} within 120 s`);
  }

  /** Nothing of run `runId` is left on the peer but its logs. */
  async function nothingLeft(runId: string): Promise<void> {
    const dirs = await peer.exec("ls -A /windows/Temp/sumac | grep -vx cache");
    assert.deepEqual(dirs.stdout.trim().split("\n"), ["logs"], dirs.stdout);
    const agents = await peer.exec("pgrep -af '[s]umac-run=' || true");
    assert.equal(agents.stdout.trim(), "", agents.stdout);
    const rules = await peer.exec("cat /var/lib/scm-peer/firewall.json 2>/dev/null || echo '[]'");
    assert.doesNotMatch(rules.stdout, /sumac run=/, rules.stdout);
    const probe = await runScmClient(peer, [
      { op: "open_scm", as: "scm" },
      { op: "open", scm: "scm", name: `sumac-${runId}-0`, as: "a" },
      { op: "open", scm: "scm", name: `sumac-${runId}-0-kill`, as: "k" },
    ]);
    assert.equal(probe.steps[1]?.error_code, 1060, JSON.stringify(probe));
    assert.equal(probe.steps[2]?.error_code, 1060, JSON.stringify(probe));
  }

  it("windows cancel - Ctrl-C during an install: the install finishes, the run is interrupted, the service is gone", async () => {
    const { run, events } = await start("echo $$ > /tmp/c1.pid; sleep 3; echo done > /tmp/c1.done");
    await installPid("/tmp/c1.pid", run, events);
    assert.equal(run.cancel(), "graceful");
    const result = await run.result;
    assert.equal(result.exitCode, 130, JSON.stringify(result.report.targets, null, 2));
    assert.equal((await peer.exec("cat /tmp/c1.done")).stdout.trim(), "done", "the install did not finish");
    await nothingLeft(run.runId);
  });

  it("windows cancel - a second Ctrl-C stops the install, the service is still gone", async () => {
    const { run, events } = await start("echo $$ > /tmp/c2.pid; exec sleep 600");
    const pid = await installPid("/tmp/c2.pid", run, events);
    assert.equal(run.cancel(), "graceful");
    assert.equal(run.cancel(), "force");
    const result = await run.result;
    assert.equal(result.exitCode, 130, JSON.stringify(result.report.targets, null, 2));
    const alive = await peer.exec(`kill -0 ${pid} 2>/dev/null && echo alive || echo gone`);
    assert.equal(alive.stdout.trim(), "gone", "the install's sleep still runs");
    await nothingLeft(run.runId);
  });

  it("windows cancel - the agent killed on the target fails the target with a clear message; nothing is left", async () => {
    const { run, events } = await start("echo $$ > /tmp/c3.pid; exec sleep 600");
    await installPid("/tmp/c3.pid", run, events);
    const killed = await peer.exec("pkill -9 -f '[s]umac-run=' && echo killed");
    assert.equal(killed.stdout.trim(), "killed");
    await peer.exec("pkill -9 -f 'sleep 600' || true");
    const result = await run.result;
    const target = result.report.targets[0];
    // As on Linux: the install's call lost its agent (a component failure, 253).
    assert.equal(result.exitCode, 253, JSON.stringify(result.report.targets, null, 2));
    assert.equal(target?.status, "failed");
    assert.match(target?.failure?.message ?? "", /TLS connection to .* failed: connect ECONNREFUSED/);
    // Its node.exe could be deleted: no process runs it, so only its firewall rule was removed.
    assert.match(logLines(events), /the agent's process is gone: its firewall rule was removed/);
    await nothingLeft(run.runId);
  });

  it("windows cancel - a service a crashed run left is swept at the next run's start, and said", async () => {
    const old = "20200101-000000-000-abcdef";
    const name = `sumac-${old}-0`;
    const created = await runScmClient(peer, [
      { op: "open_scm", as: "scm" },
      {
        op: "create",
        scm: "scm",
        name,
        as: "s",
        binary_path: `%SystemRoot%\\System32\\cmd.exe /d /q /s /c "cd /d "%SystemRoot%\\Temp\\sumac\\${old}" && start "sumac-agent" /b node.exe agent.js sumac-run=${old}:w1 --dialogue=files"`,
      },
    ]);
    assert.equal(created.steps[1]?.error_code, 0, JSON.stringify(created));
    const { run, events } = await start("true");
    const result = await run.result;
    assert.equal(result.exitCode, 0, JSON.stringify(result.report.targets, null, 2));
    assert.match(logLines(events), new RegExp(`swept service ${name}, left by run ${old}`));
    const probe = await runScmClient(peer, [
      { op: "open_scm", as: "scm" },
      { op: "open", scm: "scm", name, as: "a" },
    ]);
    assert.equal(probe.steps[1]?.error_code, 1060, JSON.stringify(probe));
    await nothingLeft(run.runId);
  });

  it("windows cancel - a wrong password is one attempt, exit 255, and says the login was refused", async () => {
    const authentications = async () =>
      (await peer.logs(1_000_000)).split("\n").filter((l) => /AUTHENTICATE_MESSAGE/.test(l)).length;
    const before = await authentications();
    const { run, events } = await start("true", { password: "not-the-password" });
    const result = await run.result;
    assert.equal(result.exitCode, 255, JSON.stringify(result.report.targets, null, 2));
    const text = JSON.stringify(result.report.targets[0]?.failure) + logLines(events);
    assert.match(text, /STATUS_LOGON_FAILURE|logon|password|refused/i);
    assert.doesNotMatch(text, /not-the-password/);
    // One login was tried, and not again (the server logs each AUTHENTICATE it gets).
    assert.equal((await authentications()) - before, 1);
  });

  it("windows cancel - with the agent cache, Node is pushed once and kept by its hash; the second run reuses it", async () => {
    const first = await start("true", { agentCache: true });
    const one = await first.run.result;
    assert.equal(one.exitCode, 0, JSON.stringify(one.report.targets, null, 2));
    assert.match(logLines(first.events), /pushed Node [\d.]+ for Windows x64/);
    const second = await start("true", { agentCache: true });
    const two = await second.run.result;
    assert.equal(two.exitCode, 0, JSON.stringify(two.report.targets, null, 2));
    assert.match(logLines(second.events), /Node [\d.]+ for Windows x64 is in the agent cache/);
    assert.doesNotMatch(logLines(second.events), /pushed Node/);
    const cached = await peer.exec("ls /windows/Temp/sumac/cache/*/");
    assert.deepEqual(cached.stdout.trim().split("\n").sort(), ["node.exe", "node.tgz"], cached.stdout);
    await nothingLeft(second.run.runId);
  });
});
