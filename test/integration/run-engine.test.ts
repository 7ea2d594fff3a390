/**
 * The run engine alone, as a worker process would use it: no CLI, the real steps
 * (run/compose.ts), one target on this machine (`host: local`), on the embedded bus in a state
 * directory of its own. The agent really starts here and the exchange is real TLS SOAP.
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { access, mkdtemp, readFile, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stringify } from "yaml";
import { localRoots } from "../../actors/local/session.ts";
import { createRunSteps } from "../../run/compose.ts";
import { parseJob } from "../../run/job/load.ts";
import { runJob } from "../../run/run-job.ts";
import type { RunEvent } from "../../run/types.ts";

const tmp = await mkdtemp(join(tmpdir(), "sumac-engine-"));
after(() => rm(tmp, { recursive: true, force: true }));

describe("run engine", () => {
  it("run engine - without the CLI, runs a target on this machine with the real steps and reports it", async () => {
    const installed = join(tmp, "installed");
    const text = stringify({
      name: "engine-alone",
      targets: [{ host: "local" }],
      package: {
        name: "p",
        components: [
          {
            id: "marker",
            version: "1.0.0",
            detect: `cat ${installed}/version`,
            install: `mkdir -p ${installed} && echo 1.0.0 > ${installed}/version`,
          },
        ],
      },
      options: { concurrency: 1 },
    });
    const job = await parseJob(text, join(tmp, "job.yaml"));
    const events: RunEvent[] = [];
    const run = runJob({
      job,
      flags: { inventoryOnly: false, rewrite: false, downgrade: false },
      steps: createRunSteps,
      stateDir: join(tmp, "state"),
      onEvent: (e) => events.push(e),
    });
    const result = await run.result;
    assert.equal(result.exitCode, 0, JSON.stringify(result.report.targets, null, 2));
    assert.equal(await readFile(join(installed, "version"), "utf8"), "1.0.0\n");
    assert.equal(result.report.counts.succeeded, 1);
    assert.deepEqual(
      events
        .filter((e) => e.type === "target.state")
        .map((e) => (e as { to: string }).to)
        .filter((s, i, a) => a.indexOf(s) === i),
      [
        "connecting",
        "pushingAgent",
        "allocatingPorts",
        "startingAgent",
        "exchanging",
        "shuttingDown",
        "succeeded",
      ],
    );
    // The report and the agent's log copied here; on this machine only the agent's log stays.
    assert.ok(result.reportPath !== null);
    await access(result.reportPath);
    const { runRoot, logRoot } = localRoots();
    await assert.rejects(access(join(runRoot, run.runId)), { code: "ENOENT" });
    assert.ok((await readdir(join(logRoot, run.runId))).length > 0);
    await rm(join(logRoot, run.runId), { recursive: true, force: true });
  });
});
