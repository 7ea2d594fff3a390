/**
 * Stress over a real nats-server: 1,000 acquire requests in flight at once from four processes
 * (250 each, all sent before any reply) against one lease service grant 1,000 distinct ports, and
 * the service holds exactly those 1,000 leases.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { Bus } from "../../bus/bus.ts";
import { createLeaseClient } from "../../actors/lease/client.ts";
import { startLeaseService, type LeaseService } from "../../actors/lease/service.ts";
import { spawnRole, type RoleProcess } from "../support/lease-fixtures.ts";
import { natsBinarySkipReason, startNatsProcess, type LocalNatsServer } from "../support/nats.ts";

const skip = await natsBinarySkipReason();
const PROCESSES = 4;
const PER_PROCESS = 250;

interface Granted {
  leaseId: string;
  port: number;
  workerHost: string;
}

describe("port lease stress", { skip }, () => {
  let server: LocalNatsServer;
  let bus: Bus;
  let service: LeaseService;
  const children: RoleProcess[] = [];
  before(async () => {
    server = await startNatsProcess();
    const { openNatsBus } = await import("../../bus/nats.ts");
    bus = await openNatsBus({ servers: server.url, timeoutMs: 5_000 });
    service = await startLeaseService({ bus, instance: "stress" });
    await service.whenActive();
  });
  after(async () => {
    for (const child of children) await child.kill();
    await service?.stop();
    await bus?.close();
    await server?.dispose();
  });

  it("port lease stress - 1,000 concurrent acquires from 4 processes get 1,000 distinct ports", async () => {
    for (let i = 0; i < PROCESSES; i++)
      children.push(spawnRole("stress", [server.url, "w-stress", String(PER_PROCESS)]));
    const reports = await Promise.all(
      children.map((c) =>
        c.waitFor(
          "its leases",
          (r): r is { leases: Granted[] } => typeof r === "object" && r !== null && "leases" in r,
          120_000,
        ),
      ),
    );
    const granted = reports.flatMap((r) => r.leases);
    assert.equal(granted.length, PROCESSES * PER_PROCESS);
    const ports = new Set(granted.map((g) => g.port));
    assert.equal(ports.size, granted.length, "a port was granted twice");
    assert.equal(new Set(granted.map((g) => g.leaseId)).size, granted.length);
    // Lowest-first with nothing released: exactly the first 1,000 ports of the range.
    assert.deepEqual(
      [...ports].sort((a, b) => a - b),
      Array.from({ length: granted.length }, (_, i) => 60000 + i),
    );
    const client = createLeaseClient({ bus, workerHost: "w-stress" });
    const status = await client.status();
    assert.equal(status.truncated, false);
    assert.deepEqual(
      status.leases.map((l) => l.leaseId).sort(),
      granted.map((g) => g.leaseId).sort(),
      "the service holds exactly the leases the processes were granted",
    );
    await client.close();
  });
});
