/**
 * The Bus contract: one suite of behaviour every adapter must show (`bus/bus.ts`), run against the
 * in-process adapter (`test/integration/bus-memory.test.ts`) and against NATS with a real
 * nats-server (`test/integration/bus-nats.test.ts`). NATS semantics are the reference.
 *
 * Usage:
 *
 *   defineBusContract("memory", () => openMemoryBus());
 *   defineBusContract("nats", () => openNatsBus({ servers: url }), {
 *     restart: async (bus) => { await server.restart(); return bus; },
 *   });
 *
 * `open` is called by every test, which closes what it opened; names of subjects, buckets, streams
 * and queues are unique per test, so tests are independent even when they share one server.
 *
 * `options.restart(bus)` restarts whatever keeps the bus's durable state and returns the Bus to go
 * on with. For NATS: restart the server and return the same `bus` (it reconnects by itself). For the
 * in-process adapter: close `bus` and open a new one on the same state directory, and return that.
 * The restart tests then check that every acknowledged KV write, stream event and queued job is
 * still there, through the returned bus (and, when it is the same object, through the handles
 * opened before the restart too), and that the returned bus keeps working.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { BusError, type Bus, type BusMessage, type Job } from "../../bus/bus.ts";
import { waitUntil } from "./container.ts";

export interface BusContractOptions {
  /** Restarts the bus's durable state holder; see the file comment. Adds the restart tests. */
  readonly restart?: (bus: Bus) => Promise<Bus>;
  /** A reason to skip the whole suite (e.g. no nats-server binary). */
  readonly skip?: string | boolean;
}

const MAX_PAYLOAD = 1024 * 1024;
/** Generous: a loaded CI machine is slow, and no test waits this long when things work. */
const WAIT_MS = 10_000;
const TEST = { timeout: 60_000 };

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (b: Uint8Array): string => new TextDecoder().decode(b);
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

let counter = 0;
/** A name unique to this test process and call: valid as a subject token and as a bucket name. */
function unique(prefix: string): string {
  counter++;
  return `${prefix}_${counter}_${randomBytes(4).toString("hex")}`;
}

/** Asserts that `promise` rejects with a `BusError` of `code`. */
async function rejectsWith(promise: Promise<unknown>, code: string, what?: string): Promise<void> {
  await assert.rejects(
    promise,
    (err: unknown) => {
      assert.ok(err instanceof BusError, `${what ?? code}: expected a BusError, got ${String(err)}`);
      assert.equal(err.code, code, what);
      assert.equal(err.name, "BusError");
      return true;
    },
    what,
  );
}

/** Subscribes and keeps what arrives, with a way to wait for a number of messages. */
async function collect(
  bus: Bus,
  pattern: string,
  options?: { queue?: string },
): Promise<{
  seen: BusMessage[];
  waitFor(count: number): Promise<void>;
  unsubscribe(): Promise<void>;
}> {
  const seen: BusMessage[] = [];
  const sub = await bus.subscribe(pattern, (m) => seen.push(m), options);
  return {
    seen,
    waitFor: (count) =>
      waitUntil(
        `${count} messages on ${pattern}`,
        () => (seen.length >= count ? Promise.resolve() : Promise.reject(new Error(`${seen.length} so far`))),
        WAIT_MS,
        5,
      ),
    unsubscribe: () => sub.unsubscribe(),
  };
}

/** Opens a bus for one test and closes it afterwards, whatever happens. */
async function withBus(open: () => Promise<Bus>, fn: (bus: Bus) => Promise<void>): Promise<void> {
  const bus = await open();
  try {
    await fn(bus);
  } finally {
    await bus.close();
  }
}

/** Reads a whole event stream read into `[sequence, subject, data]` triples. */
async function drain(
  events: AsyncIterable<{ sequence: number; subject: string; data: Uint8Array }>,
): Promise<[number, string, string][]> {
  const out: [number, string, string][] = [];
  for await (const e of events) out.push([e.sequence, e.subject, dec(e.data)]);
  return out;
}

/**
 * Declares `describe("bus contract - <name>")` with the contract tests.
 *
 * @example
 * defineBusContract("memory", () => openMemoryBus());
 */
export function defineBusContract(
  name: string,
  open: () => Promise<Bus>,
  options: BusContractOptions = {},
): void {
  const skip = options.skip ?? false;
  describe(`bus contract - ${name}`, { skip }, () => {
    definePubSub(open);
    defineRequestReply(open);
    defineKv(open);
    defineStream(open);
    defineWorkQueue(open);
    defineLimits(open);
    if (options.restart) defineRestart(open, options.restart);
  });
}

function definePubSub(open: () => Promise<Bus>): void {
  it("bus contract - publish reaches a subscriber with its subject and bytes, in order", TEST, () =>
    withBus(open, async (bus) => {
      const root = unique("ps");
      const c = await collect(bus, `${root}.x`);
      for (let i = 0; i < 50; i++) await bus.publish(`${root}.x`, enc(`m${i}`));
      await c.waitFor(50);
      assert.deepEqual(
        c.seen.map((m) => dec(m.data)),
        Array.from({ length: 50 }, (_, i) => `m${i}`),
      );
      assert.equal(c.seen[0]?.subject, `${root}.x`);
    }),
  );

  it("bus contract - publish with nobody listening succeeds and is not kept", TEST, () =>
    withBus(open, async (bus) => {
      const root = unique("ps");
      await bus.publish(`${root}.early`, enc("lost"));
      const c = await collect(bus, `${root}.>`);
      await bus.publish(`${root}.late`, enc("kept"));
      await c.waitFor(1);
      assert.deepEqual(
        c.seen.map((m) => m.subject),
        [`${root}.late`],
      );
    }),
  );

  it("bus contract - '*' matches exactly one token", TEST, () =>
    withBus(open, async (bus) => {
      const root = unique("ps");
      const c = await collect(bus, `${root}.*`);
      const mid = await collect(bus, `${root}.*.c`);
      await bus.publish(`${root}.a.b`, enc("too deep"));
      await bus.publish(`${root}`, enc("too short"));
      await bus.publish(`${root}.a.d`, enc("wrong last"));
      await bus.publish(`${root}.b.c`, enc("mid"));
      await bus.publish(`${root}.a`, enc("one token"));
      await c.waitFor(1);
      await mid.waitFor(1);
      assert.deepEqual(
        c.seen.map((m) => m.subject),
        [`${root}.a`],
      );
      assert.deepEqual(
        mid.seen.map((m) => m.subject),
        [`${root}.b.c`],
      );
    }),
  );

  it("bus contract - '>' matches one or more trailing tokens, not zero", TEST, () =>
    withBus(open, async (bus) => {
      const root = unique("ps");
      const c = await collect(bus, `${root}.>`);
      const exact = await collect(bus, `${root}.a.b`);
      await bus.publish(`${root}`, enc("zero"));
      await bus.publish(`${root}.a`, enc("one"));
      await bus.publish(`${root}.a.b`, enc("two"));
      await bus.publish(`${root}.a.b.c`, enc("three"));
      await c.waitFor(3);
      await exact.waitFor(1);
      assert.deepEqual(
        c.seen.map((m) => dec(m.data)),
        ["one", "two", "three"],
      );
      assert.deepEqual(
        exact.seen.map((m) => dec(m.data)),
        ["two"],
        "a literal subscription is not a pattern",
      );
    }),
  );

  it("bus contract - a queue group gives each message to exactly one member", TEST, () =>
    withBus(open, async (bus) => {
      const root = unique("ps");
      const members = [
        await collect(bus, `${root}.job`, { queue: "workers" }),
        await collect(bus, `${root}.*`, { queue: "workers" }),
        await collect(bus, `${root}.job`, { queue: "workers" }),
      ];
      const everyone = await collect(bus, `${root}.job`);
      const n = 60;
      for (let i = 0; i < n; i++) await bus.publish(`${root}.job`, enc(String(i)));
      await everyone.waitFor(n);
      // A round trip after the last message: whatever the members were going to get has arrived.
      const sync = unique("sync");
      const echo = await bus.serve(`${sync}.echo`, (m) => Promise.resolve(m.data));
      await bus.request(`${sync}.echo`, enc("sync"), { timeoutMs: WAIT_MS });
      await echo.unsubscribe();
      const got = members.flatMap((m) => m.seen.map((x) => dec(x.data)));
      assert.equal(got.length, n, "each message once in the group");
      assert.equal(new Set(got).size, n);
      assert.equal(everyone.seen.length, n, "a subscriber outside the group gets every message");
    }),
  );

  it("bus contract - unsubscribe stops delivery and is idempotent", TEST, () =>
    withBus(open, async (bus) => {
      const root = unique("ps");
      const gone = await collect(bus, `${root}.>`);
      const stays = await collect(bus, `${root}.>`);
      await bus.publish(`${root}.a`, enc("1"));
      await gone.waitFor(1);
      await gone.unsubscribe();
      await gone.unsubscribe();
      await bus.publish(`${root}.a`, enc("2"));
      await stays.waitFor(2);
      assert.deepEqual(
        gone.seen.map((m) => dec(m.data)),
        ["1"],
      );
    }),
  );

  it("bus contract - a throwing subscriber keeps getting later messages", TEST, () =>
    withBus(open, async (bus) => {
      const root = unique("ps");
      const seen: string[] = [];
      await bus.subscribe(`${root}.x`, (m) => {
        seen.push(dec(m.data));
        throw new Error("subscriber failure");
      });
      await bus.publish(`${root}.x`, enc("a"));
      await bus.publish(`${root}.x`, enc("b"));
      await waitUntil(
        "both messages",
        () => (seen.length === 2 ? Promise.resolve() : Promise.reject(new Error())),
        WAIT_MS,
        5,
      );
      assert.deepEqual(seen, ["a", "b"]);
    }),
  );
}

function defineRequestReply(open: () => Promise<Bus>): void {
  it("bus contract - request gets the handler's answer; serve takes wildcards", TEST, () =>
    withBus(open, async (bus) => {
      const root = unique("rr");
      await bus.serve(`${root}.*.echo`, (m) => Promise.resolve(enc(`${m.subject}:${dec(m.data)}`)));
      const answer = await bus.request(`${root}.a.echo`, enc("hi"), { timeoutMs: WAIT_MS });
      assert.equal(dec(answer.data), `${root}.a.echo:hi`);
      const many = await Promise.all(
        Array.from({ length: 100 }, (_, i) =>
          bus.request(`${root}.b.echo`, enc(String(i)), { timeoutMs: WAIT_MS }),
        ),
      );
      assert.deepEqual(
        many.map((m) => dec(m.data)),
        Array.from({ length: 100 }, (_, i) => `${root}.b.echo:${i}`),
      );
    }),
  );

  it("bus contract - request with nobody serving fails with NO_RESPONDERS", TEST, () =>
    withBus(open, async (bus) => {
      const root = unique("rr");
      const err = await bus.request(`${root}.nobody`, enc("x"), { timeoutMs: WAIT_MS }).then(
        () => assert.fail("answered"),
        (e: unknown) => e,
      );
      assert.ok(err instanceof BusError);
      assert.equal(err.code, "NO_RESPONDERS");
      assert.equal(err.retryable, true);
      const srv = await bus.serve(`${root}.gone`, () => Promise.resolve(enc("ok")));
      await srv.unsubscribe();
      await rejectsWith(
        bus.request(`${root}.gone`, enc("x"), { timeoutMs: WAIT_MS }),
        "NO_RESPONDERS",
        "after unsubscribe",
      );
    }),
  );

  it("bus contract - request past its deadline fails with timeout", TEST, () =>
    withBus(open, async (bus) => {
      const root = unique("rr");
      await bus.serve(`${root}.slow`, () => new Promise<Uint8Array>(() => undefined));
      await bus.serve(`${root}.fails`, () => Promise.reject(new Error("handler failure")));
      const err = await bus.request(`${root}.slow`, enc("x"), { timeoutMs: 200 }).then(
        () => assert.fail("answered"),
        (e: unknown) => e,
      );
      assert.ok(err instanceof BusError);
      assert.equal(err.code, "TIMEOUT");
      assert.equal(err.retryable, true);
      await rejectsWith(
        bus.request(`${root}.fails`, enc("x"), { timeoutMs: 200 }),
        "TIMEOUT",
        "a throwing handler answers nothing",
      );
    }),
  );

  it("bus contract - an aborted request rejects with the signal's reason", TEST, () =>
    withBus(open, async (bus) => {
      const root = unique("rr");
      await bus.serve(`${root}.slow`, () => new Promise<Uint8Array>(() => undefined));
      const controller = new AbortController();
      const reason = new Error("caller gave up");
      const pending = bus.request(`${root}.slow`, enc("x"), {
        timeoutMs: WAIT_MS,
        signal: controller.signal,
      });
      setTimeout(() => controller.abort(reason), 20);
      await assert.rejects(pending, (err: unknown) => err === reason);
      await assert.rejects(
        bus.request(`${root}.slow`, enc("x"), { timeoutMs: WAIT_MS, signal: AbortSignal.abort(reason) }),
        (err: unknown) => err === reason,
      );
    }),
  );

  it("bus contract - members of a serving queue group share requests, one handler each", TEST, () =>
    withBus(open, async (bus) => {
      const root = unique("rr");
      const calls = [0, 0, 0];
      for (let i = 0; i < calls.length; i++) {
        await bus.serve(
          `${root}.svc`,
          () => {
            calls[i] = (calls[i] ?? 0) + 1;
            return Promise.resolve(enc(String(i)));
          },
          { queue: "svc" },
        );
      }
      const n = 90;
      await Promise.all(
        Array.from({ length: n }, () => bus.request(`${root}.svc`, enc("x"), { timeoutMs: WAIT_MS })),
      );
      assert.equal(
        calls.reduce((a, b) => a + b, 0),
        n,
        "each request handled once",
      );
    }),
  );
}

function defineKv(open: () => Promise<Bus>): void {
  it("bus contract - kv put and get; revisions increase per bucket from 1", TEST, () =>
    withBus(open, async (bus) => {
      const kv = await bus.kv(unique("kv"));
      const other = await bus.kv(unique("kv"));
      assert.equal(await kv.get("a"), undefined);
      const r1 = await kv.put("a", enc("1"));
      const r2 = await kv.put("b.c", enc("2"));
      const r3 = await kv.put("a", enc("3"));
      assert.deepEqual([r1, r2, r3], [1, 2, 3]);
      assert.equal(await other.put("a", enc("x")), 1, "another bucket counts on its own");
      const a = await kv.get("a");
      assert.deepEqual(
        { key: a?.key, value: dec(a?.value ?? enc("")), revision: a?.revision },
        { key: "a", value: "3", revision: 3 },
      );
      assert.equal((await kv.get("b.c"))?.revision, 2);
    }),
  );

  it("bus contract - kv create only when missing or deleted", TEST, () =>
    withBus(open, async (bus) => {
      const kv = await bus.kv(unique("kv"));
      const r1 = await kv.create("k", enc("first"));
      await rejectsWith(kv.create("k", enc("second")), "REVISION_MISMATCH");
      assert.equal(dec((await kv.get("k"))?.value ?? enc("")), "first");
      await kv.delete("k");
      assert.equal(await kv.get("k"), undefined);
      const r3 = await kv.create("k", enc("again"));
      assert.equal(r3, r1 + 2, "the delete marker took a revision");
      assert.equal(dec((await kv.get("k"))?.value ?? enc("")), "again");
    }),
  );

  it("bus contract - kv update is compare-and-set on the revision", TEST, () =>
    withBus(open, async (bus) => {
      const kv = await bus.kv(unique("kv"));
      await rejectsWith(kv.update("missing", enc("x"), 1), "REVISION_MISMATCH", "missing key");
      const r1 = await kv.put("k", enc("1"));
      const r2 = await kv.update("k", enc("2"), r1);
      assert.ok(r2 > r1);
      await rejectsWith(kv.update("k", enc("stale"), r1), "REVISION_MISMATCH", "stale revision");
      const mismatch = await kv.update("k", enc("stale"), r1).catch((e: unknown) => e);
      assert.ok(mismatch instanceof BusError && mismatch.retryable === false);
      assert.deepEqual(
        { value: dec((await kv.get("k"))?.value ?? enc("")), revision: (await kv.get("k"))?.revision },
        { value: "2", revision: r2 },
      );
    }),
  );

  it("bus contract - kv concurrent updates with one revision: exactly one wins", TEST, () =>
    withBus(open, async (bus) => {
      const name = unique("kv");
      const kv = await bus.kv(name);
      const other = await bus.kv(name);
      let rev = await kv.put("k", enc("start"));
      for (let round = 0; round < 10; round++) {
        const results = await Promise.allSettled([
          kv.update("k", enc(`a${round}`), rev),
          other.update("k", enc(`b${round}`), rev),
        ]);
        const won = results.filter((r) => r.status === "fulfilled");
        const lost = results.filter((r) => r.status === "rejected");
        assert.equal(won.length, 1, `round ${round}: one winner`);
        const reason: unknown = lost[0]?.reason;
        assert.ok(reason instanceof BusError && reason.code === "REVISION_MISMATCH");
        const entry = await kv.get("k");
        const winner = results[0]?.status === "fulfilled" ? `a${round}` : `b${round}`;
        assert.equal(dec(entry?.value ?? enc("")), winner);
        rev = entry?.revision ?? 0;
      }
      const creates = await Promise.allSettled([
        kv.create("fresh", enc("a")),
        other.create("fresh", enc("b")),
      ]);
      assert.equal(creates.filter((r) => r.status === "fulfilled").length, 1, "one create wins");
    }),
  );

  it("bus contract - kv delete, unconditional and compare-and-set", TEST, () =>
    withBus(open, async (bus) => {
      const kv = await bus.kv(unique("kv"));
      const r1 = await kv.put("k", enc("v"));
      await rejectsWith(kv.delete("k", r1 + 5), "REVISION_MISMATCH", "wrong revision");
      assert.equal(dec((await kv.get("k"))?.value ?? enc("")), "v", "kept after a failed delete");
      await kv.delete("k", r1);
      assert.equal(await kv.get("k"), undefined);
      await rejectsWith(kv.delete("k", r1), "REVISION_MISMATCH", "already deleted");
      await kv.delete("never-there");
      assert.deepEqual(await kv.keys(), []);
      const r = await kv.put("k", enc("back"));
      assert.ok(r > r1);
    }),
  );

  it("bus contract - kv keys lists live keys, with a wildcard filter", TEST, () =>
    withBus(open, async (bus) => {
      const kv = await bus.kv(unique("kv"), { history: 5 });
      for (const k of ["a.1", "a.2", "a.b.3", "b.1", "gone"]) await kv.put(k, enc(k));
      await kv.put("a.1", enc("again"));
      await kv.delete("gone");
      const sorted = async (filter?: string): Promise<string[]> => (await kv.keys(filter)).sort();
      assert.deepEqual(await sorted(), ["a.1", "a.2", "a.b.3", "b.1"]);
      assert.deepEqual(await sorted("a.*"), ["a.1", "a.2"]);
      assert.deepEqual(await sorted("a.>"), ["a.1", "a.2", "a.b.3"]);
      assert.deepEqual(await sorted("*.1"), ["a.1", "b.1"]);
      assert.deepEqual(await sorted("c.>"), []);
      assert.equal(dec((await kv.get("a.1"))?.value ?? enc("")), "again", "the latest value, with history");
    }),
  );

  it("bus contract - kv writeMany puts and deletes in order; a bad key fails it before any write", TEST, () =>
    withBus(open, async (bus) => {
      const kv = await bus.kv(unique("kv"));
      await kv.put("old", enc("o"));
      const before = await kv.put("twice", enc("0"));
      await kv.writeMany([
        ["a", enc("1")],
        ["twice", enc("first")],
        ["old", undefined],
        ["twice", enc("second")],
        ["never-there", undefined],
      ]);
      assert.deepEqual((await kv.keys()).sort(), ["a", "twice"]);
      const twice = await kv.get("twice");
      assert.equal(dec(twice?.value ?? enc("")), "second", "the later write of a key wins");
      assert.ok((twice?.revision ?? 0) > before, "the writes took new revisions");
      await rejectsWith(
        kv.writeMany([
          ["b", enc("2")],
          ["bad key", enc("3")],
        ]),
        "BAD_SUBJECT",
        "a key with a space",
      );
      await rejectsWith(
        kv.writeMany([
          ["c", enc("4")],
          ["d", new Uint8Array(MAX_PAYLOAD + 1)],
        ]),
        "MESSAGE_TOO_LARGE",
        "a value over the limit",
      );
      assert.deepEqual((await kv.keys()).sort(), ["a", "twice"], "nothing of a refused batch was written");
      await kv.writeMany([]);
    }),
  );

  it("bus contract - kv handles of one bucket share it; values are copies", TEST, () =>
    withBus(open, async (bus) => {
      const name = unique("kv");
      const one = await bus.kv(name);
      const value = enc("original");
      await one.put("k", value);
      value.fill(0);
      const two = await bus.kv(name);
      const got = await two.get("k");
      assert.equal(dec(got?.value ?? enc("")), "original");
      got?.value.fill(0);
      assert.equal(dec((await one.get("k"))?.value ?? enc("")), "original");
    }),
  );
}

function defineStream(open: () => Promise<Bus>): void {
  it("bus contract - stream append numbers from 1; read returns all in order", TEST, () =>
    withBus(open, async (bus) => {
      const root = unique("st");
      const stream = await bus.stream(unique("st"), { subjects: [`${root}.>`] });
      assert.equal(await stream.lastSequence(), 0);
      assert.deepEqual(await drain(stream.read()), []);
      const before = Date.now();
      for (let i = 1; i <= 5; i++) assert.equal(await stream.append(`${root}.e${i % 2}`, enc(`v${i}`)), i);
      assert.equal(await stream.lastSequence(), 5);
      const all: { sequence: number; subject: string; data: string; time: number }[] = [];
      for await (const e of stream.read()) all.push({ ...e, data: dec(e.data) });
      assert.deepEqual(
        all.map((e) => [e.sequence, e.subject, e.data]),
        [1, 2, 3, 4, 5].map((i) => [i, `${root}.e${i % 2}`, `v${i}`]),
      );
      for (const e of all)
        assert.ok(e.time >= before - 1_000 && e.time <= Date.now() + 1_000, "time is ms since the epoch");
    }),
  );

  it("bus contract - stream read from a middle sequence, from a time, and filtered", TEST, () =>
    withBus(open, async (bus) => {
      const root = unique("st");
      const stream = await bus.stream(unique("st"), { subjects: [`${root}.a.*`, `${root}.b`] });
      for (let i = 1; i <= 4; i++) await stream.append(i % 2 ? `${root}.a.x` : `${root}.b`, enc(`v${i}`));
      await sleep(30);
      for (let i = 5; i <= 8; i++) await stream.append(i % 2 ? `${root}.a.y` : `${root}.b`, enc(`v${i}`));
      assert.deepEqual(
        (await drain(stream.read({ sequence: 6 }))).map((e) => e[0]),
        [6, 7, 8],
      );
      const fifth = (await drain(stream.read({ sequence: 5 })))[0];
      assert.equal(fifth?.[0], 5);
      let t5 = 0;
      for await (const e of stream.read({ sequence: 5 })) {
        t5 = e.time;
        break;
      }
      assert.deepEqual(
        (await drain(stream.read({ time: t5 }))).map((e) => e[0]),
        [5, 6, 7, 8],
        "from the time of event 5 (30 ms after event 4)",
      );
      assert.deepEqual(
        (await drain(stream.read({ time: Date.now() + 60_000 }))).map((e) => e[0]),
        [],
        "from a time in the future",
      );
      assert.deepEqual(
        (await drain(stream.read({ filter: `${root}.a.*` }))).map((e) => e[0]),
        [1, 3, 5, 7],
      );
      assert.deepEqual(
        (await drain(stream.read({ sequence: 4, filter: `${root}.b` }))).map((e) => e[0]),
        [4, 6, 8],
      );
      assert.deepEqual(
        (await drain(stream.read({ time: t5, filter: `${root}.a.y` }))).map((e) => e[0]),
        [5, 7],
      );
      assert.deepEqual(await drain(stream.read({ sequence: 100 })), []);
    }),
  );

  it("bus contract - stream read ends at the last event stored when it started", TEST, () =>
    withBus(open, async (bus) => {
      const root = unique("st");
      const stream = await bus.stream(unique("st"), { subjects: [`${root}.>`] });
      for (let i = 1; i <= 3; i++) await stream.append(`${root}.x`, enc(String(i)));
      const seen: number[] = [];
      for await (const e of stream.read()) {
        seen.push(e.sequence);
        if (e.sequence === 1) await stream.append(`${root}.x`, enc("later"));
      }
      assert.deepEqual(seen, [1, 2, 3]);
      assert.equal(await stream.lastSequence(), 4);
    }),
  );

  it("bus contract - stream keeps at most maxEvents, dropping the oldest", TEST, () =>
    withBus(open, async (bus) => {
      const root = unique("st");
      const stream = await bus.stream(unique("st"), { subjects: [`${root}.>`], maxEvents: 3 });
      for (let i = 1; i <= 5; i++) await stream.append(`${root}.x`, enc(String(i)));
      assert.deepEqual(
        (await drain(stream.read())).map((e) => [e[0], e[2]]),
        [
          [3, "3"],
          [4, "4"],
          [5, "5"],
        ],
      );
      assert.equal(await stream.lastSequence(), 5);
    }),
  );

  it("bus contract - stream keeps at most maxBytes, dropping the oldest, the newest always", TEST, () =>
    withBus(open, async (bus) => {
      const root = unique("st");
      const stream = await bus.stream(unique("st"), { subjects: [`${root}.>`], maxBytes: 4096 });
      for (let i = 1; i <= 10; i++) await stream.append(`${root}.x`, enc(String(i).padEnd(1000, ".")));
      const held = (await drain(stream.read())).map((e) => e[0]);
      assert.ok(held.length >= 1 && held.length <= 4, `held ${held.join(",")}`);
      assert.deepEqual(
        held,
        Array.from({ length: held.length }, (_, i) => 11 - held.length + i),
      );
      await stream.append(`${root}.x`, enc("x".repeat(3000)));
      assert.equal(await stream.lastSequence(), 11);
      assert.ok(
        (await drain(stream.read())).some((e) => e[0] === 11),
        "the newest is kept",
      );
    }),
  );

  it("bus contract - stream refuses a subject it does not cover; subscribers see appends", TEST, () =>
    withBus(open, async (bus) => {
      const root = unique("st");
      const name = unique("st");
      const stream = await bus.stream(name, { subjects: [`${root}.in.*`] });
      await rejectsWith(stream.append(`${root}.out`, enc("x")), "BAD_SUBJECT");
      await rejectsWith(stream.append(`${root}.in.a.b`, enc("x")), "BAD_SUBJECT");
      const c = await collect(bus, `${root}.in.*`);
      await stream.append(`${root}.in.a`, enc("seen live"));
      await c.waitFor(1);
      assert.equal(dec(c.seen[0]?.data ?? enc("")), "seen live");
      const again = await bus.stream(name, { subjects: [`${root}.in.*`] });
      assert.equal(await again.lastSequence(), 1, "a second handle sees the same stream");
    }),
  );
}

function defineWorkQueue(open: () => Promise<Bus>): void {
  it("bus contract - work queue hands out jobs in order, once, until acked", TEST, () =>
    withBus(open, async (bus) => {
      const queue = await bus.workQueue(unique("wq"), { ackWaitMs: 30_000, maxDeliver: 3 });
      assert.equal(await queue.next({ timeoutMs: 100 }), undefined, "empty");
      for (const j of ["a", "b", "c"]) await queue.push(enc(j));
      assert.equal(await queue.pending(), 3);
      const jobs: Job[] = [];
      for (let i = 0; i < 3; i++) {
        const job = await queue.next({ timeoutMs: WAIT_MS });
        assert.ok(job);
        jobs.push(job);
      }
      assert.deepEqual(
        jobs.map((j) => [dec(j.data), j.deliveryCount]),
        [
          ["a", 1],
          ["b", 1],
          ["c", 1],
        ],
      );
      assert.equal(await queue.pending(), 3, "unacknowledged jobs count as pending");
      assert.equal(await queue.next({ timeoutMs: 100 }), undefined, "all taken");
      for (const j of jobs) await j.ack();
      assert.equal(await queue.pending(), 0);
    }),
  );

  it("bus contract - work queue next waits for a job pushed later; one taker per job", TEST, () =>
    withBus(open, async (bus) => {
      const name = unique("wq");
      const queue = await bus.workQueue(name, { ackWaitMs: 30_000, maxDeliver: 3 });
      const other = await bus.workQueue(name, { ackWaitMs: 30_000, maxDeliver: 3 });
      const takers = [queue.next({ timeoutMs: WAIT_MS }), other.next({ timeoutMs: 1_500 })];
      await sleep(50);
      await queue.push(enc("only"));
      const got = await Promise.all(takers);
      const taken = got.filter((j) => j !== undefined);
      assert.equal(taken.length, 1);
      assert.equal(dec(taken[0]?.data ?? enc("")), "only");
      await taken[0]?.ack();
    }),
  );

  it("bus contract - work queue redelivers after ackWait and drops after maxDeliver", TEST, () =>
    withBus(open, async (bus) => {
      const queue = await bus.workQueue(unique("wq"), { ackWaitMs: 300, maxDeliver: 2 });
      await queue.push(enc("flaky"));
      const first = await queue.next({ timeoutMs: WAIT_MS });
      assert.equal(first?.deliveryCount, 1);
      const second = await queue.next({ timeoutMs: WAIT_MS });
      assert.equal(dec(second?.data ?? enc("")), "flaky");
      assert.equal(second?.deliveryCount, 2);
      assert.equal(await queue.next({ timeoutMs: 1_200 }), undefined, "dropped after two deliveries");
      assert.equal(await queue.pending(), 0);
    }),
  );

  it("bus contract - work queue ack is final: no redelivery after ackWait", TEST, () =>
    withBus(open, async (bus) => {
      const queue = await bus.workQueue(unique("wq"), { ackWaitMs: 200, maxDeliver: 5 });
      await queue.push(enc("done"));
      const job = await queue.next({ timeoutMs: WAIT_MS });
      await job?.ack();
      await job?.ack();
      assert.equal(await queue.next({ timeoutMs: 800 }), undefined);
      assert.equal(await queue.pending(), 0);
    }),
  );

  it("bus contract - work queue nak redelivers at once, or after its delay", TEST, () =>
    withBus(open, async (bus) => {
      const queue = await bus.workQueue(unique("wq"), { ackWaitMs: 30_000, maxDeliver: 5 });
      await queue.push(enc("retry"));
      const first = await queue.next({ timeoutMs: WAIT_MS });
      await first?.nak();
      const second = await queue.next({ timeoutMs: WAIT_MS });
      assert.equal(second?.deliveryCount, 2);
      await second?.nak(1_500);
      assert.equal(await queue.next({ timeoutMs: 300 }), undefined, "not before the delay");
      assert.equal(await queue.pending(), 1, "a delayed job is still pending");
      const third = await queue.next({ timeoutMs: WAIT_MS });
      assert.equal(dec(third?.data ?? enc("")), "retry");
      assert.equal(third?.deliveryCount, 3);
      await third?.ack();
    }),
  );

  it("bus contract - work queue nak on the last delivery drops the job", TEST, () =>
    withBus(open, async (bus) => {
      const queue = await bus.workQueue(unique("wq"), { ackWaitMs: 30_000, maxDeliver: 1 });
      await queue.push(enc("once"));
      const job = await queue.next({ timeoutMs: WAIT_MS });
      await job?.nak();
      assert.equal(await queue.next({ timeoutMs: 500 }), undefined);
      assert.equal(await queue.pending(), 0);
    }),
  );

  it("bus contract - work queue working() restarts the ack deadline", TEST, () =>
    withBus(open, async (bus) => {
      const queue = await bus.workQueue(unique("wq"), { ackWaitMs: 1_000, maxDeliver: 5 });
      await queue.push(enc("long"));
      const job = await queue.next({ timeoutMs: WAIT_MS });
      assert.ok(job);
      const rival = queue.next({ timeoutMs: 1_800 });
      for (let i = 0; i < 8; i++) {
        await sleep(200);
        await job.working();
      }
      assert.equal(await rival, undefined, "not redelivered while working() is called");
      await job.ack();
      assert.equal(await queue.pending(), 0);
    }),
  );
}

function defineLimits(open: () => Promise<Bus>): void {
  it("bus contract - payloads over 1 MiB are MESSAGE_TOO_LARGE everywhere; 1 MiB publishes", TEST, () =>
    withBus(open, async (bus) => {
      const root = unique("lim");
      const big = new Uint8Array(MAX_PAYLOAD + 1);
      const kv = await bus.kv(unique("lim"));
      const stream = await bus.stream(unique("lim"), { subjects: [`${root}.>`] });
      const queue = await bus.workQueue(unique("lim"), { ackWaitMs: 1_000, maxDeliver: 1 });
      await bus.serve(`${root}.svc`, () => Promise.resolve(enc("ok")));
      await rejectsWith(bus.publish(`${root}.x`, big), "MESSAGE_TOO_LARGE", "publish");
      await rejectsWith(
        bus.request(`${root}.svc`, big, { timeoutMs: WAIT_MS }),
        "MESSAGE_TOO_LARGE",
        "request",
      );
      await rejectsWith(kv.put("k", big), "MESSAGE_TOO_LARGE", "put");
      await rejectsWith(kv.create("k", big), "MESSAGE_TOO_LARGE", "create");
      await rejectsWith(kv.update("k", big, 1), "MESSAGE_TOO_LARGE", "update");
      await rejectsWith(stream.append(`${root}.x`, big), "MESSAGE_TOO_LARGE", "append");
      await rejectsWith(queue.push(big), "MESSAGE_TOO_LARGE", "push");
      assert.deepEqual(await kv.keys(), []);
      assert.equal(await stream.lastSequence(), 0);
      assert.equal(await queue.pending(), 0);
      const c = await collect(bus, `${root}.max`);
      await bus.publish(`${root}.max`, new Uint8Array(MAX_PAYLOAD).fill(7));
      await c.waitFor(1);
      assert.equal(c.seen[0]?.data.length, MAX_PAYLOAD);
    }),
  );

  it("bus contract - invalid subjects and names are BAD_SUBJECT", TEST, () =>
    withBus(open, async (bus) => {
      for (const s of ["", "a..b", "a.", ".a", "a b", "a.*", "a.>", "ä"]) {
        await rejectsWith(bus.publish(s, enc("x")), "BAD_SUBJECT", `publish ${JSON.stringify(s)}`);
        await rejectsWith(
          bus.request(s, enc("x"), { timeoutMs: 500 }),
          "BAD_SUBJECT",
          `request ${JSON.stringify(s)}`,
        );
      }
      for (const p of ["", "a..b", "a.>.b", "a b", "a.b*"]) {
        await rejectsWith(
          bus.subscribe(p, () => undefined),
          "BAD_SUBJECT",
          `subscribe ${JSON.stringify(p)}`,
        );
        await rejectsWith(
          bus.serve(p, () => Promise.resolve(enc(""))),
          "BAD_SUBJECT",
          `serve ${JSON.stringify(p)}`,
        );
      }
      for (const n of ["", "a.b", "a b", "a*", "a/b"]) {
        await rejectsWith(bus.kv(n), "BAD_SUBJECT", `kv ${JSON.stringify(n)}`);
        await rejectsWith(
          bus.stream(n, { subjects: ["ok.x"] }),
          "BAD_SUBJECT",
          `stream ${JSON.stringify(n)}`,
        );
        await rejectsWith(
          bus.workQueue(n, { ackWaitMs: 1_000, maxDeliver: 1 }),
          "BAD_SUBJECT",
          `queue ${JSON.stringify(n)}`,
        );
      }
      await rejectsWith(bus.stream(unique("bad"), { subjects: ["a..b"] }), "BAD_SUBJECT", "stream subjects");
      const kv = await bus.kv(unique("bad"));
      for (const k of ["", "a b", "a..b", "a.*", "a.>"]) {
        await rejectsWith(kv.put(k, enc("x")), "BAD_SUBJECT", `put ${JSON.stringify(k)}`);
        await rejectsWith(kv.get(k), "BAD_SUBJECT", `get ${JSON.stringify(k)}`);
      }
      await rejectsWith(kv.keys("a..b"), "BAD_SUBJECT", "keys filter");
      const stream = await bus.stream(unique("bad"), { subjects: ["okroot.>"] });
      await rejectsWith(drain(stream.read({ filter: "a..b" })), "BAD_SUBJECT", "read filter");
    }),
  );

  it("bus contract - after close every call fails with closed", TEST, async () => {
    const bus = await open();
    const root = unique("cl");
    const kv = await bus.kv(unique("cl"));
    const stream = await bus.stream(unique("cl"), { subjects: [`${root}.>`] });
    const queue = await bus.workQueue(unique("cl"), { ackWaitMs: 1_000, maxDeliver: 1 });
    await bus.close();
    await bus.close();
    await rejectsWith(bus.publish(`${root}.x`, enc("x")), "BUS_CLOSED", "publish");
    await rejectsWith(
      bus.subscribe(`${root}.x`, () => undefined),
      "BUS_CLOSED",
      "subscribe",
    );
    await rejectsWith(bus.request(`${root}.x`, enc("x"), { timeoutMs: 500 }), "BUS_CLOSED", "request");
    await rejectsWith(
      bus.serve(`${root}.x`, () => Promise.resolve(enc(""))),
      "BUS_CLOSED",
      "serve",
    );
    await rejectsWith(bus.kv(unique("cl")), "BUS_CLOSED", "kv");
    await rejectsWith(bus.stream(unique("cl"), { subjects: [`${root}.>`] }), "BUS_CLOSED", "stream");
    await rejectsWith(
      bus.workQueue(unique("cl"), { ackWaitMs: 1_000, maxDeliver: 1 }),
      "BUS_CLOSED",
      "workQueue",
    );
    await rejectsWith(kv.get("k"), "BUS_CLOSED", "kv.get");
    await rejectsWith(kv.put("k", enc("x")), "BUS_CLOSED", "kv.put");
    await rejectsWith(kv.keys(), "BUS_CLOSED", "kv.keys");
    await rejectsWith(kv.writeMany([]), "BUS_CLOSED", "kv.writeMany");
    await rejectsWith(stream.append(`${root}.x`, enc("x")), "BUS_CLOSED", "stream.append");
    await rejectsWith(stream.lastSequence(), "BUS_CLOSED", "stream.lastSequence");
    await rejectsWith(drain(stream.read()), "BUS_CLOSED", "stream.read");
    await rejectsWith(queue.push(enc("x")), "BUS_CLOSED", "queue.push");
    await rejectsWith(queue.next({ timeoutMs: 500 }), "BUS_CLOSED", "queue.next");
  });

  it("bus contract - close ends a request in flight and a waiting next with closed", TEST, async () => {
    const bus = await open();
    const root = unique("cl");
    await bus.serve(`${root}.slow`, () => new Promise<Uint8Array>(() => undefined));
    const queue = await bus.workQueue(unique("cl"), { ackWaitMs: 1_000, maxDeliver: 1 });
    const outcome = (p: Promise<unknown>): Promise<unknown> =>
      p.then(
        (value) => value,
        (err: unknown) => err,
      );
    const request = outcome(bus.request(`${root}.slow`, enc("x"), { timeoutMs: 5_000 }));
    const next = outcome(queue.next({ timeoutMs: 5_000 }));
    await sleep(50);
    await bus.close();
    const [requestEnd, nextEnd] = await Promise.all([request, next]);
    assert.ok(requestEnd instanceof BusError, "the request fails");
    assert.equal(requestEnd.code, "BUS_CLOSED", "a request cut by close() fails with closed");
    // NATS ends a pull when its connection drains: nothing came, or closed.
    assert.ok(nextEnd === undefined || (nextEnd instanceof BusError && nextEnd.code === "BUS_CLOSED"));
  });
}

function defineRestart(open: () => Promise<Bus>, restart: (bus: Bus) => Promise<Bus>): void {
  it("bus contract - acknowledged KV writes survive a restart and revisions go on", TEST, async () => {
    let bus = await open();
    try {
      const name = unique("rs");
      const kv = await bus.kv(name);
      await kv.put("a", enc("1"));
      const rb = await kv.create("b", enc("2"));
      const rb2 = await kv.update("b", enc("3"), rb);
      await kv.put("gone", enc("x"));
      await kv.delete("gone");
      const last = await kv.put("c.d", enc("4"));
      const before = bus;
      bus = await restart(bus);
      const handles = bus === before ? [kv, await bus.kv(name)] : [await bus.kv(name)];
      for (const h of handles) {
        assert.deepEqual((await h.keys()).sort(), ["a", "b", "c.d"]);
        assert.equal(dec((await h.get("b"))?.value ?? enc("")), "3");
        assert.equal((await h.get("b"))?.revision, rb2);
        assert.equal(await h.get("gone"), undefined);
      }
      const kv2 = handles[handles.length - 1];
      assert.ok(kv2);
      const rb3 = await kv2.update("b", enc("5"), rb2);
      assert.ok(rb3 > last, "revisions go on from where they were");
      await rejectsWith(kv2.update("b", enc("6"), rb2), "REVISION_MISMATCH");
      await kv2.create("gone", enc("back"));
    } finally {
      await bus.close();
    }
  });

  it("bus contract - acknowledged stream events survive a restart; sequences go on", TEST, async () => {
    let bus = await open();
    try {
      const root = unique("rs");
      const name = unique("rs");
      const stream = await bus.stream(name, { subjects: [`${root}.>`] });
      for (let i = 1; i <= 5; i++) await stream.append(`${root}.e${i % 2}`, enc(`v${i}`));
      bus = await restart(bus);
      const again = await bus.stream(name, { subjects: [`${root}.>`] });
      assert.equal(await again.lastSequence(), 5);
      assert.equal(await again.append(`${root}.e0`, enc("v6")), 6);
      assert.deepEqual(await drain(again.read({ sequence: 2, filter: `${root}.e0` })), [
        [2, `${root}.e0`, "v2"],
        [4, `${root}.e0`, "v4"],
        [6, `${root}.e0`, "v6"],
      ]);
    } finally {
      await bus.close();
    }
  });

  it("bus contract - queued and unacknowledged jobs survive a restart; acked ones do not", TEST, async () => {
    let bus = await open();
    try {
      const name = unique("rs");
      const opts = { ackWaitMs: 500, maxDeliver: 5 };
      const queue = await bus.workQueue(name, opts);
      for (const j of ["acked", "taken", "waiting"]) await queue.push(enc(j));
      const acked = await queue.next({ timeoutMs: WAIT_MS });
      await acked?.ack();
      const taken = await queue.next({ timeoutMs: WAIT_MS });
      assert.equal(dec(taken?.data ?? enc("")), "taken");
      bus = await restart(bus);
      const again = await bus.workQueue(name, opts);
      const got: string[] = [];
      for (;;) {
        const job = await again.next({ timeoutMs: 2_000 });
        if (!job) break;
        got.push(dec(job.data));
        await job.ack();
      }
      assert.deepEqual(got.sort(), ["taken", "waiting"]);
      assert.equal(await again.pending(), 0);
    } finally {
      await bus.close();
    }
  });

  it("bus contract - the bus works for messages and requests after a restart", TEST, async () => {
    let bus = await open();
    try {
      bus = await restart(bus);
      const root = unique("rs");
      const live = bus;
      await live.serve(`${root}.svc`, (m) => Promise.resolve(m.data));
      const c = await collect(live, `${root}.ev`);
      // Core messages are at most once: one published while a NATS client is still finding out
      // that its server went away is lost, so publish until one arrives.
      await waitUntil(
        "a message after the restart",
        async () => {
          await live.publish(`${root}.ev`, enc("after"));
          await sleep(20);
          if (c.seen.length === 0) throw new Error("nothing yet");
        },
        WAIT_MS,
        50,
      );
      let answer: BusMessage | undefined;
      await waitUntil(
        "an answer after the restart",
        async () => {
          try {
            answer = await live.request(`${root}.svc`, enc("ping"), { timeoutMs: 1_000 });
          } catch (err) {
            if (err instanceof BusError && err.retryable) throw err;
            answer = undefined;
            assert.fail(`not a retryable error: ${String(err)}`);
          }
        },
        WAIT_MS,
        50,
      );
      assert.equal(dec(answer?.data ?? enc("")), "ping");
    } finally {
      await bus.close();
    }
  });
}
