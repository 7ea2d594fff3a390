/**
 * `npm run demo`: starts three `linux-target` containers (two with Node, one without, so the demo
 * also pushes a runtime), writes a job for them in a temporary directory, runs
 * `sumac deploy` on it with the embedded default (no server), and stops the containers again.
 *
 * Needs a container engine: `npm run targets` installs and starts one and builds the images
 * (the demo runs it for you when the engine does not answer). Nothing is left behind: the
 * containers are removed at the end, also after Ctrl-C; the run's report stays in the state
 * directory the demo prints.
 */
import { spawn, spawnSync } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { startLinuxTarget, type LinuxTarget } from "../test/support/linux-target.ts";
import { versionFileComponent, writeFleetJob } from "../test/support/fleet-job.ts";

const root = fileURLToPath(new URL("..", import.meta.url));

function say(line: string): void {
  process.stderr.write(`demo: ${line}\n`);
}

async function main(): Promise<number> {
  if (spawnSync("docker", ["info"], { stdio: "ignore", timeout: 10_000 }).status !== 0) {
    say("no container engine answers: running `bash test/targets/engine.sh` (installs and starts one)");
    const engine = spawnSync("bash", [join(root, "test/targets/engine.sh"), "build", "linux-target"], {
      stdio: "inherit",
    });
    if (engine.status !== 0) return 255;
  }
  const work = await mkdtemp(join(tmpdir(), "sumac-demo-"));
  const targets: LinuxTarget[] = [];
  let stopping = false;
  const stopAll = async () => {
    if (stopping) return;
    stopping = true;
    say(`removing ${targets.length} container(s)`);
    await Promise.allSettled(targets.map((t) => t.stop()));
    await rm(work, { recursive: true, force: true });
  };
  try {
    say("starting three linux-target containers (two with Node, one without)");
    const started = await Promise.all([
      startLinuxTarget({ withNode: true }),
      startLinuxTarget({ withNode: true }),
      startLinuxTarget({ withNode: false }),
    ]);
    targets.push(...started);
    for (const t of targets) say(`target ${t.address} (Node: ${t.withNode ? "yes" : "no"})`);
    const job = await writeFleetJob(work, targets, [versionFileComponent("demo-tool", "1.0.0")], {
      name: "demo",
    });
    say(`job: ${job}`);
    // The embedded default's state directory ($XDG_STATE_HOME/sumac): the report and the targets'
    // log copies stay there after the containers are gone.
    const deploy = spawn(process.execPath, [join(root, "cli/sumac.ts"), "deploy", job], { stdio: "inherit" });
    // Ctrl-C reaches sumac too (same process group): it finishes the install in progress and
    // cleans up; the demo then removes the containers.
    process.on("SIGINT", () => say("interrupted: waiting for sumac to clean up"));
    const code = await new Promise<number>((resolve) =>
      deploy.on("exit", (c, s) => resolve(c ?? (s ? 130 : 255))),
    );
    say(`sumac deploy exited ${code}`);
    return code;
  } finally {
    await stopAll();
  }
}

process.exitCode = await main();
