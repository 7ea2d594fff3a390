/**
 * Failover over a real nats-server: two lease service processes share the lock; killing the active
 * one (SIGKILL, no clean-up) lets the standby take over with the same leases. Killing a holder
 * process stops its renewals; its leases are reclaimed once their time is up, not before, and
 * their ports are granted again.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { Bus } from "../../bus/bus.ts";
import { LEASE_EVENT_SUBJECTS, LeaseExpiredEvent, type Lease } from "../../bus/schemas/lease.ts";
import { createLeaseClient } from "../../actors/lease/client.ts";
import { fromJson } from "../../actors/lease/transport.ts";
import { spawnRole, type RoleProcess } from "../support/lease-fixtures.ts";
import { natsBinarySkipReason, startNatsProcess, type LocalNatsServer } from "../support/nats.ts";

const skip = await natsBinarySkipReason();
const stateIs =
  (state: string) =>
  (r: unknown): r is { instance: string; state: string } =>
    typeof r === "object" && r !== null && (r as { state?: unknown }).state === state;

describe("port lease failover", { skip }, () => {
  let server: LocalNatsServer;
  let bus: Bus;
  const children: RoleProcess[] = [];
  before(async () => {
    server = await startNatsProcess();
    const { openNatsBus } = await import("../../bus/nats.ts");
    bus = await openNatsBus({ servers: server.url, timeoutMs: 5_000 });
  });
  after(async () => {
    for (const child of children) await child.kill();
    await bus?.close();
    await server?.dispose();
  });

  it("port lease failover - the standby takes over with the same leases, and a dead holder's leases are reclaimed after their time", async () => {
    const first = spawnRole("service", [server.url, "first", "1500"]);
    children.push(first);
    await first.waitFor("first active", stateIs("active"));
    const second = spawnRole("service", [server.url, "second", "1500"]);
    children.push(second);
    await second.waitFor("second standing by", stateIs("standby"));

    const client = createLeaseClient({ bus, workerHost: "w-parent", leaseMs: 30_000, timeoutMs: 20_000 });
    const mine = [
      await client.acquire("workstation", { run: "r", target: "a" }),
      await client.acquire("callback", { run: "r", target: "b" }),
    ];
    // 5 s leases: they outlive the failover (lock 1.5 s plus a lock step), yet expire soon after.
    const holder = spawnRole("holder", [server.url, "w-holder", "2", "5000"]);
    children.push(holder);
    const held = (
      await holder.waitFor(
        "leases",
        (r): r is { leases: Lease[] } => typeof r === "object" && r !== null && "leases" in r,
      )
    ).leases;
    assert.deepEqual(
      held.map((l) => l.port),
      [60000, 60001],
    );
    const before = await client.status({ allHosts: true });
    assert.equal(before.instance, "first");

    await first.kill();
    await second.waitFor("second active", stateIs("active"), 30_000);
    const afterFailover = await client.status({ allHosts: true });
    assert.equal(afterFailover.instance, "second");
    const key = (l: Lease): string => `${l.leaseId} ${l.workerHost} ${l.range} ${l.port}`;
    assert.deepEqual(afterFailover.leases.map(key).sort(), [...mine, ...held].map(key).sort());
    assert.deepEqual(await client.renew(), [], "the new instance knows and renews the parent's leases");

    const expired: { at: number; lease: Lease }[] = [];
    const subscription = await bus.subscribe(LEASE_EVENT_SUBJECTS.expired, (m) => {
      expired.push(LeaseExpiredEvent.parse(fromJson(m.data)));
    });
    // The holder's leases as last renewed before it dies: none may be reclaimed before then.
    const lastKnown = (await client.status({ allHosts: true })).leases.filter(
      (l) => l.workerHost === "w-holder",
    );
    await holder.kill();
    const deadline = Date.now() + 20_000;
    while (expired.filter((e) => e.lease.workerHost === "w-holder").length < 2 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 50));
    await subscription.unsubscribe();
    const reclaimed = expired.filter((e) => e.lease.workerHost === "w-holder");
    assert.deepEqual(reclaimed.map((e) => e.lease.leaseId).sort(), held.map((l) => l.leaseId).sort());
    for (const event of reclaimed) {
      const known = lastKnown.find((l) => l.leaseId === event.lease.leaseId);
      assert.ok(known && event.lease.expiresAt >= known.expiresAt, "reclaimed with its last renewal");
      assert.ok(
        event.at >= event.lease.expiresAt,
        `reclaimed at ${event.at}, before its end ${event.lease.expiresAt}`,
      );
    }
    const status = await client.status({ allHosts: true });
    assert.deepEqual(status.leases.map(key).sort(), mine.map(key).sort(), "the parent's leases stay");
    const again = createLeaseClient({ bus, workerHost: "w-holder" });
    assert.equal(
      (await again.acquire("workstation", { run: "r", target: "c" })).port,
      60000,
      "the port comes back",
    );
    await again.close({ release: true });
    await client.close({ release: true });
  });
});
