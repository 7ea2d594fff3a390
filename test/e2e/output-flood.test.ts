/**
 * A target printing 1 GB of install output, end to end: `sumac deploy` (the real CLI, line
 * display on a pipe) with two targets, this machine (`host: local`) flooding and a `linux-target`
 * container over SSH installing normally. The workstation's peak RSS (VmHWM of the sumac process,
 * sampled while it runs) stays under {@link RSS_BOUND_KB}, the other target succeeds, the flood
 * is shown only within the job's output budget with a count of what was dropped, and the agent's
 * log on the flooding target stays under the job's cap, with the marker where output was cut.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { containerSkipReason } from "../support/engine.ts";
import { writeFleetJob } from "../support/fleet-job.ts";
import { startLinuxTarget, type LinuxTarget } from "../support/linux-target.ts";

const CLI = fileURLToPath(new URL("../../cli/sumac.ts", import.meta.url));
const RUN_MS = 600_000;
/** The bound docs/job-file.md states for a run with one flooding target (peak RSS, kB). */
const RSS_BOUND_KB = 300 * 1024;
const AGENT_LOG_CAP = 1024 * 1024;
const SHOWN_CAP = 256 * 1024;

const skip = await containerSkipReason();

interface Outcome {
  code: number | null;
  stdout: string;
  stderr: string;
  peakKb: number;
  ms: number;
}

/** Runs sumac, sampling its VmHWM until it exits. */
function sumac(args: readonly string[]): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let peakKb = 0;
    const sample = () => {
      void readFile(`/proc/${child.pid}/status`, "utf8").then(
        (status) => (peakKb = Math.max(peakKb, Number(/^VmHWM:\s+(\d+) kB/m.exec(status)?.[1] ?? 0))),
        () => undefined,
      );
    };
    const sampler = setInterval(sample, 100);
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`sumac ${args.join(" ")} did not exit within ${RUN_MS} ms`));
    }, RUN_MS);
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
    child.on("error", reject);
    child.on("close", (code) => {
      clearInterval(sampler);
      clearTimeout(timer);
      resolve({ code, stdout, stderr, peakKb, ms: Date.now() - started });
    });
  });
}

describe("output flood end to end", { skip, timeout: RUN_MS + 120_000 }, () => {
  let dir: string;
  let calm: LinuxTarget;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "sumac-flood-"));
    calm = await startLinuxTarget({ withNode: true });
  });
  after(async () => {
    await calm?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("output flood - 1 GB of output: RSS bounded, the other target finishes, the agent's log under its cap", async (t) => {
    // Only this machine has the marker: the local target floods, the container installs quietly.
    const marker = join(dir, "flood-here");
    await writeFile(marker, "");
    const script = [
      'case "$1" in',
      "  detect) exit 1 ;;",
      `  install) if [ -e '${marker}' ]; then head -c 1000000000 /dev/zero | tr '\\0' 'x' | fold -w 100; else echo "calm install done"; fi ;;`,
      "esac",
      "",
    ].join("\n");
    const job = await writeFleetJob(
      dir,
      [calm],
      [
        {
          id: "big",
          version: "1.0.0",
          files: { "big.sh": script },
          detect: "sh big.sh detect",
          install: "sh big.sh install",
        },
      ],
      {
        extraTargets: [{ host: "local", name: "flood" }],
        options: { firewall: "none", output: { maxBytes: "256KiB", agentLog: "1MiB" } },
      },
    );
    const state = join(dir, "state");
    const run = await sumac(["deploy", job, "--state-dir", state]);
    t.diagnostic(`peak RSS ${run.peakKb} kB, ${run.ms} ms, ${run.stdout.length} bytes of output shown`);
    assert.equal(run.code, 0, `${run.stdout.slice(-3000)}\n${run.stderr.slice(-2000)}`);
    assert.ok(run.peakKb > 0, "VmHWM was sampled");
    assert.ok(run.peakKb < RSS_BOUND_KB, `peak RSS ${run.peakKb} kB, bound ${RSS_BOUND_KB} kB`);

    assert.match(run.stdout, /^\[\s*[\d.]+s\] t1\s+agent info: stdout: calm install done$/m);
    assert.match(run.stdout, /^t1\s+succeeded\s+0/m);
    assert.match(run.stdout, /^flood\s+succeeded\s+0/m);

    // Shown: within the budget, and the rest counted.
    const floodLines = run.stdout.split("\n").filter((l) => / flood\s+agent info: stdout: x+$/.test(l));
    const shownBytes = floodLines.reduce((n, l) => n + l.length - l.indexOf("stdout: "), 0);
    assert.ok(shownBytes <= SHOWN_CAP, `${shownBytes} bytes of the flood shown`);
    const dropped = [
      ...run.stdout.matchAll(/ flood\s+sumac warn: … ([\d,]+) lines \((.+?)\) of output dropped/g),
    ];
    assert.ok(
      dropped.length >= 1 || /not sent: the workstation did not take them/.test(run.stdout),
      "drops are said",
    );

    // On the target: the agent's log under the job's cap, cut with a marker.
    const runId = (await readdir(join(state, "runs"))).sort().at(-1)!;
    const logFile = join("/var/log/sumac", runId, "flood.log");
    const size = (await stat(logFile)).size;
    t.diagnostic(
      `agent log ${size} bytes (cap ${AGENT_LOG_CAP}); ${floodLines.length} flood lines shown, ${dropped.length} drop reports`,
    );
    assert.ok(size <= AGENT_LOG_CAP, `agent log ${size} bytes`);
    const log = await readFile(logFile, "utf8");
    assert.match(log, /output cut here at \d+ bytes \(log cap 1048576\)/);
    assert.match(log, /install big: \d+ output lines \(\d+ bytes\) not written here/);
    assert.match(log, /install big: exit 0 in \d+ ms/);
  });
});
