/**
 * `npm run bench -- fleet [TARGETS] [ROUNDS]`: the fleet figures, side by side in one run.
 *
 * 1. Real fleet: TARGETS `linux-target-node` containers (default 20). Each round deploys a 1 MiB
 *    component with `sumac deploy` (the CLI, embedded default, a fresh state directory) and, on
 *    the same containers, runs the bare ssh2 floor (bench/fleet/floor.ts: connect, mkdir, upload
 *    1 MiB, run the command writing a log, read it, delete), and the same floor that also uploads
 *    the agent bundle and starts it with Node (the least any tool starting a Node agent on each
 *    target must do), rotating which goes first. Prints the three medians, the ratio sumac/floor
 *    (target <= 1.5), and how much of it the agent's start alone accounts for.
 * 2. Simulated fleet: 10,000 targets through the real run orchestration, target machines and
 *    lease service on the in-process bus, with transports and agent replaced by in-process fakes
 *    (bench/fleet/simulated.ts), at the job's default concurrency (32) and 1,000 at once, each in
 *    a fresh process: targets per second and peak RSS (targets >= 1,000/s, <= 1 GiB).
 *
 * Needs the container engine (`npm run targets`) for part 1; `--simulated-only` skips it.
 */
import { spawn } from "node:child_process";
import { once } from "node:events";
import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { startLinuxTarget, type LinuxTarget } from "../test/support/linux-target.ts";
import { writeFleetJob } from "../test/support/fleet-job.ts";
import { DEFAULT_CONCURRENCY } from "../run/job/schema.ts";
import { buildAgent } from "../agent/build.ts";
import { floorFleet } from "./fleet/floor.ts";
import { median } from "./stats.ts";

const CLI = fileURLToPath(new URL("../cli/sumac.ts", import.meta.url));
const SIMULATED = fileURLToPath(new URL("./fleet/simulated.ts", import.meta.url));
const args = process.argv.slice(2).filter((a) => !a.startsWith("--"));
const simulatedOnly = process.argv.includes("--simulated-only");
const count = Number(args[0] ?? 20);
const rounds = Number(args[1] ?? 3);

function load(): string {
  return loadavg()
    .map((l) => l.toFixed(2))
    .join(" ");
}

function sumacDeploy(job: string, stateDir: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(process.execPath, [CLI, "deploy", job, "--state-dir", stateDir, "--json"], {
      stdio: ["ignore", "ignore", "pipe"],
    });
    let stderr = "";
    child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
    child.on("close", (code) => {
      // 0: installed; each round uses a new version, so nothing is skipped.
      if (code !== 0) reject(new Error(`sumac deploy exited ${code}:\n${stderr}`));
      else resolve(performance.now() - started);
    });
  });
}

async function realFleet(): Promise<void> {
  console.log(`fleet: starting ${count} linux-target-node containers (load ${load()})`);
  const targets: LinuxTarget[] = [];
  const work = await mkdtemp(join(tmpdir(), "sumac-bench-fleet-"));
  try {
    for (let i = 0; i < count; i += 5)
      targets.push(
        ...(await Promise.all(
          Array.from({ length: Math.min(5, count - i) }, () => startLinuxTarget({ withNode: true })),
        )),
      );
    const payload = randomBytes(1024 * 1024);
    // The bundle sumac pushes, built as sumac builds it.
    const agent = await readFile((await buildAgent({ outDir: join(work, "agent") })).path);
    const sumacMs: number[] = [];
    const floorMs: number[] = [];
    const agentFloorMs: number[] = [];
    // A warm-up deploy builds the agent bundle and fills caches, as any second run would find them.
    const stateDir = join(work, "state");
    for (let round = 0; round <= rounds; round++) {
      const version = `1.0.${round}`;
      const job = await writeFleetJob(
        join(work, `r${round}`),
        targets,
        [
          {
            id: "blob",
            version,
            files: { "blob.bin": payload },
            detect: `cat /var/lib/sumac-bench/blob 2>/dev/null || exit 1`,
            install: `mkdir -p /var/lib/sumac-bench && sha256sum blob.bin && echo ${version} > /var/lib/sumac-bench/blob`,
          },
        ],
        { options: { concurrency: 32 } },
      );
      const floorTargets = targets.map((t) => ({
        host: t.address,
        port: 22,
        username: "root",
        privateKey: t.users.root.privateKey,
        hostKeySha256: t.hostKeySha256,
      }));
      const legs = [
        () => sumacDeploy(job, stateDir),
        () => floorFleet(floorTargets, payload, `r${round}`),
        () => floorFleet(floorTargets, payload, `a${round}`, agent),
      ];
      // Each leg goes first, second and third in turn.
      const times: number[] = [];
      for (let k = 0; k < legs.length; k++) {
        const leg = (round + k) % legs.length;
        times[leg] = await (legs[leg] as () => Promise<number>)();
      }
      const [s, f, a] = times as [number, number, number];
      if (round === 0) {
        console.log(
          `warm-up: sumac ${s.toFixed(0)} ms, floor ${f.toFixed(0)} ms, floor with agent start ${a.toFixed(0)} ms (not counted)`,
        );
        continue;
      }
      sumacMs.push(s);
      floorMs.push(f);
      agentFloorMs.push(a);
      console.log(
        `round ${round}: sumac ${s.toFixed(0)} ms, floor ${f.toFixed(0)} ms, floor with agent start ${a.toFixed(0)} ms, ratio ${(s / f).toFixed(2)} (load ${load()})`,
      );
    }
    const ms = median(sumacMs);
    const mf = median(floorMs);
    const ma = median(agentFloorMs);
    console.log(
      `fleet of ${count}, 1 MiB component: sumac median ${ms.toFixed(0)} ms, bare ssh2 floor median ${mf.toFixed(0)} ms, ratio ${(ms / mf).toFixed(2)} (target <= 1.5)`,
    );
    console.log(
      `  floor with the agent's start median ${ma.toFixed(0)} ms, ${(ma / mf).toFixed(2)} x the floor (the least a Node agent on each target costs here); sumac/that ${(ms / ma).toFixed(2)}`,
    );
  } finally {
    await Promise.allSettled(targets.map((t) => t.stop()));
    await rm(work, { recursive: true, force: true });
  }
}

/** One simulated row in a fresh process (bench/fleet/simulated.ts), its line printed as it comes. */
async function simulatedRow(targets: number, concurrency: number): Promise<void> {
  const child = spawn(process.execPath, [SIMULATED, String(targets), String(concurrency)], {
    stdio: ["ignore", "inherit", "inherit"],
  });
  const [code] = (await once(child, "exit")) as [number | null];
  if (code !== 0) throw new Error(`the simulated fleet (${concurrency} at once) exited with ${code}`);
}

if (!simulatedOnly) await realFleet();
// At the job's default concurrency, and at 1,000 at once: more machines in flight keep more alive
// at a time (each survives more scavenges, so more is promoted and collected later).
await simulatedRow(10_000, DEFAULT_CONCURRENCY);
await simulatedRow(10_000, 1_000);
