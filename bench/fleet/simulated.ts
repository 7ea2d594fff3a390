/**
 * The simulated fleet of bench/fleet.ts: N targets through the real run (cli/run: target machines,
 * concurrency, events on the in-process bus, snapshots in its KV, report) and the real lease
 * service on the in-process bus, with every transport and agent call replaced by an in-process
 * fake that answers at once (no network): what sumac itself costs per target.
 *
 * Run as `node bench/fleet/simulated.ts COUNT CONCURRENCY` by bench/fleet.ts, one fresh process
 * per row: a process that ran a fleet before has its heap grown and its code compiled already.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { createLeaseClient } from "../../actors/lease/client.ts";
import type { StepImpls } from "../../actors/target/steps.ts";
import type { Job, JobTarget } from "../../run/job/types.ts";
import { runJob } from "../../run/run-job.ts";
import type { StepsFactory } from "../../run/types.ts";

function fleetJob(count: number, concurrency: number): Job {
  const targets: JobTarget[] = Array.from({ length: count }, (_, i) => ({
    id: `sim-${i}`,
    tags: [],
    transport: "ssh",
    host: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`,
    port: 22,
    os: "linux",
    user: "root",
    auth: { method: "agent" },
  }));
  const range = (base: number) => ({ base, strategy: "lowest" as const, window: 1000 });
  return {
    file: "/dev/null",
    name: "simulated",
    targets,
    package: {
      name: "sim",
      components: [
        {
          id: "c1",
          version: "1.0.0",
          files: [],
          detect: "true",
          absentExitCode: 1,
          install: "true",
          reboot: false,
        },
      ],
    },
    options: {
      concurrency,
      policy: {},
      ports: { workstation: range(60000), callback: range(61000), agent: range(62286) },
      firewall: "none",
      hostKeyPolicy: "strict",
      netbios: "auto",
      agentCache: false,
      output: { maxBytes: 8 << 20, bytesPerSecond: 64 << 10, agentLogBytes: 8 << 20 },
    },
  };
}

const at = <T>(value: T): Promise<T> => Promise.resolve(value);

/** Steps that answer at once, with real leases from the run's lease service. */
const fakeSteps: StepsFactory = (run) => {
  const leases = createLeaseClient({ bus: run.leases.transport, workerHost: "sim-worker", leaseMs: 600_000 });
  const steps: StepImpls = {
    connect: ({ target }) => at({ sessionId: `s-${target.id}` }),
    pushAgent: ({ target }) => at({ agentDir: `/var/tmp/sumac/${target.id}` }),
    allocatePorts: async ({ runId, target }) => {
      const holder = { run: runId, target: target.id };
      const [cb, ws] = await Promise.all([
        leases.acquire("callback", holder),
        leases.acquire("workstation", holder),
      ]);
      return {
        leases: {
          leaseIds: [cb.leaseId, ws.leaseId],
          workstationPort: ws.port,
          callbackPort: cb.port,
          agentPort: 62286,
        },
      };
    },
    startAgent: () => at({ agentPort: 62286 }),
    hello: () => at({ agentVersion: "sim" }),
    inventory: ({ componentIds }) =>
      at({ installed: Object.fromEntries(componentIds.map((id) => [id, null])) }),
    stage: () => at({ files: 1, bytes: 1024 }),
    install: () => at({ rebootNeeded: false }),
    logs: () => at({ location: "memory", files: 1, bytes: 100 }),
    stopAgent: () => at(undefined),
    removeFiles: () => at(undefined),
    closeFirewall: () => at(undefined),
    releaseLeases: async ({ leases: held }) => {
      if (held !== null) await leases.release(held.leaseIds);
    },
    disconnect: () => at(undefined),
  };
  return at({ steps, close: () => leases.close() });
};

export async function simulatedFleet(count: number, concurrency: number): Promise<void> {
  const stateDir = await mkdtemp(join(tmpdir(), "sumac-bench-sim-"));
  let peak = process.memoryUsage().rss;
  const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 50);
  try {
    const started = performance.now();
    const run = runJob({
      job: fleetJob(count, concurrency),
      flags: { inventoryOnly: false, rewrite: false, downgrade: false },
      steps: fakeSteps,
      stateDir,
    });
    const result = await run.result;
    const ms = performance.now() - started;
    peak = Math.max(peak, process.memoryUsage().rss);
    const ok = result.report.targets.filter((t) => t.status === "succeeded").length;
    console.log(
      `simulated fleet: ${count} targets (${concurrency} at once), ${ok} succeeded, exit ${result.exitCode}: ` +
        `${((count / ms) * 1000).toFixed(0)} targets/s (${(ms / 1000).toFixed(1)} s), peak RSS ${(peak / 2 ** 20).toFixed(0)} MiB ` +
        `(targets >= 1,000/s, <= 1,024 MiB; load ${loadavg()[0]?.toFixed(2)})`,
    );
  } finally {
    clearInterval(sampler);
    await rm(stateDir, { recursive: true, force: true });
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const [count, concurrency] = process.argv.slice(2).map(Number);
  if (!Number.isInteger(count) || !Number.isInteger(concurrency) || count! < 1 || concurrency! < 1)
    throw new Error("usage: simulated.ts COUNT CONCURRENCY (positive integers)");
  await simulatedFleet(count!, concurrency!);
}
