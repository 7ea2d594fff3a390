/**
 * A run's session with its agent when the connection is lost or a call is slow: the run engine
 * with the real steps (run/compose.ts), one target on this machine (`host: local`), the real
 * agent as a local process, real TLS SOAP. The connection is cut between inventory and stage by
 * the kernel (`ss -K`, which destroys the workstation's socket to the agent's port and nothing
 * else); an inventory whose detects take 90 s in all runs past the minute the workstation used to
 * wait.
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, readFile, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { stringify } from "yaml";
import { localRoots } from "../../actors/local/session.ts";
import { createRunSteps } from "../../run/compose.ts";
import { parseJob } from "../../run/job/load.ts";
import { runJob } from "../../run/run-job.ts";
import type { RunEvent, StepsFactory } from "../../run/types.ts";

const run = promisify(execFile);
const tmp = await mkdtemp(join(tmpdir(), "sumac-recovery-"));
after(() => rm(tmp, { recursive: true, force: true }));

/** Destroys this host's TCP connections to 127.0.0.1:`port`; returns what `ss` says it killed. */
async function cut(port: number): Promise<string> {
  const { stdout } = await run("ss", ["-K", "-tn", "dst", "127.0.0.1", "dport", "=", String(port)], {
    timeout: 10_000,
  });
  return stdout;
}

/** Runs `components` on this machine with the real steps, `steps` wrapping them; the events too. */
async function runLocal(
  name: string,
  components: Record<string, unknown>[],
  flags: { inventoryOnly: boolean },
  steps: StepsFactory = createRunSteps,
) {
  const job = await parseJob(
    stringify({
      name,
      targets: [{ host: "local" }],
      package: { name: "p", components },
      options: { concurrency: 1 },
    }),
    join(tmp, `${name}.yaml`),
  );
  const events: RunEvent[] = [];
  const handle = runJob({
    job,
    flags: { ...flags, rewrite: false, downgrade: false },
    steps,
    stateDir: join(tmp, `state-${name}`),
    onEvent: (e) => events.push(e),
  });
  const result = await handle.result;
  const logs = events
    .filter((e) => e.type === "target.log")
    .map((e) => String((e as { message?: unknown }).message));
  return { result, logs, runId: handle.runId };
}

/** The agent's log of `runId` on this machine, then removed (a local run keeps it, as on a target). */
async function agentLog(runId: string): Promise<string> {
  const dir = join(localRoots().logRoot, runId);
  const names = await readdir(dir);
  const text = (await Promise.all(names.map((n) => readFile(join(dir, n), "utf8")))).join("");
  await rm(dir, { recursive: true, force: true });
  return text;
}

describe("agent session recovery", () => {
  it("agent session recovery - the connection cut between inventory and stage: stage opens a new session and the run succeeds", async () => {
    const installed = join(tmp, "installed");
    const killed: string[] = [];
    const cutAfterInventory: StepsFactory = async (context) => {
      const real = await createRunSteps(context);
      return {
        ...real,
        steps: {
          ...real.steps,
          async inventory(input, signal) {
            const output = await real.steps.inventory(input, signal);
            killed.push(await cut(input.agentPort));
            return output;
          },
        },
      };
    };
    const { result, logs, runId } = await runLocal(
      "cut",
      [
        {
          id: "marker",
          version: "1.0.0",
          detect: `cat ${installed}/version`,
          install: `mkdir -p ${installed} && echo 1.0.0 > ${installed}/version`,
        },
      ],
      { inventoryOnly: false },
      cutAfterInventory,
    );
    assert.equal(killed.length, 1);
    assert.match(killed[0]!, /ESTAB/, `ss killed no connection:\n${killed[0]}`);
    assert.equal(result.exitCode, 0, JSON.stringify(result.report.targets, null, 2));
    assert.equal(await readFile(join(installed, "version"), "utf8"), "1.0.0\n");
    assert.ok(
      logs.some((l) => /the session with the agent was lost: a new one is open from port \d+/.test(l)),
      logs.join("\n"),
    );
    // The agent saw two sessions: hello's, and the one stage opened.
    const log = await agentLog(runId);
    assert.equal(log.match(/connection from /g)?.length, 2, log);
  });

  it("agent session recovery - an inventory whose detects take 90 s succeeds: the workstation waits as long as the agent allows", async () => {
    // Four detects of 23 s, each under the agent's 30 s per detect: 92 s in all, within the
    // agent's 300 s for an Inventory, past the 60 s the workstation used to give any call.
    const components = ["a", "b", "c", "d"].map((id) => ({
      id,
      version: "1.0.0",
      detect: "sleep 23; exit 1",
      install: "true",
    }));
    const started = Date.now();
    const { result, runId } = await runLocal("slow-inventory", components, { inventoryOnly: true });
    const tookMs = Date.now() - started;
    assert.equal(result.exitCode, 0, JSON.stringify(result.report.targets, null, 2));
    assert.ok(tookMs >= 90_000, `the detects did not take their time: ${tookMs} ms`);
    const inventory = result.report.targets[0]?.steps?.find((s) => s.step === "inventory");
    assert.equal(inventory?.status, "ok");
    assert.equal(inventory?.attempts, 1);
    await agentLog(runId);
  });
});
