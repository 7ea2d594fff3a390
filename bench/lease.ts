/**
 * Port-lease throughput: grants per second and acquire latency (p50, p99) with 64 concurrent
 * clients against one lease service, in-process and over NATS (a local nats-server; the clients
 * then run in a child process, as worker processes would, on four connections).
 *
 * Clients acquire in a loop, each its own worker host (64 hosts), or 16 to a host (4 hosts: a
 * host's leases are persisted per block of 16 ports, so this shows grants that cluster, as on a
 * real worker). A host's grants stop at 5,000 so that its 5,536 ports do not run out.
 *
 * Run: `npm run bench -- lease [SECONDS]` (default 2 s per row). Targets (issue 4):
 * >= 100,000 grants/s in-process; >= 5,000 grants/s over NATS with p99 <= 20 ms.
 */
import { spawn } from "node:child_process";
import { once } from "node:events";
import { loadavg } from "node:os";
import { fileURLToPath } from "node:url";
import type { Bus } from "../bus/bus.ts";
import { createLeaseClient, type LeaseClient } from "../actors/lease/client.ts";
import { startLeaseService } from "../actors/lease/service.ts";
import type { LeaseTransport } from "../actors/lease/transport.ts";
import { openTestBus } from "../test/support/lease-fixtures.ts";
import { natsBinarySkipReason, startNatsProcess } from "../test/support/nats.ts";
import { quantile } from "./stats.ts";

const CLIENTS = 64;
/** Per worker host, under the 5,536 ports of 60000..65535. */
const MAX_PER_HOST = 5_000;

interface Figures {
  grants: number;
  perSecond: number;
  p50: number;
  p99: number;
}

/** Each client acquires in a loop for `seconds` (after one warm-up grant each). */
async function load(clients: readonly LeaseClient[], hosts: number, seconds: number): Promise<Figures> {
  const holder = { run: "bench", target: "t" };
  await Promise.all(clients.map((c) => c.acquire("workstation", holder)));
  const latencies: number[] = [];
  const start = performance.now();
  const end = start + seconds * 1000;
  const most = Math.floor(MAX_PER_HOST / (clients.length / hosts)) - 1;
  await Promise.all(
    clients.map(async (client) => {
      for (let n = 0; n < most && performance.now() < end; n++) {
        const t = performance.now();
        await client.acquire("workstation", holder);
        latencies.push(performance.now() - t);
      }
    }),
  );
  const elapsed = (performance.now() - start) / 1000;
  await Promise.all(clients.map((c) => c.close()));
  return {
    grants: latencies.length,
    perSecond: latencies.length / elapsed,
    p50: quantile(latencies, 0.5),
    p99: quantile(latencies, 0.99),
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
  );
  process.stdout.write(`${JSON.stringify(figures)}\n`);
  await Promise.all(buses.map((b) => b.close()));
}

function print(name: string, f: Figures): void {
  console.log(
    name.padEnd(30),
    f.grants.toFixed(0).padStart(8),
    f.perSecond.toFixed(0).padStart(10),
    f.p50.toFixed(2).padStart(8),
    f.p99.toFixed(2).padStart(8),
  );
}

async function main(seconds: number): Promise<void> {
  console.log(
    `lease grants, ${CLIENTS} concurrent clients, ${seconds} s per row; load average ${loadavg()[0]?.toFixed(2)}`,
  );
  console.log(
    "bus, worker hosts".padEnd(30),
    "grants".padStart(8),
    "grants/s".padStart(10),
    "p50 ms".padStart(8),
    "p99 ms".padStart(8),
  );

  let round = 0;
  for (const direct of [true, true, false]) {
    // The first round is not printed: no row should pay for compiling the code paths they share.
    const printed = round++ > 0;
    const bus = await openTestBus();
    const service = await startLeaseService({ bus });
    await service.whenActive();
    const clients = clientsOn(() => (direct ? service.transport() : bus), CLIENTS);
    const figures = await load(clients, CLIENTS, printed ? seconds : Math.min(seconds, 1));
    if (printed) print(`in-process, ${direct ? "direct" : "via bus"}, 64 hosts`, figures);
    await service.stop();
    await bus.close();
  }

  const skip = await natsBinarySkipReason().catch((err: unknown) => String(err));
  if (skip !== undefined) return console.log(`nats: skipped (${skip})`);
  const { openNatsBus } = await import("../bus/nats.ts");
  for (const hosts of [64, 4]) {
    // A fresh server per row, so no row starts with the leases of the one before.
    const server = await startNatsProcess();
    try {
      const bus = await openNatsBus({ servers: server.url, timeoutMs: 5_000 });
      const service = await startLeaseService({ bus });
      await service.whenActive();
      const child = spawn(
        process.execPath,
        [fileURLToPath(import.meta.url), "--clients", server.url, String(hosts), String(seconds)],
        {
          stdio: ["ignore", "pipe", "inherit"],
        },
      );
      let out = "";
      child.stdout.on("data", (d: Buffer) => (out += d.toString()));
      const [code] = (await once(child, "exit")) as [number | null];
      if (code !== 0) throw new Error(`the client process exited with ${code}`);
      print(
        hosts === CLIENTS ? "nats, 64 hosts" : `nats, ${hosts} hosts x ${CLIENTS / hosts}`,
        JSON.parse(out) as Figures,
      );
      await service.stop();
      await bus.close();
    } finally {
      await server.dispose();
    }
  }
}

if (process.argv[2] === "--clients") {
  await clientProcess(process.argv.slice(3));
} else {
  const seconds = Number(process.argv[2] ?? 2);
  if (!(seconds > 0 && seconds <= 60))
    throw new Error(`seconds: more than 0, at most 60; got ${process.argv[2]}`);
  await main(seconds);
}
