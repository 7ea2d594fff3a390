/**
 * The NATS adapter of the Bus against a real local nats-server with JetStream: the Bus contract
 * (with its restart tests), then what is particular to NATS: a restart amid a stream of
 * acknowledged writes, lost acknowledgements, an unreachable server, JetStream headers near the
 * payload limit, `openBus` choosing the adapter.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { connect as tcpConnect, createServer, type Socket } from "node:net";
import { BusError, type Bus, type BusMessage } from "../../bus/bus.ts";
import { openNatsBus } from "../../bus/nats.ts";
import { openBus } from "../../bus/open.ts";
import { waitUntil } from "../support/container.ts";
import { defineBusContract } from "../support/bus-contract.ts";
import { natsBinarySkipReason, startNatsProcess, type LocalNatsServer } from "../support/nats.ts";

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (b: Uint8Array): string => new TextDecoder().decode(b);

/** Whether `err` is the retryable BusError a caller may meet while the server is away. */
function isRetryable(err: unknown): boolean {
  return err instanceof BusError && err.retryable;
}

/** A loopback port nobody listens on (bound, then released). */
async function closedPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve) => srv.listen(0, "127.0.0.1", resolve));
  const address = srv.address();
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  assert.ok(address && typeof address === "object");
  return address.port;
}

/**
 * A loopback TCP proxy in front of the server that can swallow what the server sends (so that
 * acknowledgements are lost after the server has stored a write) and cut its connections.
 */
async function startProxy(upstreamPort: number): Promise<{
  port: number;
  swallow: boolean;
  cut(): void;
  close(): Promise<void>;
}> {
  const sockets = new Set<Socket>();
  const srv = createServer((client) => {
    const upstream = tcpConnect(upstreamPort, "127.0.0.1");
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on("close", () => sockets.delete(s));
      s.on("error", () => undefined);
    }
    client.on("data", (d) => upstream.write(d));
    upstream.on("data", (d) => {
      if (!proxy.swallow) client.write(d);
    });
    client.on("close", () => upstream.destroy());
    upstream.on("close", () => client.destroy());
  });
  await new Promise<void>((resolve) => srv.listen(0, "127.0.0.1", resolve));
  const address = srv.address();
  assert.ok(address && typeof address === "object");
  const proxy = {
    port: address.port,
    swallow: false,
    cut(): void {
      for (const s of sockets) s.destroy();
      proxy.swallow = false;
    },
    close: async (): Promise<void> => {
      proxy.cut();
      await new Promise<void>((resolve) => srv.close(() => resolve()));
    },
  };
  return proxy;
}

const skip = await natsBinarySkipReason();
/** One server for the whole file (tests run one after the other); restarted by some tests. */
const shared: LocalNatsServer | undefined = skip === undefined ? await startNatsProcess() : undefined;
after(async () => {
  await shared?.dispose();
});

defineBusContract("nats", () => openNatsBus({ servers: shared?.url ?? "", name: "bus-contract" }), {
  skip: skip ?? false,
  restart: async (bus) => {
    await shared?.restart();
    return bus;
  },
});

describe("bus nats - adapter", { skip }, () => {
  let server: LocalNatsServer;
  let bus: Bus;
  let other: Bus;
  before(async () => {
    assert.ok(shared, "a server was started");
    server = shared;
    bus = await openNatsBus({ servers: server.url, name: "bus-nats-test", timeoutMs: 15_000 });
    other = await openNatsBus({ servers: server.url, name: "bus-nats-test-other", timeoutMs: 15_000 });
  });
  after(async () => {
    await bus?.close();
    await other?.close();
  });

  it("bus nats - a restart amid acknowledged KV writes and queue pushes loses none", async (t) => {
    const kv = await bus.kv("restart_writes");
    const queue = await bus.workQueue("restart_jobs", { ackWaitMs: 30_000, maxDeliver: 3 });
    const total = 150;
    const putAcked: number[] = [];
    const pushAcked: number[] = [];
    let casAcked = 0;
    let surfaced = 0;
    let restartDone = false;
    let backAt = 0;
    const acks: number[] = [];
    const noteAck = (): void => {
      acks.push(performance.now());
    };
    /** Retries what the adapter gave up on (a retryable code), as a caller would. */
    const persist = async <T>(write: () => Promise<T>): Promise<T> => {
      for (;;) {
        try {
          return await write();
        } catch (err) {
          if (!isRetryable(err)) throw err;
          surfaced++;
        }
      }
    };
    // Each writer goes on until the restart is over and it has written at least `total`.
    const more = (i: number): boolean => i < total || !restartDone;

    const puts = (async () => {
      for (let i = 0; more(i); i++) {
        await persist(() => kv.put(`w.${i}`, enc(String(i))));
        putAcked.push(i);
        noteAck();
      }
    })();
    const cas = (async () => {
      let rev = await kv.create("counter", enc("0"));
      for (let i = 1; more(i - 1); i++) {
        // A compare-and-set whose answer was lost is retried with the same message id by the
        // adapter; the server then answers with the first write's revision, not a mismatch.
        rev = await persist(() => kv.update("counter", enc(String(i)), rev));
        casAcked = i;
        noteAck();
      }
    })();
    const pushes = (async () => {
      for (let i = 0; more(i); i++) {
        await persist(() => queue.push(enc(`job-${i}`)));
        pushAcked.push(i);
        noteAck();
      }
    })();
    const restart = (async () => {
      while (putAcked.length < total / 3 || pushAcked.length < total / 3) {
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      await server.restart();
      backAt = performance.now();
      restartDone = true;
    })();
    await Promise.all([puts, cas, pushes, restart]);

    assert.ok(putAcked.length >= total && pushAcked.length >= total && casAcked >= total);
    for (const i of putAcked)
      assert.equal(dec((await kv.get(`w.${i}`))?.value ?? enc("missing")), String(i), `w.${i}`);
    assert.equal(
      dec((await kv.get("counter"))?.value ?? enc("missing")),
      String(casAcked),
      "every acknowledged CAS applied once",
    );
    const afterBack = acks.filter((a) => a > backAt);
    assert.ok(afterBack.length > 0, "writes went on after the restart");

    const jobs: string[] = [];
    for (;;) {
      const job = await queue.next({ timeoutMs: 1_000 });
      if (!job) break;
      jobs.push(dec(job.data));
      await job.ack();
    }
    const distinct = new Set(jobs);
    for (const i of pushAcked) assert.ok(distinct.has(`job-${i}`), `job-${i} acknowledged but lost`);
    assert.ok(jobs.length - distinct.size <= surfaced, "no job stored twice by the adapter's own retries");
    assert.equal(await queue.pending(), 0);
    const gaps = acks.slice(1).map((a, i) => a - (acks[i] ?? a));
    t.diagnostic(
      `longest pause between acknowledged writes (the outage): ${Math.max(...gaps).toFixed(0)} ms`,
    );
    t.diagnostic(
      `server back to next acknowledged write: ${((afterBack[0] ?? backAt) - backAt).toFixed(0)} ms`,
    );
    t.diagnostic(
      `acknowledged: ${putAcked.length} puts, ${casAcked} CAS updates, ${pushAcked.length} pushes`,
    );
    t.diagnostic(`failures surfaced to the caller during the restart: ${surfaced}`);
  });

  it("bus nats - a write whose acknowledgement was lost is retried without a second copy", async () => {
    const proxy = await startProxy(server.port);
    const cut = await openNatsBus({ servers: `nats://127.0.0.1:${proxy.port}`, timeoutMs: 15_000 });
    try {
      const kv = await cut.kv("lost_acks");
      const direct = await bus.kv("lost_acks");
      const queue = await cut.workQueue("lost_acks", { ackWaitMs: 30_000, maxDeliver: 1 });
      const stream = await cut.stream("lost_acks", { subjects: ["lost.acks"] });
      const first = await kv.create("counter", enc("0"));

      // The server stores each write but its answer never arrives; then the connection drops and
      // the adapter sends the same writes again on the new one.
      proxy.swallow = true;
      const update = kv.update("counter", enc("1"), first);
      const push = queue.push(enc("only once"));
      const append = stream.append("lost.acks", enc("only once"));
      const directQueue = await bus.workQueue("lost_acks", { ackWaitMs: 30_000, maxDeliver: 1 });
      const directStream = await bus.stream("lost_acks", { subjects: ["lost.acks"] });
      await waitUntil(
        "the three writes stored",
        async () => {
          assert.notEqual((await direct.get("counter"))?.revision, first);
          assert.equal(await directQueue.pending(), 1);
          assert.equal(await directStream.lastSequence(), 1);
        },
        10_000,
        20,
      );
      const stored = (await direct.get("counter"))?.revision;
      proxy.cut();

      assert.equal(
        await update,
        stored,
        "the compare-and-set answers with the revision it got the first time",
      );
      await push;
      assert.equal(await append, 1);
      assert.equal(dec((await direct.get("counter"))?.value ?? enc("")), "1");
      assert.equal(await directQueue.pending(), 1, "one job, not two");
      assert.equal(await directStream.lastSequence(), 1, "one event, not two");
      assert.ok(
        (await kv.update("counter", enc("2"), stored ?? 0)) > (stored ?? 0),
        "the connection works again",
      );
    } finally {
      await cut.close();
      await proxy.close();
    }
  });

  it("bus nats - subscriptions and request handlers work again after a restart", async () => {
    const seen: string[] = [];
    const sub = await bus.subscribe("restart.events.*", (m) => seen.push(dec(m.data)));
    const srv = await bus.serve("restart.svc", (m) => Promise.resolve(enc(`re:${dec(m.data)}`)));
    await server.restart();
    // The two connections come back independently: until `bus` has renewed its subscriptions
    // nobody serves, which a caller sees as the retryable `NO_RESPONDERS`.
    let answer: BusMessage | undefined;
    for (let attempt = 0; !answer; attempt++) {
      try {
        answer = await other.request("restart.svc", enc("ping"), { timeoutMs: 15_000 });
      } catch (err) {
        if (!(err instanceof BusError && err.code === "NO_RESPONDERS") || attempt > 200) throw err;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
    assert.equal(dec(answer.data), "re:ping");
    await other.publish("restart.events.a", enc("after"));
    await other.request("restart.svc", enc("sync"), { timeoutMs: 15_000 });
    assert.deepEqual(seen, ["after"]);
    await sub.unsubscribe();
    await srv.unsubscribe();
  });

  it("bus nats - a stream keeps acknowledged events across a restart and reads them all", async () => {
    const stream = await bus.stream("restart_events", { subjects: ["restart.log.>"] });
    for (let i = 0; i < 40; i++) await stream.append(`restart.log.${i % 2}`, enc(String(i)));
    await server.restart();
    for (let i = 40; i < 80; i++) await stream.append(`restart.log.${i % 2}`, enc(String(i)));
    const read: string[] = [];
    for await (const e of stream.read()) read.push(dec(e.data));
    assert.deepEqual(
      read,
      Array.from({ length: 80 }, (_, i) => String(i)),
    );
    const odd: number[] = [];
    for await (const e of stream.read({ sequence: 41, filter: "restart.log.1" })) odd.push(e.sequence);
    assert.deepEqual(
      odd,
      Array.from({ length: 20 }, (_, i) => 42 + 2 * i),
    );
  });

  it("bus nats - while the server is down calls fail with a retryable unavailable, then work again", async () => {
    const short = await openNatsBus({ servers: server.url, timeoutMs: 400 });
    try {
      const kv = await short.kv("down_writes");
      await kv.put("before", enc("1"));
      await server.stop();
      await assert.rejects(kv.put("during", enc("2")), (err: unknown) => {
        assert.ok(err instanceof BusError);
        assert.equal(err.code, "BUS_UNAVAILABLE");
        assert.equal(err.retryable, true);
        return true;
      });
      await assert.rejects(short.request("down.svc", enc("x"), { timeoutMs: 300 }), {
        code: "BUS_UNAVAILABLE",
      });
      await server.restart();
      await kv.put("after", enc("3"));
      assert.equal(dec((await kv.get("before"))?.value ?? enc("")), "1");
      assert.equal(await kv.get("during"), undefined, "a write reported unavailable was never sent");
      assert.deepEqual(await kv.keys(), ["after", "before"]);
    } finally {
      await short.close();
    }
  });

  it("bus nats - a payload that fits only without JetStream's headers is MESSAGE_TOO_LARGE, before sending", async () => {
    const kv = await bus.kv("limits");
    const max = new Uint8Array(1024 * 1024);
    await assert.rejects(kv.put("k", new Uint8Array(max.length + 1)), {
      name: "BusError",
      code: "MESSAGE_TOO_LARGE",
    });
    await assert.rejects(kv.update("k", max, 1), { code: "MESSAGE_TOO_LARGE" });
    await bus.publish("limits.core", max);
    assert.deepEqual(await kv.keys(), []);
  });

  it("bus nats - no server at the URL is unavailable", async () => {
    const port = await closedPort();
    await assert.rejects(openNatsBus({ servers: `nats://127.0.0.1:${port}`, timeoutMs: 1_000 }), {
      name: "BusError",
      code: "BUS_UNAVAILABLE",
    });
  });

  it("bus nats - openBus with a URL opens the NATS adapter", async () => {
    const opened = await openBus({ natsUrl: server.url });
    try {
      const kv = await opened.kv("open_check");
      await kv.put("k", enc("v"));
      assert.equal(
        dec((await (await bus.kv("open_check")).get("k"))?.value ?? enc("")),
        "v",
        "seen through NATS",
      );
    } finally {
      await opened.close();
    }
    await assert.rejects(opened.publish("a.b", enc("x")), { code: "BUS_CLOSED" });
  });
});

describe("bus open - adapter choice", () => {
  it("bus open - without a URL the in-process bus opens, with no server needed", async () => {
    const bus = await openBus({});
    try {
      const kv = await bus.kv("open_memory");
      const rev = await kv.put("k", enc("v"));
      assert.equal((await kv.get("k"))?.revision, rev);
    } finally {
      await bus.close();
    }
  });

  it("bus open - a URL where no server answers fails with unavailable", async () => {
    await assert.rejects(openBus({ natsUrl: `nats://127.0.0.1:${await closedPort()}` }), {
      name: "BusError",
      code: "BUS_UNAVAILABLE",
    });
  });

  it("bus open - the error names the server without its user, password or token", async () => {
    const port = await closedPort();
    await assert.rejects(
      openBus({ natsUrl: `nats://me:s3cret@127.0.0.1:${port},nats://t0ken@127.0.0.1:${port}` }),
      (error: Error) => {
        assert.equal(
          error.message,
          `cannot connect to NATS at nats://***@127.0.0.1:${port}, nats://***@127.0.0.1:${port}: connection refused`,
        );
        return true;
      },
    );
  });
});
