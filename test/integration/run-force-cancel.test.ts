/**
 * A forced cancel of a target on this machine (`host: local`), as the issue measured it: the run
 * engine with the real steps, the real agent as a local process, an install of `sleep 600`. A
 * graceful cancel, then a forced one: the run ends cancelled, the sleep is gone, the agent has
 * stopped and removed its run directory, and its log says the install was stopped.
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { access, mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stringify } from "yaml";
import { localRoots } from "../../actors/local/session.ts";
import { createRunSteps } from "../../run/compose.ts";
import { parseJob } from "../../run/job/load.ts";
import { runJob } from "../../run/run-job.ts";

const tmp = await mkdtemp(join(tmpdir(), "sumac-force-"));
after(() => rm(tmp, { recursive: true, force: true }));

/** Whether a process with this pid exists (a zombie counts as gone). */
async function alive(pid: number): Promise<boolean> {
  const status = await readFile(`/proc/${pid}/status`, "utf8").catch(() => "");
  return status !== "" && !/^State:\s+Z/m.test(status);
}

describe("run force cancel", () => {
  it("run force cancel - a second cancel during `sleep 600` on this machine stops it; the agent stops and removes itself, its log says so", async (context) => {
    const pidFile = join(tmp, "pid");
    const job = await parseJob(
      stringify({
        name: "force-local",
        targets: [{ host: "local" }],
        package: {
          name: "p",
          components: [
            {
              id: "forever",
              version: "1.0.0",
              detect: "exit 1",
              install: `echo $$ > ${pidFile}; exec sleep 600`,
            },
          ],
        },
      }),
      join(tmp, "job.yaml"),
    );
    const run = runJob({
      job,
      flags: { inventoryOnly: false, rewrite: false, downgrade: false },
      steps: createRunSteps,
      stateDir: join(tmp, "state"),
      onEvent: () => undefined,
    });
    let pid = 0;
    for (let i = 0; pid === 0; i++) {
      const text = await readFile(pidFile, "utf8").catch(() => "");
      if (/^\d+\n/.test(text)) pid = Number(text.trim());
      else if (i > 600) assert.fail("the install did not start within 60 s");
      else await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.equal(run.cancel(), "graceful");
    assert.equal(run.cancel(), "force");
    const forced = Date.now();
    const result = await run.result;
    const tookMs = Date.now() - forced;
    context.diagnostic(`the run ended ${tookMs} ms after the forced cancel`);
    assert.equal(result.exitCode, 130, JSON.stringify(result.report.targets, null, 2));
    assert.ok(tookMs < 30_000, `${tookMs} ms`);
    assert.equal(await alive(pid), false, "the install's sleep still runs");
    const { runRoot, logRoot } = localRoots();
    await assert.rejects(access(join(runRoot, run.runId)), { code: "ENOENT" });
    const logDir = join(logRoot, run.runId);
    const log = (
      await Promise.all((await readdir(logDir)).map((n) => readFile(join(logDir, n), "utf8")))
    ).join("");
    await rm(logDir, { recursive: true, force: true });
    assert.match(log, /install forever: the install was stopped: Shutdown \(forced\)/);
    assert.match(log, /stopped: Shutdown \(forced\)/);
  });
});
