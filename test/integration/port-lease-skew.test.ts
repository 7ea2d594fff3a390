/**
 * The lease lock against a real nats-server, with two lease service instances (each on its own
 * connection) whose wall clocks are 10 s apart: the standby never takes over while the active one
 * renews, whichever clock runs ahead; when the active one stops renewing (its lock writes held
 * back while it still runs and answers) the standby takes over, and no port is granted twice
 * meanwhile. (A real death, SIGKILL, is port-lease-failover.test.ts.)
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { Bus } from "../../bus/bus.ts";
import { LEASE_BUCKET, type Lease } from "../../bus/schemas/lease.ts";
import { startLeaseService, type LeaseService } from "../../actors/lease/service.ts";
import { LOCK_KEY } from "../../actors/lease/store.ts";
import type { LeaseClient } from "../../actors/lease/client.ts";
import {
  burst,
  clientOf,
  doubleGrants,
  lockHoldable,
  takeoverUnderLoad,
  type HeldLockBus,
} from "../support/lease-skew.ts";
import { natsBinarySkipReason, startNatsProcess, type LocalNatsServer } from "../support/nats.ts";

const skip = await natsBinarySkipReason();
const LOCK_MS = 1_000;

describe("port lease skew", { skip }, () => {
  let server: LocalNatsServer;
  const buses: Bus[] = [];
  const services: LeaseService[] = [];
  const clients: LeaseClient[] = [];
  before(async () => {
    server = await startNatsProcess();
  });
  after(async () => {
    for (const c of clients) await c.close();
    for (const s of services) await s.stop();
    for (const b of buses) await b.close();
    await server?.dispose();
  });

  it("port lease skew - over NATS, clocks 10 s apart: no takeover while renewed, a real one when not, no port granted twice", async () => {
    const { openNatsBus } = await import("../../bus/nats.ts");
    for (let i = 0; i < 3; i++) buses.push(await openNatsBus({ servers: server.url, timeoutMs: 5_000 }));
    const views: HeldLockBus[] = [lockHoldable(buses[0]!), lockHoldable(buses[1]!)];
    const skews = [0, 10_000];
    const start = (i: number): Promise<LeaseService> =>
      startLeaseService({
        bus: views[i]!.bus,
        instance: `skew-${i}`,
        lockMs: LOCK_MS,
        tickMs: 100,
        now: () => Date.now() + skews[i]!,
      });
    services.push(await start(0));
    await services[0]!.whenActive();
    services.push(await start(1));
    clients.push(...services.map((s) => clientOf(s, "w1")));
    const kv = await buses[2]!.kv(LEASE_BUCKET);
    const revision = async (): Promise<number> => (await kv.get(LOCK_KEY))?.revision ?? 0;
    const grants: Lease[] = [];

    const quiet = async (active: number): Promise<void> => {
      const until = performance.now() + 30_000;
      for (let renewals = 0; renewals < 4; renewals++) {
        const seen = await revision();
        while ((await revision()) === seen) {
          assert.ok(performance.now() < until, "the active instance renews its lock");
          grants.push(...(await burst(clients, 3)));
        }
      }
      assert.equal(services[active]!.state(), "active");
      assert.equal(services[1 - active]!.state(), "standby", "no takeover while the lock is renewed");
    };

    // The standby's clock runs 10 s ahead.
    await quiet(0);
    grants.push(
      ...(await takeoverUnderLoad({
        active: services[0]!,
        activeBus: views[0]!,
        standby: services[1]!,
        clients,
        perClient: 3,
        deadlineMs: 30_000,
      })),
    );
    // Now the standby's clock runs 10 s behind.
    await quiet(1);
    grants.push(
      ...(await takeoverUnderLoad({
        active: services[1]!,
        activeBus: views[1]!,
        standby: services[0]!,
        clients,
        perClient: 3,
        deadlineMs: 30_000,
      })),
    );
    await quiet(0);
    assert.ok(grants.length > 0);
    assert.deepEqual(doubleGrants(grants), [], "a port granted to two leases");
    const status = await clients[0]!.status();
    assert.equal(status.instance, "skew-0");
    // A client that gave up (300 ms) may have been granted a lease after all: the service knows
    // more leases than the clients were told of, never fewer.
    const known = new Set(status.leases.map((l) => l.leaseId));
    assert.deepEqual(
      grants.filter((l) => !known.has(l.leaseId)),
      [],
      "every grant survived both takeovers",
    );
  });
});
