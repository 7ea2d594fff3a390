/**
 * Test support for the lease lock under clock skew: a bus whose lease-lock writes can be held back
 * (an active instance that stops renewing while it still runs, as a paused or partitioned one
 * does), clients bound to one instance each, and the check that no port of a host was granted to
 * two leases.
 */
import type { Bus, KvStore } from "../../bus/bus.ts";
import { LEASE_BUCKET, type Lease } from "../../bus/schemas/lease.ts";
import { createLeaseClient, type LeaseClient } from "../../actors/lease/client.ts";
import { isLeaseError } from "../../actors/lease/errors.ts";
import type { LeaseService } from "../../actors/lease/service.ts";
import { LOCK_KEY } from "../../actors/lease/store.ts";

/** A view of `bus` whose writes of the lease lock wait while `hold()` is in force. */
export interface HeldLockBus {
  readonly bus: Bus;
  /** From now on, writes of the lock key wait (those already sent go through). */
  hold(): void;
  /** Lets the waiting lock writes go. */
  letGo(): void;
}

export function lockHoldable(b: Bus): HeldLockBus {
  let gate: Promise<void> | undefined;
  let open: (() => void) | undefined;
  const wait = async (key: string): Promise<void> => {
    if (key === LOCK_KEY) await gate;
  };
  const wrap = (kv: KvStore): KvStore => ({
    get: (k) => kv.get(k),
    keys: (f) => kv.keys(f),
    put: (k, v) => kv.put(k, v),
    writeMany: (w) => kv.writeMany(w),
    create: async (k, v) => (await wait(k), kv.create(k, v)),
    update: async (k, v, r) => (await wait(k), kv.update(k, v, r)),
    delete: async (k, r) => (await wait(k), kv.delete(k, r)),
  });
  const proxy: Bus = Object.create(b) as Bus;
  proxy.kv = async (name, o) => (name === LEASE_BUCKET ? wrap(await b.kv(name, o)) : b.kv(name, o));
  proxy.serve = (s, h, o) => b.serve(s, h, o);
  proxy.request = (s, d, dl) => b.request(s, d, dl);
  proxy.publish = (s, d) => b.publish(s, d);
  proxy.subscribe = (s, h, o) => b.subscribe(s, h, o);
  return {
    bus: proxy,
    hold() {
      gate ??= new Promise<void>((resolve) => (open = resolve));
    },
    letGo() {
      open?.();
      gate = undefined;
      open = undefined;
    },
  };
}

/** A client that reaches one instance only (its direct transport), failing fast when it is not active. */
export function clientOf(service: LeaseService, workerHost: string): LeaseClient {
  return createLeaseClient({
    bus: service.transport(),
    workerHost,
    leaseMs: 600_000,
    timeoutMs: 300,
    attemptMs: 100,
  });
}

/**
 * `n` acquires through each client at once; the leases granted (a client of an instance that is
 * not active gets `LEASE_UNAVAILABLE`, which is no grant).
 */
export async function burst(clients: readonly LeaseClient[], n: number): Promise<Lease[]> {
  const tries = clients.flatMap((c, i) =>
    Array.from({ length: n }, (_, k) =>
      c.acquire("workstation", { run: "skew", target: `c${i}-${k}` }).then(
        (lease) => [lease],
        (err: unknown) => {
          if (isLeaseError(err) && err.code === "LEASE_UNAVAILABLE") return [];
          throw err;
        },
      ),
    ),
  );
  return (await Promise.all(tries)).flat();
}

/** The ports of a host granted to more than one lease, as `host:port` (empty when none). */
export function doubleGrants(grants: readonly Lease[]): string[] {
  const byPort = new Map<string, Set<string>>();
  for (const l of grants) {
    const key = `${l.workerHost}:${l.port}`;
    const ids = byPort.get(key) ?? new Set<string>();
    ids.add(l.leaseId);
    byPort.set(key, ids);
  }
  return [...byPort].filter(([, ids]) => ids.size > 1).map(([key]) => key);
}

/**
 * Holds back the lock writes of `active` (through its `HeldLockBus`) while both instances are sent
 * acquires, until `standby` has taken over; then lets the writes go and goes on until `active` has
 * stood down. Returns every lease granted meanwhile. Fails when the takeover does not come within
 * `deadlineMs`.
 */
export async function takeoverUnderLoad(options: {
  readonly active: LeaseService;
  readonly activeBus: HeldLockBus;
  readonly standby: LeaseService;
  readonly clients: readonly LeaseClient[];
  readonly perClient: number;
  readonly deadlineMs: number;
}): Promise<Lease[]> {
  const { active, activeBus, standby, clients, perClient } = options;
  const until = performance.now() + options.deadlineMs;
  const grants: Lease[] = [];
  activeBus.hold();
  try {
    while (standby.state() !== "active") {
      if (performance.now() > until) throw new Error(`no takeover within ${options.deadlineMs} ms`);
      grants.push(...(await burst(clients, perClient)));
    }
  } finally {
    activeBus.letGo();
  }
  while (active.state() === "active") {
    if (performance.now() > until) throw new Error(`the old instance did not stand down in time`);
    grants.push(...(await burst(clients, perClient)));
  }
  grants.push(...(await burst(clients, perClient)));
  return grants;
}
