/**
 * The lease lock under clock skew, over the in-process bus: two lease service instances whose wall
 * clocks are 10 s apart (either way), clients sending acquires to each instance directly, and
 * random sequences of quiet periods and takeovers (the active instance stops renewing while it
 * still runs and answers). No port of a host is ever granted to two leases, and a standby takes
 * over only when the active one stopped renewing, never because its own clock runs ahead.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import type { Lease } from "../../bus/schemas/lease.ts";
import { LEASE_BUCKET } from "../../bus/schemas/lease.ts";
import { startLeaseService, type LeaseService } from "../../actors/lease/service.ts";
import { LOCK_KEY } from "../../actors/lease/store.ts";
import { openTestBus } from "../support/lease-fixtures.ts";
import {
  burst,
  clientOf,
  doubleGrants,
  lockHoldable,
  takeoverUnderLoad,
  type HeldLockBus,
} from "../support/lease-skew.ts";

const LOCK_MS = 240;

type Step = { kind: "quiet"; renewals: number; perClient: number } | { kind: "takeover"; perClient: number };

const step: fc.Arbitrary<Step> = fc.oneof(
  fc.record({
    kind: fc.constant("quiet" as const),
    renewals: fc.integer({ min: 1, max: 3 }),
    perClient: fc.integer({ min: 1, max: 6 }),
  }),
  fc.record({ kind: fc.constant("takeover" as const), perClient: fc.integer({ min: 1, max: 6 }) }),
);

describe("port lease lock property", () => {
  it("port lease lock - two instances with clocks 10 s apart never grant a port twice", async () => {
    let takeovers = 0;
    let granted = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(10_000, -10_000),
        fc.array(step, { minLength: 2, maxLength: 5 }),
        async (skew, steps) => {
          const bus = await openTestBus();
          const kv = await bus.kv(LEASE_BUCKET);
          const revision = async (): Promise<number> => (await kv.get(LOCK_KEY))?.revision ?? 0;
          const views: HeldLockBus[] = [lockHoldable(bus), lockHoldable(bus)];
          const start = (i: number): Promise<LeaseService> =>
            startLeaseService({
              bus: views[i]!.bus,
              instance: `i${i}`,
              lockMs: LOCK_MS,
              tickMs: 50,
              now: () => Date.now() + i * skew,
            });
          const services = [await start(0)];
          await services[0]!.whenActive();
          services.push(await start(1));
          const clients = services.map((s) => clientOf(s, "w1"));
          const grants: Lease[] = [];
          try {
            for (const s of steps) {
              const a = services[0]!.state() === "active" ? 0 : 1;
              if (s.kind === "quiet") {
                // The active instance renews `renewals` times (the lock's revision moves on) while
                // both are asked: the standby, whichever clock runs ahead, stays standby.
                for (let r = 0; r < s.renewals; r++) {
                  const before = await revision();
                  const until = performance.now() + 10_000;
                  while ((await revision()) === before) {
                    assert.ok(performance.now() < until, "the active instance did not renew");
                    grants.push(...(await burst(clients, s.perClient)));
                  }
                }
                assert.deepEqual(doubleGrants(grants), [], "a port granted to two leases");
                assert.equal(services[a]!.state(), "active");
                assert.equal(services[1 - a]!.state(), "standby", "no takeover while the lock is renewed");
              } else {
                grants.push(
                  ...(await takeoverUnderLoad({
                    active: services[a]!,
                    activeBus: views[a]!,
                    standby: services[1 - a]!,
                    clients,
                    perClient: s.perClient,
                    deadlineMs: 10_000,
                  })),
                );
                takeovers++;
              }
            }
            granted += grants.length;
            assert.deepEqual(doubleGrants(grants), [], "a port granted to two leases");
          } finally {
            for (const c of clients) await c.close();
            for (const s of services) await s.stop();
            await bus.close();
          }
        },
      ),
      { numRuns: 8 },
    );
    assert.ok(takeovers > 0 && granted > 0, `the runs made ${takeovers} takeovers and ${granted} grants`);
  });
});
