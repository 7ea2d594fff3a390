/**
 * Conflict resolution with real binds: another process holds 60000-60003, and a lease-and-bind for
 * the workstation range ends on 60004 with the four conflicts recorded by the service.
 *
 * The whole scenario runs in a fresh network namespace (`ip netns exec`): other tests and programs
 * on this machine may hold 6000x ports on the host's loopback, which would make "yields 60004"
 * depend on them; inside the namespace only the blocker holds anything.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { after, before, describe, it } from "node:test";
import type { BusyPort, Lease } from "../../bus/schemas/lease.ts";
import { netnsSkipReason } from "../support/netns.ts";
import { spawnRole } from "../support/lease-fixtures.ts";

const netns = `sumac-lease-${process.pid}`;

interface ConflictReport {
  port: number;
  conflicts: number[];
  status: { leases: Lease[]; busy: BusyPort[]; conflicts: number };
}

const skip = await netnsSkipReason("the lease conflict test");

describe("port lease conflict", { skip }, () => {
  before(() => {
    execFileSync("ip", ["netns", "add", netns], { timeout: 10_000 });
    execFileSync("ip", ["-n", netns, "link", "set", "lo", "up"], { timeout: 10_000 });
  });
  after(() => {
    execFileSync("ip", ["netns", "delete", netns], { timeout: 10_000 });
  });

  it("port lease conflict - with 60000-60003 held by another process, acquire yields 60004 and records four conflicts", async () => {
    const child = spawnRole("conflict", [], { netns });
    try {
      const report = await child.waitFor(
        "the conflict scenario",
        (r): r is ConflictReport => typeof r === "object" && r !== null && "port" in r,
        60_000,
      );
      assert.equal(report.port, 60004);
      assert.deepEqual(report.conflicts, [60000, 60001, 60002, 60003]);
      assert.equal(report.status.conflicts, 4);
      assert.deepEqual(
        report.status.busy.map((b) => [b.workerHost, b.range, b.port]),
        [60000, 60001, 60002, 60003].map((p) => ["w1", "workstation", p]),
      );
      assert.deepEqual(
        report.status.leases.map((l) => l.port),
        [60004],
        "only the bound port is still leased",
      );
    } finally {
      await child.kill();
    }
  });
});
