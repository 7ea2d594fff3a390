/**
 * The lease service and client over an in-process Bus: replies wait for durable writes, a second
 * instance resumes from what the first persisted, the lock decides which instance serves, and the
 * client's errors, deadlines and renewals.
 */
import assert from "node:assert/strict";
import { createServer, type AddressInfo } from "node:net";
import { after, describe, it } from "node:test";
import { setImmediate as tick } from "node:timers/promises";
import { encodeJson, type Bus, type KvStore, type KvWrite } from "../../bus/bus.ts";
import { LEASE_BUCKET, LEASE_SUBJECTS, Lease } from "../../bus/schemas/lease.ts";
import { leaseKey, LOCK_KEY } from "../../actors/lease/store.ts";
import { GroupCommit } from "../../actors/lease/commit.ts";
import { leaseTableConfig } from "../../actors/lease/config.ts";
import { LeaseTable, type LeaseChange } from "../../machines/port-lease/table.ts";
import { fromJson } from "../../actors/lease/transport.ts";
import { bindLeased } from "../../actors/lease/bind.ts";
import { createLeaseClient } from "../../actors/lease/client.ts";
import {
  LeaseBindError,
  LeaseConflictLimitError,
  LeaseInvalidRequestError,
  LeaseNotHolderError,
  LeaseUnavailableError,
  LeaseUnknownError,
  LeaseUnknownRangeError,
} from "../../actors/lease/errors.ts";
import { startLeaseService, type LeaseService } from "../../actors/lease/service.ts";
import { openTestBus } from "../support/lease-fixtures.ts";
import { lockHoldable } from "../support/lease-skew.ts";

const holder = { run: "run-1", target: "t1" };
const cleanup: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanup.reverse()) await c();
});

async function bus(): Promise<Bus> {
  const b = await openTestBus();
  cleanup.push(() => b.close());
  return b;
}

async function service(
  b: Bus,
  options: Partial<Parameters<typeof startLeaseService>[0]> = {},
): Promise<LeaseService> {
  const s = await startLeaseService({ bus: b, lockMs: 600, tickMs: 50, ...options });
  cleanup.push(() => s.stop());
  return s;
}

/** Wraps a bus so that KV writes to the lease bucket wait until `open()` is called. */
function gated(b: Bus): { bus: Bus; open: () => void } {
  let open!: () => void;
  const gate = new Promise<void>((r) => (open = r));
  const wrap = (kv: KvStore): KvStore => ({
    ...kv,
    get: (k) => kv.get(k),
    keys: (f) => kv.keys(f),
    create: (k, v) => kv.create(k, v),
    update: (k, v, r) => kv.update(k, v, r),
    delete: (k, r) => kv.delete(k, r),
    put: async (k, v) => (await gate, kv.put(k, v)),
    writeMany: async (w) => (await gate, kv.writeMany(w)),
  });
  const proxy: Bus = Object.create(b) as Bus;
  proxy.kv = async (name, o) => (name === LEASE_BUCKET ? wrap(await b.kv(name, o)) : b.kv(name, o));
  proxy.serve = (s, h, o) => b.serve(s, h, o);
  proxy.request = (s, d, dl) => b.request(s, d, dl);
  proxy.publish = (s, d) => b.publish(s, d);
  return { bus: proxy, open };
}

describe("port lease service", () => {
  it("port lease service - replies to an acquire only once its lease is written", async () => {
    const b = await bus();
    const { bus: slow, open } = gated(b);
    await (await service(slow)).whenActive();
    const client = createLeaseClient({ bus: b, workerHost: "w1" });
    cleanup.push(() => client.close());
    let granted = false;
    const pending = client.acquire("workstation", holder).then((lease) => ((granted = true), lease));
    for (let i = 0; i < 20; i++) await tick();
    assert.equal(granted, false, "no reply before the KV write");
    open();
    const lease = await pending;
    assert.equal(lease.port, 60000);
    const stored = await (await b.kv(LEASE_BUCKET)).get(leaseKey("w1", 60000));
    assert.ok(stored, "the lease's key is in the KV");
    assert.deepEqual(Lease.parse(fromJson(stored.value)), lease);
  });

  it("port lease service - a new instance resumes with the leases, busy ports and conflicts persisted", async () => {
    const b = await bus();
    const first = await service(b, { instance: "first" });
    await first.whenActive();
    const client = createLeaseClient({ bus: b, workerHost: "w1" });
    cleanup.push(() => client.close());
    const a = await client.acquire("workstation", holder);
    const c = await client.acquire("callback", holder);
    const moved = await client.reportConflict(a.leaseId);
    assert.deepEqual([a.port, c.port, moved.port], [60000, 61000, 60001]);
    await first.stop();
    const second = await service(b, { instance: "second" });
    await second.whenActive();
    const status = await client.status();
    assert.equal(status.instance, "second");
    assert.deepEqual(
      status.leases.map((l) => [l.leaseId, l.port]),
      [
        [c.leaseId, 61000],
        [moved.leaseId, 60001],
      ],
    );
    assert.deepEqual(
      status.busy.map((p) => p.port),
      [60000],
    );
    assert.equal(status.conflicts, 1);
    assert.equal((await client.acquire("workstation", holder)).port, 60002);
  });

  it("port lease service - a standby takes over when the active one stops renewing, not because its clock runs ahead", async () => {
    const b = await bus();
    const held = lockHoldable(b);
    const active = await service(held.bus, { instance: "a" });
    await active.whenActive();
    // The standby's wall clock is 10 s ahead: by the old timestamps, every claim of `a` has run out.
    const standby = await service(b, { instance: "b", now: () => Date.now() + 10_000 });
    assert.equal(standby.state(), "standby");
    const client = createLeaseClient({ bus: b, workerHost: "w1" });
    cleanup.push(() => client.close());
    const lease = await client.acquire("workstation", holder);
    const kv = await b.kv(LEASE_BUCKET);
    const revision = async (): Promise<number> => (await kv.get(LOCK_KEY))?.revision ?? 0;
    const until = performance.now() + 10_000;
    for (let renewals = 0; renewals < 4; renewals++) {
      const before = await revision();
      while ((await revision()) === before) {
        assert.ok(performance.now() < until, "the active instance renews its lock");
        await new Promise((r) => setTimeout(r, 20));
      }
    }
    assert.equal(standby.state(), "standby", "no takeover while the active instance renews");
    held.hold();
    await standby.whenActive();
    held.letGo();
    for (let i = 0; i < 1000 && active.state() === "active"; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(active.state(), "standby", "the old instance lost its compare-and-set");
    const status = await client.status();
    assert.equal(status.instance, "b");
    assert.deepEqual(
      status.leases.map((l) => l.leaseId),
      [lease.leaseId],
    );
  });

  it("port lease service - a lock left by a dead owner is watched for the lock time, unless the bus is the service's alone", async () => {
    const b = await bus();
    const kv = await b.kv(LEASE_BUCKET);
    await kv.create(LOCK_KEY, new TextEncoder().encode(JSON.stringify({ owner: "dead", expiresAt: 0 })));
    // An hour of lock time: a shared bus's standby must not take it before then (the old value's
    // expiresAt, long past, counts for nothing).
    const shared = await service(b, { instance: "shared", lockMs: 3_600_000 });
    const exclusive = await service(b, { instance: "exclusive", lockMs: 3_600_000, exclusive: true });
    await exclusive.whenActive();
    assert.equal(shared.state(), "standby");
    assert.match(shared.domain, /^[a-z0-9]{14}$/);
    assert.equal(exclusive.domain, shared.domain, "one KV bucket, one lease domain");
  });

  it("port lease service - the client maps failure replies and missing services to error classes", async () => {
    const b = await bus();
    const nobody = createLeaseClient({ bus: b, workerHost: "w1", timeoutMs: 150, attemptMs: 50 });
    cleanup.push(() => nobody.close());
    await assert.rejects(nobody.acquire("workstation", holder), (err: unknown) => {
      assert.ok(err instanceof LeaseUnavailableError);
      assert.deepEqual([err.code, err.retryable], ["LEASE_UNAVAILABLE", true]);
      return true;
    });
    await (await service(b)).whenActive();
    const client = createLeaseClient({ bus: b, workerHost: "w1" });
    cleanup.push(() => client.close());
    await assert.rejects(client.acquire("nowhere", holder), LeaseUnknownRangeError);
    await assert.rejects(client.acquire("bad range!", holder), (err: unknown) => {
      assert.ok(err instanceof LeaseInvalidRequestError);
      assert.match(err.message, /range: 1 to 32 of \[A-Za-z0-9_-\]/);
      return true;
    });
    await assert.rejects(client.reportConflict("never-granted"), LeaseUnknownError);
    assert.equal(await client.release("never-granted"), 0);
  });

  it("port lease service - only the lease's holder may release, renew or report it: a missing or wrong secret is refused", async () => {
    const b = await bus();
    await (await service(b)).whenActive();
    const holderClient = createLeaseClient({ bus: b, workerHost: "w1" });
    cleanup.push(() => holderClient.close());
    const lease = await holderClient.acquire("workstation", holder);
    const ask = async (subject: string, body: unknown): Promise<Record<string, unknown>> =>
      fromJson((await b.request(subject, encodeJson(body), { timeoutMs: 5_000 })).data) as Record<
        string,
        unknown
      >;
    const wrong = "A".repeat(22);
    const id = lease.leaseId;
    // No secret at all (a client from before secrets): invalid, naming the field.
    const bare = await ask(LEASE_SUBJECTS.release, { leaseIds: [id] });
    assert.equal((bare.error as { code: string }).code, "invalid-request");
    assert.match((bare.error as { message: string }).message, /secrets/);
    // A wrong one: not the holder, whatever the operation; and the lease lives on.
    for (const [subject, body] of [
      [LEASE_SUBJECTS.release, { leaseIds: [id], secrets: [wrong] }],
      [LEASE_SUBJECTS.renew, { leaseIds: [id], secrets: [wrong], leaseMs: 1_000 }],
      [
        LEASE_SUBJECTS.conflict,
        { leaseId: id, secret: wrong, nextLeaseId: "Lnext", nextSecret: wrong, leaseMs: 1_000 },
      ],
      [
        LEASE_SUBJECTS.acquire,
        { leaseId: id, workerHost: "w1", range: "workstation", holder, leaseMs: 1_000, secret: wrong },
      ],
    ] as const) {
      const reply = await ask(subject, body);
      assert.equal(reply.ok, false, subject);
      assert.equal((reply.error as { code: string }).code, "not-holder", subject);
      assert.match(
        (reply.error as { message: string }).message,
        new RegExp(
          `the secret given for lease ${id} is not its holder's; only the client that acquired a lease may`,
        ),
      );
    }
    // Through a client that does not hold it: LeaseNotHolderError, not a silent 0.
    const stranger = createLeaseClient({ bus: b, workerHost: "w1" });
    cleanup.push(() => stranger.close());
    await assert.rejects(stranger.release(id), (err: unknown) => {
      assert.ok(err instanceof LeaseNotHolderError);
      assert.equal(err.code, "LEASE_NOT_HOLDER");
      return true;
    });
    await assert.rejects(stranger.reportConflict(id), LeaseNotHolderError);
    const status = await ask(LEASE_SUBJECTS.status, { workerHost: "w1" });
    assert.deepEqual(
      (status.leases as Lease[]).map((l) => [l.leaseId, l.expiresAt]),
      [[id, lease.expiresAt]],
      "still there, not renewed",
    );
    // Neither the secret nor its hash is in a reply; the KV value holds the hash only.
    const secret = (holderClient as unknown as { secrets: Map<string, string> }).secrets.get(id)!;
    assert.ok(secret.length >= 22);
    assert.ok(!JSON.stringify(status).includes("secret"), JSON.stringify(status));
    const stored = await (await b.kv(LEASE_BUCKET)).get(leaseKey("w1", lease.port));
    const value = new TextDecoder().decode(stored!.value);
    assert.ok(!value.includes(secret));
    assert.match(value, /"secretHash":"[A-Za-z0-9_-]{43}"/);
    // The holder renews and releases it.
    assert.deepEqual(await holderClient.renew(), []);
    assert.equal(await holderClient.release(id), 1);
  });

  it("port lease service - the client renews what it holds and reports a lease it lost", async () => {
    const b = await bus();
    await (await service(b)).whenActive();
    const lost: string[] = [];
    const client = createLeaseClient({
      bus: b,
      workerHost: "w1",
      leaseMs: 60_000,
      renewEveryMs: 20,
      onLost: (id) => void lost.push(id),
    });
    cleanup.push(() => client.close());
    const kept = await client.acquire("workstation", holder);
    const gone = await client.acquire("workstation", holder);
    // Another client cannot release it; its holder's secret can, behind the client's back.
    const other = createLeaseClient({ bus: b, workerHost: "w1" });
    cleanup.push(() => other.close());
    await assert.rejects(other.release(gone.leaseId), LeaseNotHolderError);
    const secret = (client as unknown as { secrets: Map<string, string> }).secrets.get(gone.leaseId)!;
    await b.request(LEASE_SUBJECTS.release, encodeJson({ leaseIds: [gone.leaseId], secrets: [secret] }), {
      timeoutMs: 5_000,
    });
    for (let i = 0; i < 1000 && (lost.length === 0 || client.held()[0]!.expiresAt === kept.expiresAt); i++)
      await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(lost, [gone.leaseId]);
    assert.deepEqual(
      client.held().map((l) => l.leaseId),
      [kept.leaseId],
    );
    assert.ok(client.held()[0]!.expiresAt > kept.expiresAt, "renewed");
  });

  it("port lease service - lease-and-bind gives up after too many conflicts, and releases on a bind error", async () => {
    // A port this test holds, as the first port of a range: its grant conflicts.
    const held = createServer();
    await new Promise<void>((r) => held.listen({ host: "127.0.0.1", port: 0 }, r));
    cleanup.push(() => new Promise((r) => held.close(() => r())));
    const port = (held.address() as AddressInfo).port;
    const b = await bus();
    await (
      await service(b, { ranges: { one: { base: port, cap: port + 1 }, workstation: { base: 60000 } } })
    ).whenActive();
    const client = createLeaseClient({ bus: b, workerHost: "w1" });
    cleanup.push(() => client.close());
    await assert.rejects(
      bindLeased(client, {
        range: "one",
        holder,
        host: "127.0.0.1",
        server: () => createServer(),
        maxConflicts: 1,
      }),
      (err: unknown) => {
        assert.ok(err instanceof LeaseConflictLimitError);
        assert.deepEqual([err.code, err.busy], ["LEASE_CONFLICT_LIMIT", [port]]);
        return true;
      },
    );
    assert.deepEqual(client.held(), [], "the last grant was released");
    // 192.0.2.1 (TEST-NET-1) is no address of this machine: EADDRNOTAVAIL, not a conflict.
    await assert.rejects(
      bindLeased(client, { range: "workstation", holder, host: "192.0.2.1", server: () => createServer() }),
      (err: unknown) => {
        assert.ok(err instanceof LeaseBindError);
        assert.equal((err.cause as NodeJS.ErrnoException).code, "EADDRNOTAVAIL");
        return true;
      },
    );
    const status = await client.status();
    assert.deepEqual(
      status.leases.map((l) => l.port),
      [],
      "nothing stays leased",
    );
    assert.deepEqual(
      status.busy.map((p) => p.port),
      [port],
    );
  });

  it("port lease service - the client checks requests on the direct transport, and a grant keeps its own holder", async () => {
    const b = await bus();
    const s = await service(b);
    await s.whenActive();
    const client = createLeaseClient({ bus: s.transport(), workerHost: "w1" });
    cleanup.push(() => client.close());
    await assert.rejects(client.acquire("bad range!", holder), (err: unknown) => {
      assert.ok(err instanceof LeaseInvalidRequestError);
      assert.match(err.message, /^acquire: .*range: 1 to 32 of \[A-Za-z0-9_-\]/s);
      return true;
    });
    await assert.rejects(
      client.acquire("workstation", { run: "run-1", target: "x".repeat(257) }),
      LeaseInvalidRequestError,
    );
    await assert.rejects(client.acquire("workstation", holder, { leaseMs: 5 }), LeaseInvalidRequestError);
    const nameless = createLeaseClient({ bus: s.transport(), workerHost: "" });
    cleanup.push(() => nameless.close());
    await assert.rejects(nameless.acquire("workstation", holder), LeaseInvalidRequestError);
    const mine = { run: "run-1", target: "t1" };
    await client.acquire("workstation", mine);
    mine.target = "t2";
    await client.acquire("workstation", mine);
    const status = await client.status();
    assert.deepEqual(
      status.leases.map((l) => [l.port, l.holder.target]),
      [
        [60000, "t1"],
        [60001, "t2"],
      ],
      "nothing granted for the refused requests, and a holder changed later is not the first lease's",
    );
    const stored = await (await b.kv(LEASE_BUCKET)).get(leaseKey("w1", 60000));
    assert.deepEqual(Lease.parse(fromJson(stored!.value)).holder, { run: "run-1", target: "t1" });
  });

  it("port lease service - a direct call keeps its deadline while its write does not end", async () => {
    const b = await bus();
    const { bus: slow, open } = gated(b);
    const s = await service(slow);
    await s.whenActive();
    const client = createLeaseClient({ bus: s.transport(), workerHost: "w1", timeoutMs: 150, attemptMs: 50 });
    cleanup.push(() => client.close());
    await assert.rejects(client.acquire("workstation", holder), (err: unknown) => {
      assert.ok(err instanceof LeaseUnavailableError);
      assert.match((err.cause as Error).message, /lease acquire: no reply in time/);
      return true;
    });
    open();
  });

  it("port lease service - group commit writes a batch while another is in flight, replies in order, one write per key at a time", async () => {
    const table = new LeaseTable(leaseTableConfig());
    const writes: { key: string; op: string; done: () => void }[] = [];
    const pending = (key: string, op: string): Promise<number> =>
      new Promise((resolve) => writes.push({ key, op, done: () => resolve(writes.length) }));
    const kv = {
      writeMany: (batch: readonly KvWrite[]) =>
        Promise.all(batch.map(([key, value]) => pending(key, value === undefined ? "delete" : "put"))).then(
          () => undefined,
        ),
    } as unknown as KvStore;
    const commit = new GroupCommit({
      kv,
      active: () => true,
      lockHeld: () => true,
      fenced: () => undefined,
      now: () => 0,
      log: () => undefined,
      publish: () => undefined,
    });
    const replied: string[] = [];
    const settle = async (): Promise<void> => {
      for (let i = 0; i < 5; i++) await tick();
    };
    const grant = (leaseId: string, workerHost: string): void => {
      const changes: LeaseChange[] = [];
      table.acquire(
        {
          leaseId,
          workerHost,
          range: "workstation",
          holder,
          leaseMs: 1000,
          secret: `${leaseId}`.padEnd(22, "s"),
        },
        0,
        0,
        changes,
      );
      commit.add([[{ send: () => void replied.push(leaseId) }, null]], changes);
    };
    grant("a", "w1");
    await settle();
    grant("b", "w2");
    await settle();
    assert.deepEqual(
      writes.map((w) => w.key),
      [leaseKey("w1", 60000), leaseKey("w2", 60000)],
      "the second batch is written while the first is in flight",
    );
    writes[1]!.done();
    await settle();
    assert.deepEqual([...replied], [], "b is durable, but its reply waits for a's batch");
    writes[0]!.done();
    await settle();
    assert.deepEqual([...replied], ["a", "b"]);

    grant("c", "w3");
    await settle();
    const changes: LeaseChange[] = [];
    table.release({ leaseIds: ["c"], secrets: ["c".padEnd(22, "s")] }, changes);
    commit.add([[{ send: () => void replied.push("release c") }, null]], changes);
    await settle();
    assert.deepEqual(
      writes.slice(2).map((w) => [w.op, w.key]),
      [["put", leaseKey("w3", 60000)]],
      "the release of c waits until the write of its key ends",
    );
    writes[2]!.done();
    await settle();
    assert.deepEqual(
      writes.slice(3).map((w) => [w.op, w.key]),
      [["delete", leaseKey("w3", 60000)]],
    );
    writes[3]!.done();
    await commit.drained();
    assert.deepEqual(replied, ["a", "b", "c", "release c"]);
  });
});
