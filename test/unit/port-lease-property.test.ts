/**
 * Random interleavings of acquire, renew, release, conflict, expiry (time passing) and failover
 * (a new machine restored from what was persisted), checked step by step against a plain model:
 * the machine's leases and busy ports equal the model's, no port of a host is leased twice, every
 * `lowest` grant is the model's lowest free port (so released, expired and cooled-down ports come
 * back), and what was persisted equals what the machine holds (so a failover loses nothing).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { createActor, fromPromise, type Actor } from "xstate";
import { publicLease, type BusyPort, type Lease, type StoredLease } from "../../bus/schemas/lease.ts";
import {
  portLeaseMachine,
  type LeaseOutcome,
  type LeaseRequest,
} from "../../machines/port-lease/port-lease.machine.ts";
import type { LeaseChange, LeaseState, LeaseTableConfig } from "../../machines/port-lease/table.ts";

const config: LeaseTableConfig = {
  cooldownMs: 30,
  ranges: {
    low: { base: 100, strategy: "lowest", window: 1, cap: 111 },
    // Overlaps `low` from 106: the two must never hand out the same port of a host.
    high: { base: 106, strategy: "lowest", window: 1, cap: 115 },
    rand: { base: 103, strategy: "random", window: 6, cap: 115 },
  },
};
const hosts = ["h1", "h2"];
const ranges = Object.keys(config.ranges);

type Command =
  | { kind: "acquire"; host: number; range: number; leaseMs: number; random: number }
  | { kind: "renew"; pick: number; leaseMs: number }
  | { kind: "release"; pick: number }
  | { kind: "conflict"; pick: number; leaseMs: number; random: number }
  | { kind: "wait"; ms: number }
  | { kind: "failover" };

const command: fc.Arbitrary<Command> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant("acquire" as const),
      host: fc.nat(1),
      range: fc.nat(2),
      leaseMs: fc.integer({ min: 1, max: 80 }),
      random: fc.double({ min: 0, max: 0.999, noNaN: true }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant("renew" as const),
      pick: fc.nat(),
      leaseMs: fc.integer({ min: 1, max: 80 }),
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("release" as const), pick: fc.nat() }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant("conflict" as const),
      pick: fc.nat(),
      leaseMs: fc.integer({ min: 1, max: 80 }),
      random: fc.double({ min: 0, max: 0.999, noNaN: true }),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({ kind: fc.constant("wait" as const), ms: fc.integer({ min: 0, max: 40 }) }),
  },
  { weight: 1, arbitrary: fc.constant({ kind: "failover" as const }) },
);

/** The reference: what should be leased and busy, computed the obvious way. */
class Model {
  leases = new Map<string, Lease>();
  busy = new Map<string, BusyPort>();
  now = 0;
  private ids = 0;

  expire(): void {
    for (const [id, l] of this.leases) if (l.expiresAt <= this.now) this.leases.delete(id);
    for (const [k, b] of this.busy) if (b.until <= this.now) this.busy.delete(k);
  }

  taken(host: string, port: number): boolean {
    return (
      this.busy.has(`${host}:${port}`) ||
      [...this.leases.values()].some((l) => l.workerHost === host && l.port === port)
    );
  }

  /** Ports a grant may take: all free ones in the window (random) or just the lowest (lowest). */
  allowed(host: string, range: string): number[] {
    const r = config.ranges[range]!;
    const last = r.strategy === "random" ? Math.min(r.base + r.window - 1, r.cap) : r.cap;
    const free: number[] = [];
    for (let p = r.base; p <= last; p++) if (!this.taken(host, p)) free.push(p);
    return r.strategy === "random" ? free : free.slice(0, 1);
  }

  pick(n: number): string | undefined {
    const ids = [...this.leases.keys()];
    // Sometimes an id that is not held (released or never granted).
    return n % 5 === 4 ? `gone-${n}` : ids.length === 0 ? undefined : ids[n % ids.length];
  }

  newId(): string {
    return `l${this.ids++}`;
  }
}

/** The secret each lease is acquired with (any 22 or more of [A-Za-z0-9_-]). */
const S = (leaseId: string): string => `secret-${leaseId}`.padEnd(22, "x");

function start(persisted: Map<string, StoredLease | BusyPort>, onOutcome: (o: LeaseOutcome) => void) {
  const leases = [...persisted.values()].filter((v): v is StoredLease => "leaseId" in v);
  const busy = [...persisted.values()].filter((v): v is BusyPort => "until" in v);
  const restore = fromPromise<LeaseState>(() => Promise.resolve({ leases, busy, conflicts: 0 }));
  const actor = createActor(portLeaseMachine.provide({ actors: { restore } }), {
    input: { instance: "p", table: config },
  });
  actor.on("outcome", onOutcome);
  actor.start();
  actor.send({ type: "lock.acquired" });
  return actor;
}

function persist(changes: readonly LeaseChange[], into: Map<string, StoredLease | BusyPort>): void {
  for (const c of changes) {
    if (c.type === "lease") into.set(`lease ${c.lease.leaseId}`, c.lease);
    if (c.type === "lease-gone") into.delete(`lease ${c.lease.leaseId}`);
    if (c.type === "busy") into.set(`busy ${c.busy.workerHost}:${c.busy.port}`, c.busy);
    if (c.type === "busy-gone") into.delete(`busy ${c.busy.workerHost}:${c.busy.port}`);
  }
}

async function run(commands: Command[]): Promise<void> {
  const model = new Model();
  const persisted = new Map<string, StoredLease | BusyPort>();
  let last: LeaseOutcome | undefined;
  const onOutcome = (o: LeaseOutcome): void => {
    last = o;
    persist(o.changes, persisted);
  };
  let actor: Actor<typeof portLeaseMachine> = start(persisted, onOutcome);
  await new Promise((r) => setImmediate(r));
  let seq = 0;
  const send = (
    request: LeaseRequest,
    random = 0,
  ): { ok: boolean; lease?: Lease; error?: { code: string } } => {
    actor.send({ type: "requests", now: model.now, requests: [{ ...request, seq: seq++, random }] });
    return last!.replies[0]!.reply as never;
  };
  const grant = (
    reply: ReturnType<typeof send>,
    host: string,
    range: string,
    leaseMs: number,
    id: string,
  ): void => {
    const allowed = model.allowed(host, range);
    if (allowed.length === 0) return assert.equal(reply.error?.code, "exhausted", JSON.stringify(reply));
    assert.ok(reply.ok && reply.lease, JSON.stringify(reply));
    assert.ok(
      allowed.includes(reply.lease.port),
      `${reply.lease.port} granted; allowed ${allowed.join(",")}`,
    );
    assert.deepEqual([reply.lease.leaseId, reply.lease.expiresAt], [id, model.now + leaseMs]);
    model.leases.set(id, reply.lease);
  };
  for (const c of commands) {
    if (c.kind === "wait") {
      model.now += c.ms;
      model.expire();
      actor.send({ type: "tick", now: model.now });
    } else if (c.kind === "failover") {
      actor.stop();
      actor = start(persisted, onOutcome);
      await new Promise((r) => setImmediate(r));
      assert.equal(actor.getSnapshot().value, "active");
      actor.send({ type: "tick", now: model.now });
    } else if (c.kind === "acquire") {
      const [host, range, id] = [hosts[c.host]!, ranges[c.range]!, model.newId()];
      const reply = send(
        {
          op: "acquire",
          body: {
            leaseId: id,
            workerHost: host,
            range,
            holder: { run: "r", target: id },
            leaseMs: c.leaseMs,
            secret: S(id),
          },
        },
        c.random,
      );
      grant(reply, host, range, c.leaseMs, id);
    } else if (c.kind === "renew") {
      const id = model.pick(c.pick);
      if (id === undefined) continue;
      send({ op: "renew", body: { leaseIds: [id], secrets: [S(id)], leaseMs: c.leaseMs } });
      const lease = model.leases.get(id);
      if (lease) model.leases.set(id, { ...lease, expiresAt: model.now + c.leaseMs });
    } else if (c.kind === "release") {
      const id = model.pick(c.pick);
      if (id === undefined) continue;
      const reply = send({ op: "release", body: { leaseIds: [id], secrets: [S(id)] } }) as unknown as {
        released: number;
      };
      assert.equal(reply.released, model.leases.delete(id) ? 1 : 0);
    } else {
      const id = model.pick(c.pick);
      if (id === undefined) continue;
      const next = model.newId();
      const reply = send(
        {
          op: "conflict",
          body: { leaseId: id, secret: S(id), nextLeaseId: next, nextSecret: S(next), leaseMs: c.leaseMs },
        },
        c.random,
      );
      const lease = model.leases.get(id);
      if (!lease) {
        assert.equal(reply.error?.code, "unknown-lease");
        continue;
      }
      model.leases.delete(id);
      const until = model.now + config.cooldownMs;
      model.busy.set(`${lease.workerHost}:${lease.port}`, {
        workerHost: lease.workerHost,
        range: lease.range,
        port: lease.port,
        until,
      });
      grant(reply, lease.workerHost, lease.range, c.leaseMs, next);
    }
    // The machine holds exactly the model's leases and busy ports, and has persisted exactly those.
    const { leases, busy } = actor.getSnapshot().context.table.snapshot();
    const byId = (a: Lease, b: Lease): number => a.leaseId.localeCompare(b.leaseId);
    const byPort = (a: BusyPort, b: BusyPort): number =>
      a.workerHost.localeCompare(b.workerHost) || a.port - b.port;
    assert.deepEqual([...leases].sort(byId), [...model.leases.values()].sort(byId));
    assert.deepEqual([...busy].sort(byPort), [...model.busy.values()].sort(byPort));
    const stored = [...persisted.values()];
    assert.deepEqual(
      stored
        .filter((v): v is StoredLease => "leaseId" in v)
        .map(publicLease)
        .sort(byId),
      [...leases].sort(byId),
    );
    assert.deepEqual(stored.filter((v): v is BusyPort => "until" in v).sort(byPort), [...busy].sort(byPort));
    for (const host of hosts) {
      const ports = leases.filter((l) => l.workerHost === host).map((l) => l.port);
      assert.equal(
        new Set(ports).size,
        ports.length,
        `a port of ${host} is leased twice: ${ports.join(",")}`,
      );
    }
  }
  // No leak: once every lease and cool-down has run out, nothing is held and the base comes back.
  model.now += 1_000;
  actor.send({ type: "tick", now: model.now });
  assert.equal(actor.getSnapshot().context.table.size, 0);
  assert.equal(persisted.size, 0);
  const reply = send({
    op: "acquire",
    body: {
      leaseId: "final",
      workerHost: "h1",
      range: "low",
      holder: { run: "r", target: "t" },
      leaseMs: 5,
      secret: S("final"),
    },
  });
  assert.equal(reply.lease?.port, 100);
  actor.stop();
}

describe("port lease machine properties", () => {
  it("port lease machine - random interleavings grant no port twice, leak none and persist all", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(command, { minLength: 1, maxLength: 80 }), (commands) => run(commands)),
      { numRuns: 300 },
    );
  });
});
