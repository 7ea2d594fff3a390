/**
 * A second Ctrl-C, end to end: the real `sumac deploy` in a child process against a
 * `linux-target` container over SSH (NET_ADMIN, so the agent's nft rule is real), an install that
 * would run ten minutes, two SIGINTs two seconds apart. sumac must exit 130 within 30 s, and leave
 * on the target no install, no agent, no run directory and no firewall rule: only the agent's log,
 * which says the install was stopped.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { containerSkipReason } from "../support/engine.ts";
import { startLinuxTarget, type LinuxTarget } from "../support/linux-target.ts";
import { versionFileComponent, writeFleetJob } from "../support/fleet-job.ts";

const CLI = fileURLToPath(new URL("../../cli/sumac.ts", import.meta.url));
/** The whole run may take this long before the test gives up on it (the install alone is 600 s). */
const RUN_MS = 180_000;
/** From the second SIGINT to sumac's exit, at most (the promise). */
const STOP_MS = 30_000;

const skip = await containerSkipReason();

/** Polls `check` every 250 ms until it holds, for at most `ms`. */
async function eventually(what: string, ms: number, check: () => Promise<boolean>): Promise<void> {
  const until = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`${what}: not so within ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

describe("force cancel end to end", { skip, timeout: 600_000 }, () => {
  let target: LinuxTarget | undefined;
  let work: string;

  before(async () => {
    work = await mkdtemp(join(tmpdir(), "sumac-e2e-force-"));
    target = await startLinuxTarget({ withNode: true, capAdd: ["NET_ADMIN"] });
  });
  after(async () => {
    await target?.stop();
    await rm(work, { recursive: true, force: true });
  });

  it("force cancel end to end - two SIGINTs 2 s apart during `sleep 600`: exit 130 within 30 s, only the log left, saying the install was stopped", async (context) => {
    assert.ok(target);
    const t = target;
    const job = await writeFleetJob(work, [t], [versionFileComponent("forever", "1.0.0", "sleep 600;")]);
    const stateDir = join(work, "state");
    const child = spawn(process.execPath, [CLI, "deploy", job, "--state-dir", stateDir, "--json"], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => (output += chunk));
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (output += chunk));
    const exited = new Promise<{ code: number | null; at: number }>((resolve) =>
      child.on("close", (code) => resolve({ code, at: Date.now() })),
    );
    const guard = setTimeout(() => child.kill("SIGKILL"), RUN_MS);
    try {
      // The install runs once its `sleep 600` does.
      await eventually("the install's sleep running on the target", 120_000, async () => {
        const ps = await t.exec("pgrep -x sleep || true", 10_000);
        return ps.stdout.trim() !== "";
      });
      // What must be gone afterwards is there now: the agent's rule in the target's firewall.
      const rule = await t.exec("nft list table inet sumac_agent", 10_000);
      assert.match(rule.stdout, /tcp dport \d+ accept/, `no agent rule while it runs: ${rule.stderr}`);
      child.kill("SIGINT");
      await new Promise((resolve) => setTimeout(resolve, 2_000));
      child.kill("SIGINT");
      const second = Date.now();
      const { code, at } = await exited;
      const tookMs = at - second;
      context.diagnostic(`sumac exited ${code} ${tookMs} ms after the second SIGINT`);
      assert.equal(code, 130, output);
      assert.ok(tookMs <= STOP_MS, `sumac exited ${tookMs} ms after the second SIGINT:\n${output}`);

      const runs = await readdir(join(stateDir, "runs"));
      const runId = runs.sort().at(-1)!;
      const report = JSON.parse(await readFile(join(stateDir, "runs", runId, "report.json"), "utf8")) as {
        interrupted: string;
        targets: { id: string; status: string }[];
      };
      assert.equal(report.interrupted, "force");
      assert.equal(report.targets[0]?.status, "cancelled");

      const left = await t.exec(
        [
          `pgrep -a -x sleep | sed 's/^/install left: /' || true`,
          `pgrep -af '[s]umac-run=${runId}' | sed 's/^/agent process: /' || true`,
          `test ! -e /var/tmp/sumac/${runId} || echo "run directory left"`,
          `(nft list table inet sumac_agent 2>/dev/null | grep -q 'dport' && echo "nft rule left") || true`,
        ].join("; "),
        15_000,
      );
      assert.equal(left.stdout.trim(), "", `left on the target:\n${left.stdout}${left.stderr}`);
      const log = await t.exec(`cat /var/log/sumac/${runId}/*.log`, 15_000);
      assert.equal(log.exitCode, 0, `no agent log kept: ${log.stderr}`);
      assert.match(log.stdout, /install forever: the install was stopped: Shutdown \(forced\)/);
      assert.match(log.stdout, /stopped: Shutdown \(forced\)/);
      await t
        .exec("test ! -e /var/lib/sumac-test/forever", 10_000)
        .then((r) => assert.equal(r.exitCode, 0, "the stopped install wrote no version file"));
    } finally {
      clearTimeout(guard);
      child.kill("SIGKILL");
    }
  });
});
