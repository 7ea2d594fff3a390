/**
 * Windows targets through the whole run, in a mixed fleet: two `linux-target` containers over SSH
 * and two `scm-peer` containers (an SMB server whose service control manager really runs services,
 * with the Windows programs sumac's command lines use) over SMB, one job, the real steps. All
 * succeed; afterwards nothing but the logs is left on any target (no service, no agent process, no
 * run directory, no firewall rule); the report names each target's transport; a second run has
 * nothing to do (exit 3).
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createRunSteps } from "../../run/compose.ts";
import { loadJob } from "../../run/job/load.ts";
import { runJob } from "../../run/run-job.ts";
import { containerSkipReason } from "../support/engine.ts";
import { versionFileComponent, writeFleetJob } from "../support/fleet-job.ts";
import { startLinuxTarget, type LinuxTarget } from "../support/linux-target.ts";
import { runScmClient, scmClientSkipReason, startScmPeer, type ScmPeer } from "../support/scm-peer.ts";

const skip = (await containerSkipReason()) ?? (await scmClientSkipReason());

describe("windows run - two Linux and two scm-peer targets in one job", { skip, timeout: 900_000 }, () => {
  let tmp: string;
  let linux: LinuxTarget[] = [];
  let peers: ScmPeer[] = [];

  before(async () => {
    tmp = await mkdtemp(join(tmpdir(), "sumac-windows-run-"));
    const [linuxStarts, peerStarts] = await Promise.all([
      Promise.allSettled([startLinuxTarget({ withNode: true }), startLinuxTarget({ withNode: true })]),
      Promise.allSettled([startScmPeer(), startScmPeer()]),
    ]);
    linux = linuxStarts.flatMap((s) => (s.status === "fulfilled" ? [s.value] : []));
    peers = peerStarts.flatMap((s) => (s.status === "fulfilled" ? [s.value] : []));
    const failed = [...linuxStarts, ...peerStarts].find((s) => s.status === "rejected");
    if (failed) throw failed.reason;
  });

  after(async () => {
    await Promise.allSettled([...linux.map((t) => t.stop()), ...peers.map((p) => p.stop())]);
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  /** The job: t1, t2 over SSH, w1, w2 over SMB (bridge addresses: the agents' ports are not published). */
  async function job(): Promise<string> {
    for (const [i, peer] of peers.entries()) process.env[`SUMAC_TEST_W${i + 1}_PASSWORD`] = peer.password;
    return writeFleetJob(tmp, linux, [versionFileComponent("hello", "1.0.0")], {
      name: "mixed",
      extraTargets: peers.map((peer, i) => ({
        name: `w${i + 1}`,
        host: peer.address,
        os: "windows",
        user: peer.user,
        domain: peer.domain,
        auth: { password: { env: `SUMAC_TEST_W${i + 1}_PASSWORD` } },
      })),
      options: { concurrency: 4 },
    });
  }

  async function deploy(inventoryOnly = false) {
    const file = await job();
    const loaded = await loadJob(file);
    const run = runJob({
      job: loaded,
      flags: { inventoryOnly, rewrite: false, downgrade: false },
      steps: createRunSteps,
      stateDir: join(tmp, "state"),
      onEvent: () => undefined,
    });
    return { runId: run.runId, result: await run.result };
  }

  it("windows run - all four succeed, the report names each transport, nothing but logs is left, a second run exits 3, inventory finds every component current", async (context) => {
    const t0 = performance.now();
    const { runId, result } = await deploy();
    context.diagnostic(`first run ${Math.round(performance.now() - t0)} ms`);
    const outcomes = Object.fromEntries(result.report.targets.map((t) => [t.id, t.status]));
    assert.equal(result.exitCode, 0, JSON.stringify(result.report.targets, null, 2));
    assert.deepEqual(outcomes, { t1: "succeeded", t2: "succeeded", w1: "succeeded", w2: "succeeded" });
    const transports = Object.fromEntries(result.report.targets.map((t) => [t.id, t.transport]));
    assert.deepEqual(transports, { t1: "ssh", t2: "ssh", w1: "smb", w2: "smb" });

    for (const [i, peer] of peers.entries()) {
      const at = `w${i + 1}`;
      // Installed by the agent that ran there.
      assert.equal((await peer.exec("cat /var/lib/sumac-test/hello")).stdout.trim(), "1.0.0", at);
      // Only the logs are left under the run root.
      const root = await peer.exec("ls -A /windows/Temp/sumac");
      assert.deepEqual(root.stdout.trim().split("\n"), ["logs"], `${at}: ${root.stdout}`);
      const logs = await peer.exec(`ls -A /windows/Temp/sumac/logs/${runId}`);
      assert.notEqual(logs.stdout.trim(), "", `${at}: no agent log kept`);
      // No agent process.
      const agents = await peer.exec("pgrep -af '[s]umac-run=' || true");
      assert.equal(agents.stdout.trim(), "", `${at}: ${agents.stdout}`);
      // No firewall rule (the agent registered one while it ran: its log says so).
      const rules = await peer.exec("cat /var/lib/scm-peer/firewall.json 2>/dev/null || echo '[]'");
      assert.doesNotMatch(rules.stdout, /sumac run=/, `${at}: ${rules.stdout}`);
      const log = await peer.exec(`cat /windows/Temp/sumac/logs/${runId}/*`);
      assert.match(log.stdout, /firewall: .*"status":"registered"/, `${at}: ${log.stdout.slice(-2000)}`);
      assert.match(log.stdout, /firewall: .*"status":"removed"/, `${at}: ${log.stdout.slice(-2000)}`);
      // No service: the SCM, asked by impacket, knows neither of the run's two names.
      const probe = await runScmClient(peer, [
        { op: "open_scm", as: "scm" },
        { op: "open", scm: "scm", name: `sumac-${runId}-${2 + i}`, as: "a" },
        { op: "open", scm: "scm", name: `sumac-${runId}-${2 + i}-kill`, as: "k" },
      ]);
      assert.equal(probe.steps[1]?.error_code, 1060, `${at}: ${JSON.stringify(probe)}`);
      assert.equal(probe.steps[2]?.error_code, 1060, `${at}: ${JSON.stringify(probe)}`);
    }
    for (const [i, target] of linux.entries()) {
      const at = `t${i + 1}`;
      const left = await target.exec(`ls -A /var/tmp/sumac 2>/dev/null | grep -v '^cache$' || true`);
      assert.equal(left.stdout.trim(), "", `${at}: ${left.stdout}`);
      const agents = await target.exec("pgrep -af '[s]umac-run=' || true");
      assert.equal(agents.stdout.trim(), "", `${at}: ${agents.stdout}`);
    }

    const t1 = performance.now();
    const again = await deploy();
    context.diagnostic(`second run ${Math.round(performance.now() - t1)} ms`);
    assert.equal(again.result.exitCode, 3, JSON.stringify(again.result.report.targets, null, 2));

    // `sumac inventory`: every target, Windows ones included, reports the component as current.
    const inventory = await deploy(true);
    assert.equal(inventory.result.exitCode, 3, JSON.stringify(inventory.result.report.targets, null, 2));
    for (const target of inventory.result.report.targets)
      assert.deepEqual(
        target.components.map((c) => [c.id, c.before, c.action]),
        [["hello", "1.0.0", "skip"]],
        target.id,
      );
  });
});
