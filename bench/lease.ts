/**
 * Port-lease throughput: grants per second and acquire latency (p50, p99) with 64 concurrent
 * clients against one lease service, in-process and over NATS (a local nats-server; the clients
 * then run in a child process, as worker processes would, on four connections), and the CPU time
 * per grant (in-process: the whole process; NATS: the service's and the clients' processes, not
 * nats-server's).
 *
 * Rows (all by default; name some to run only those):
 * - `embedded`, the headline in-process figure: what `sumac deploy` runs with no NATS URL, the
 *   in-process Bus with a state directory (under the system temp directory), the lease service on
 *   it, and clients on `service.transport()` (run/backend.ts). Every grant is written to the
 *   lease bucket's log before its reply; that bucket is not synced per write (`durability:
 *   "process"`, docs/bus.md), so no fdatasync bounds the rate.
 * - `bus`: the same, clients sending JSON requests over the in-process Bus, as any other component
 *   on the bus would.
 * - `memory`, `bus-memory`: the same two without a state directory: the KV is kept in memory only
 *   (nothing survives a restart), so these measure the CPU path alone.
 * - `nats`, `nats4`: a local nats-server, 64 worker hosts or 4 hosts x 16 clients.
 *
 * Clients acquire in a loop, each its own worker host (64 hosts), or 16 to a host (4 hosts: grants
 * cluster on a host, as on a real worker). A host's grants stop at 5,000 so that its 5,536 ports do
 * not run out. Warm-up, not counted: an in-process round of 1 s before the in-process rows, and the
 * first second of each NATS row (its client process starts cold).
 *
 * Run: `npm run bench -- lease [SECONDS] [ROW...]` (default 2 s per row). Targets:
 * >= 100,000 grants/s in-process; >= 5,000 grants/s over NATS with p99 <= 20 ms.
 */
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, rm } from "node:fs/promises";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Bus } from "../bus/bus.ts";
import { openMemoryBus } from "../bus/memory.ts";
import { createLeaseClient, type LeaseClient } from "../actors/lease/client.ts";
import { startLeaseService } from "../actors/lease/service.ts";
import type { LeaseTransport } from "../actors/lease/transport.ts";
import { quantile } from "./stats.ts";

const CLIENTS = 64;
/** Seconds of uncounted grants in the NATS client process, which starts cold for each row. */
const NATS_WARM_UP = 1;
/** Per worker host, under the 5,536 ports of 60000..65535. */
const MAX_PER_HOST = 5_000;

interface Figures {
  grants: number;
  perSecond: number;
  p50: number;
  p99: number;
  /**
   * CPU time per grant, in µs: of the process in-process; over NATS, of the service's process and
   * the clients' (not nats-server's).
   */
  cpu: number;
}

/**
 * Each client acquires in a loop for `seconds`, after one grant each and `warmUp` seconds of grants
 * that are not counted (a fresh process compiles its hot paths meanwhile).
 */
async function load(
  clients: readonly LeaseClient[],
  hosts: number,
  seconds: number,
  warmUp = 0,
): Promise<Figures> {
  const holder = { run: "bench", target: "t" };
  await Promise.all(clients.map((c) => c.acquire("workstation", holder)));
  // Grants each client may still make (its share of its host's 5,000).
  const left = clients.map(() => Math.floor(MAX_PER_HOST / (clients.length / hosts)) - 1);
  const latencies: number[] = [];
  const run = async (until: number, record: boolean, share: number): Promise<void> => {
    await Promise.all(
      clients.map(async (client, i) => {
        const most = Math.floor(left[i]! * share);
        for (let n = 0; n < most && performance.now() < until; n++) {
          const t = performance.now();
          await client.acquire("workstation", holder);
          left[i]!--;
          if (record) latencies.push(performance.now() - t);
        }
      }),
    );
  };
  // At most a quarter of the ports go to the warm-up, so that the 4-host row keeps some to measure.
  if (warmUp > 0) await run(performance.now() + warmUp * 1000, false, 0.25);
  // Tells a parent process (NATS rows) that the measured part starts: it measures its own CPU too.
  if (process.argv[2] === "--clients") process.stdout.write("measuring\n");
  const cpu = process.cpuUsage();
  const start = performance.now();
  await run(start + seconds * 1000, true, 1);
  const elapsed = (performance.now() - start) / 1000;
  const used = process.cpuUsage(cpu);
  await Promise.all(clients.map((c) => c.close()));
  return {
    grants: latencies.length,
    perSecond: latencies.length / elapsed,
    p50: quantile(latencies, 0.5),
    p99: quantile(latencies, 0.99),
    cpu: (used.user + used.system) / latencies.length,
  };
}

function clientsOn(bus: (i: number) => Bus | LeaseTransport, hosts: number): LeaseClient[] {
  return Array.from({ length: CLIENTS }, (_, i) =>
    createLeaseClient({ bus: bus(i), workerHost: `bench-${i % hosts}`, leaseMs: 600_000 }),
  );
}

/** The child: `lease.ts --clients NATS_URL HOSTS SECONDS`; prints its figures as JSON. */
async function clientProcess([url = "", hosts = "64", seconds = "2"]: string[]): Promise<void> {
  const { openNatsBus } = await import("../bus/nats.ts");
  const buses = await Promise.all(
    Array.from({ length: 4 }, () => openNatsBus({ servers: url, timeoutMs: 5_000 })),
  );
  const figures = await load(
    clientsOn((i) => buses[i % buses.length]!, Number(hosts)),
    Number(hosts),
    Number(seconds),
    NATS_WARM_UP,
  );
  process.stdout.write(`${JSON.stringify(figures)}\n`);
  await Promise.all(buses.map((b) => b.close()));
}

function print(name: string, f: Figures): void {
  console.log(
    name.padEnd(34),
    f.grants.toFixed(0).padStart(8),
    f.perSecond.toFixed(0).padStart(10),
    f.p50.toFixed(2).padStart(8),
    f.p99.toFixed(2).padStart(8),
    f.cpu.toFixed(1).padStart(8),
  );
}

type InProcessRow = "embedded" | "bus" | "memory" | "bus-memory";
const IN_PROCESS: Record<InProcessRow, string> = {
  embedded: "in-process, embedded (state dir)",
  bus: "in-process, JSON on bus, state dir",
  memory: "in-process, no state dir",
  "bus-memory": "in-process, JSON on bus, no state",
};
const NATS_ROWS = { nats: 64, nats4: 4 } as const;
const ROWS = [...Object.keys(IN_PROCESS), ...Object.keys(NATS_ROWS)];

/** One in-process row: a fresh Bus (and state directory) and service. */
async function inProcess(row: InProcessRow, seconds: number): Promise<Figures> {
  const dir =
    row === "memory" || row === "bus-memory"
      ? undefined
      : await mkdtemp(join(tmpdir(), "sumac-bench-lease-"));
  try {
    const bus = await openMemoryBus(dir === undefined ? {} : { stateDir: dir });
    const service = await startLeaseService({ bus });
    await service.whenActive();
    const direct = row === "embedded" || row === "memory";
    const clients = clientsOn(() => (direct ? service.transport() : bus), CLIENTS);
    const figures = await load(clients, CLIENTS, seconds);
    await service.stop();
    await bus.close();
    return figures;
  } finally {
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  }
}

async function natsRow(hosts: number, seconds: number): Promise<Figures> {
  const { openNatsBus } = await import("../bus/nats.ts");
  const { startNatsProcess } = await import("../test/support/nats.ts");
  // A fresh server per row, so no row starts with the leases of the one before.
  const server = await startNatsProcess();
  try {
    const bus = await openNatsBus({ servers: server.url, timeoutMs: 5_000 });
    const service = await startLeaseService({ bus });
    await service.whenActive();
    const child = spawn(
      process.execPath,
      [fileURLToPath(import.meta.url), "--clients", server.url, String(hosts), String(seconds)],
      { stdio: ["ignore", "pipe", "inherit"] },
    );
    let out = "";
    let serviceCpu: NodeJS.CpuUsage | undefined;
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
      if (serviceCpu === undefined && out.includes("measuring\n")) serviceCpu = process.cpuUsage();
    });
    const [code] = (await once(child, "exit")) as [number | null];
    // The service's CPU from when the clients started measuring until they ended (a little later).
    const used = process.cpuUsage(serviceCpu);
    if (code !== 0) throw new Error(`the client process exited with ${code}`);
    await service.stop();
    await bus.close();
    const figures = JSON.parse(out.slice(out.indexOf("\n") + 1)) as Figures;
    return { ...figures, cpu: figures.cpu + (used.user + used.system) / figures.grants };
  } finally {
    await server.dispose();
  }
}

async function main(seconds: number, rows: readonly string[]): Promise<void> {
  console.log(
    `lease grants, ${CLIENTS} concurrent clients, ${seconds} s per row; load average ${loadavg()[0]?.toFixed(2)}`,
  );
  console.log(
    "row".padEnd(34),
    "grants".padStart(8),
    "grants/s".padStart(10),
    "p50 ms".padStart(8),
    "p99 ms".padStart(8),
    "cpu µs".padStart(8),
  );
  const inProcessRows = rows.filter((r): r is InProcessRow => r in IN_PROCESS);
  // Not printed: no row should pay for compiling the code paths they share.
  if (inProcessRows.length > 0) await inProcess(inProcessRows[0]!, Math.min(seconds, 1));
  for (const row of inProcessRows) print(IN_PROCESS[row], await inProcess(row, seconds));

  const natsRows = rows.filter((r): r is keyof typeof NATS_ROWS => r in NATS_ROWS);
  if (natsRows.length === 0) return;
  // Loaded only here: the test bed's NATS support pulls in the container tooling.
  const { natsBinarySkipReason } = await import("../test/support/nats.ts");
  const skip = await natsBinarySkipReason().catch((err: unknown) => String(err));
  if (skip !== undefined) return console.log(`nats: skipped (${skip})`);
  for (const row of natsRows) {
    const hosts = NATS_ROWS[row];
    const name = hosts === CLIENTS ? "nats, 64 hosts" : `nats, ${hosts} hosts x ${CLIENTS / hosts}`;
    print(name, await natsRow(hosts, seconds));
  }
}

if (process.argv[2] === "--clients") {
  await clientProcess(process.argv.slice(3));
} else {
  const args = process.argv.slice(2);
  const seconds = args[0] !== undefined && /^[0-9.]+$/.test(args[0]) ? Number(args.shift()) : 2;
  if (!(seconds > 0 && seconds <= 60)) throw new Error(`seconds: more than 0, at most 60; got ${seconds}`);
  const unknown = args.filter((r) => !ROWS.includes(r));
  if (unknown.length > 0) throw new Error(`unknown rows ${unknown.join(", ")}; rows: ${ROWS.join(", ")}`);
  await main(seconds, args.length > 0 ? args : ROWS);
}
