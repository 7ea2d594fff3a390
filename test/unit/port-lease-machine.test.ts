import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createActor, fromPromise, waitFor } from "xstate";
import type { Lease } from "../../bus/schemas/lease.ts";
import {
  portLeaseMachine,
  type LeaseOutcome,
  type LeaseRequest,
  type RestoreFailed,
} from "../../machines/port-lease/port-lease.machine.ts";
import {
  LeaseTable,
  secretHash,
  type LeaseState,
  type LeaseTableConfig,
} from "../../machines/port-lease/table.ts";
import { PortTable } from "../../machines/port-lease/pool.ts";

const config: LeaseTableConfig = {
  cooldownMs: 1_000,
  ranges: {
    workstation: { base: 60000, strategy: "lowest", window: 1000, cap: 65535 },
    callback: { base: 60003, strategy: "lowest", window: 1000, cap: 65535 },
    small: { base: 50000, strategy: "lowest", window: 1000, cap: 50001 },
    scatter: { base: 40000, strategy: "random", window: 10, cap: 65535 },
  },
};
const holder = { run: "run-1", target: "t1" };
/** The secret each test lease was acquired with (any 22 or more of [A-Za-z0-9_-]). */
const S = (leaseId: string): string => `secret-of-${leaseId}`.padEnd(22, "x");
const secrets = (ids: string[]): string[] => ids.map(S);

/** An active machine and a `send` that runs requests and returns their replies. */
async function active(restore?: () => Promise<LeaseState>) {
  const machine = restore
    ? portLeaseMachine.provide({ actors: { restore: fromPromise(restore) } })
    : portLeaseMachine;
  const actor = createActor(machine, { input: { instance: "i1", table: config } });
  const outcomes: LeaseOutcome[] = [];
  actor.on("outcome", (o) => void outcomes.push(o));
  actor.start();
  actor.send({ type: "lock.acquired" });
  await waitFor(actor, (s) => s.matches("active"));
  let seq = 0;
  const send = (now: number, ...requests: (LeaseRequest & { random?: number })[]): unknown[] => {
    const queued = requests.map((r) => ({ ...r, seq: seq++, random: r.random ?? 0 }) as const);
    actor.send({ type: "requests", now, requests: queued });
    return outcomes.at(-1)!.replies.map((r) => r.reply);
  };
  const acquire = (now: number, leaseId: string, range = "workstation", workerHost = "w1", random = 0) =>
    send(now, {
      op: "acquire",
      random,
      body: { leaseId, workerHost, range, holder, leaseMs: 10_000, secret: S(leaseId) },
    })[0] as { ok: true; lease: Lease } | { ok: false; error: { code: string } };
  const port = (reply: ReturnType<typeof acquire>): number => {
    assert.ok(reply.ok, JSON.stringify(reply));
    return reply.lease.port;
  };
  return { actor, outcomes, send, acquire, port };
}

describe("port lease machine", () => {
  it("port lease machine - grants the lowest free port and reuses a released one", async () => {
    const { send, acquire, port } = await active();
    assert.deepEqual(
      [port(acquire(1, "a")), port(acquire(1, "b")), port(acquire(1, "c"))],
      [60000, 60001, 60002],
    );
    assert.deepEqual(
      send(2, {
        op: "release",
        body: { leaseIds: ["a", "a", "nope"], secrets: secrets(["a", "a", "nope"]) },
      }),
      [{ ok: true, released: 1 }],
    );
    assert.deepEqual(send(3, { op: "release", body: { leaseIds: ["a"], secrets: secrets(["a"]) } }), [
      { ok: true, released: 0 },
    ]);
    assert.equal(port(acquire(4, "d")), 60000);
    assert.equal(port(acquire(4, "e")), 60003);
  });

  it("port lease machine - answers a retried acquire with the lease it already granted", async () => {
    const { acquire, port } = await active();
    const first = acquire(1, "same");
    assert.deepEqual(acquire(2, "same"), first);
    assert.equal(port(acquire(3, "other")), 60001);
  });

  it("port lease machine - leases per worker host, and ranges that grow into each other share a host's ports", async () => {
    const { acquire, port } = await active();
    assert.equal(port(acquire(1, "a", "workstation", "w1")), 60000);
    assert.equal(port(acquire(1, "b", "workstation", "w2")), 60000);
    for (const id of ["c", "d", "e"]) acquire(1, id, "workstation", "w1");
    // callback starts at 60003, which workstation already handed out on w1.
    assert.equal(port(acquire(1, "f", "callback", "w1")), 60004);
    assert.equal(port(acquire(1, "g", "callback", "w2")), 60003);
  });

  it("port lease machine - a conflict marks the port busy for the cool-down and grants the next", async () => {
    const { send, acquire, port, outcomes } = await active();
    assert.equal(port(acquire(1, "a")), 60000);
    const [next] = send(2, {
      op: "conflict",
      body: { leaseId: "a", secret: S("a"), nextLeaseId: "a2", nextSecret: S("a2"), leaseMs: 10_000 },
    }) as {
      ok: true;
      lease: Lease;
    }[];
    assert.equal(next?.lease.port, 60001);
    assert.deepEqual(
      outcomes.at(-1)!.changes.map((c) => c.type),
      ["lease-gone", "busy", "conflicts", "lease"],
    );
    // The retried report gets the same next lease; an unknown one is refused.
    assert.deepEqual(
      send(3, {
        op: "conflict",
        body: { leaseId: "a", secret: S("a"), nextLeaseId: "a2", nextSecret: S("a2"), leaseMs: 10_000 },
      }),
      [next],
    );
    const [unknown] = send(3, {
      op: "conflict",
      body: { leaseId: "zz", secret: S("zz"), nextLeaseId: "zz2", nextSecret: S("zz2"), leaseMs: 10_000 },
    });
    assert.equal((unknown as { error: { code: string } }).error.code, "unknown-lease");
    assert.equal(port(acquire(500, "b")), 60002, "60000 is busy until 1002");
    assert.equal(port(acquire(1_002, "c")), 60000, "the cool-down is over");
    const [status] = send(1_003, { op: "status", body: {} }) as { conflicts: number; busy: unknown[] }[];
    assert.equal(status?.conflicts, 1);
    assert.deepEqual(status?.busy, []);
  });

  it("port lease machine - reclaims a lease when its time is up unless renewed", async () => {
    const { send, acquire, port, outcomes } = await active();
    port(acquire(0, "a"));
    port(acquire(0, "b"));
    assert.deepEqual(
      send(9_000, {
        op: "renew",
        body: { leaseIds: ["b", "x"], secrets: secrets(["b", "x"]), leaseMs: 10_000 },
      }),
      [{ ok: true, renewed: [{ leaseId: "b", expiresAt: 19_000 }], unknown: ["x"] }],
    );
    send(9_999, { op: "status", body: {} });
    assert.deepEqual(outcomes.at(-1)!.changes, [], "not yet at 9999");
    const [status] = send(10_000, { op: "status", body: {} }) as { leases: Lease[] }[];
    assert.deepEqual(
      outcomes.at(-1)!.changes.map((c) => c.type === "lease-gone" && `${c.lease.leaseId} ${c.reason}`),
      ["a expired"],
    );
    assert.deepEqual(
      status?.leases.map((l) => l.leaseId),
      ["b"],
    );
    assert.deepEqual(
      send(10_001, { op: "renew", body: { leaseIds: ["a"], secrets: secrets(["a"]), leaseMs: 10_000 } }),
      [{ ok: true, renewed: [], unknown: ["a"] }],
    );
    assert.equal(port(acquire(10_002, "c")), 60000, "the reclaimed port comes back");
  });

  it("port lease machine - ticks reclaim expired leases without requests", async () => {
    const { actor, acquire, port, outcomes } = await active();
    port(acquire(0, "a"));
    actor.send({ type: "tick", now: 10_000 });
    assert.equal(outcomes.at(-1)!.changes[0]?.type, "lease-gone");
  });

  it("port lease machine - refuses when the range is exhausted or unknown, or the id is reused", async () => {
    const { acquire, port } = await active();
    assert.deepEqual([port(acquire(1, "a", "small")), port(acquire(1, "b", "small"))], [50000, 50001]);
    const exhausted = acquire(1, "c", "small");
    assert.equal(!exhausted.ok && exhausted.error.code, "exhausted");
    const unknown = acquire(1, "d", "nowhere");
    assert.equal(!unknown.ok && unknown.error.code, "unknown-range");
    const reused = acquire(1, "a", "workstation");
    assert.equal(!reused.ok && reused.error.code, "invalid-request");
  });

  it("port lease machine - random strategy draws free ports in the window, deterministically per draw", async () => {
    const a = await active();
    const b = await active();
    const draws = [0.1, 0.9, 0.5, 0.5, 0.3, 0.7, 0.2, 0.8, 0.4, 0.6];
    const ports = draws.map((r, i) => a.port(a.acquire(1, `l${i}`, "scatter", "w1", r)));
    assert.deepEqual(
      draws.map((r, i) => b.port(b.acquire(1, `l${i}`, "scatter", "w1", r))),
      ports,
    );
    assert.deepEqual(
      [...ports].sort(),
      Array.from({ length: 10 }, (_, i) => 40000 + i),
      "ten draws fill the window of ten without repeats",
    );
    const full = a.acquire(1, "l10", "scatter", "w1", 0.5);
    assert.equal(!full.ok && full.error.code, "exhausted");
  });

  it("port lease machine - refuses requests unless active, and forgets the table when the lock is lost", async () => {
    const stored: LeaseState = {
      leases: [
        {
          leaseId: "old",
          workerHost: "w1",
          range: "workstation",
          port: 60001,
          holder,
          grantedAt: 0,
          expiresAt: 50_000,
          secretHash: secretHash(S("old")),
        },
      ],
      busy: [{ workerHost: "w1", range: "workstation", port: 60000, until: 5_000 }],
      conflicts: 3,
    };
    const { actor, send, acquire, port, outcomes } = await active(() => Promise.resolve(stored));
    assert.equal(port(acquire(1, "a")), 60002, "60000 busy and 60001 leased after the restore");
    const [status] = send(2, { op: "status", body: {} }) as { conflicts: number; instance: string }[];
    assert.deepEqual([status?.conflicts, status?.instance], [3, "i1"]);
    actor.send({ type: "lock.lost" });
    assert.equal(actor.getSnapshot().value, "standby");
    assert.equal(actor.getSnapshot().context.table.size, 0);
    const [refused] = send(3, { op: "status", body: {} }) as { ok: false; error: { code: string } }[];
    assert.equal(refused?.error.code, "not-active");
    assert.equal(outcomes.at(-1)!.changes.length, 0);
  });

  it("port lease machine - a failed restore goes back to standby and says why", async () => {
    const machine = portLeaseMachine.provide({
      actors: { restore: fromPromise(() => Promise.reject(new Error("kv down"))) },
    });
    const actor = createActor(machine, { input: { instance: "i1", table: config } });
    const failed: RestoreFailed[] = [];
    actor.on("restore-failed", (e) => void failed.push(e));
    actor.start();
    actor.send({ type: "lock.acquired" });
    await waitFor(actor, () => failed.length > 0);
    assert.equal(actor.getSnapshot().value, "standby");
    assert.equal((failed[0]?.error as Error).message, "kv down");
  });

  it("port lease machine - rejects a bad range configuration with the range named", () => {
    const bad = {
      ...config,
      ranges: { wide: { base: 65000, strategy: "lowest" as const, window: 1, cap: 70000 } },
    };
    assert.throws(() => new LeaseTable(bad), {
      name: "RangeError",
      message: /range wide: cap must be an integer from base \(65000\) to 65535, not 70000/,
    });
  });
});

describe("port table", () => {
  it("port table - keeps a value per port across blocks, counts them, and refuses what is not a port", () => {
    const ports = new PortTable<string>();
    for (const port of [0, 255, 256, 60000, 65535]) ports.set(port, `p${port}`);
    assert.equal(ports.size, 5);
    assert.equal(ports.get(255), "p255");
    assert.equal(ports.get(256), "p256", "the first port of the next block");
    assert.equal(ports.get(65535), "p65535");
    assert.equal(ports.get(257), undefined);
    assert.equal(ports.has(60001), false);
    ports.set(60000, "again");
    assert.equal(ports.size, 5, "replacing a value adds no port");
    assert.equal(ports.get(60000), "again");
    ports.delete(60000);
    ports.delete(60000);
    ports.delete(12345);
    assert.equal(ports.size, 4, "deleting twice, or a port never set, counts once or not at all");
    assert.equal(ports.has(60000), false);
    for (const bad of [-1, 65536, 1.5, Number.NaN])
      assert.throws(() => ports.set(bad, "x"), { name: "RangeError", message: `not a port: ${bad}` });
    assert.equal(ports.size, 4);
  });
});
