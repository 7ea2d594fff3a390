import assert from "node:assert/strict";
import { EventEmitter } from "node:events";
import { createServer, type Server } from "node:net";
import { after, describe, it } from "node:test";
import {
  bindPort,
  candidatePorts,
  PortBindFailedError,
  PortBindTimeoutError,
  PortsExhaustedError,
} from "../../agent/protocol/port-binding.ts";

const host = "127.0.0.1";
const span = 32;

function listen(port: number): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen({ host, port, exclusive: true }, () => resolve(server));
  });
}

function close(server: Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

/** A base in a high range whose next `span` ports are free right now (each one bound once to check). */
async function freeBase(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 40_000 + Math.floor(Math.random() * 20_000);
    const held: Server[] = [];
    try {
      for (let p = base; p < base + span; p++) held.push(await listen(p));
      return base;
    } catch {
      // one of them is taken: try another range
    } finally {
      await Promise.all(held.map(close));
    }
  }
  throw new Error(`no ${span} consecutive free ports found on ${host}`);
}

const base = await freeBase();
const open: Server[] = [];
after(() => Promise.all(open.map(close)));

async function occupy(...ports: number[]): Promise<Server[]> {
  const servers = await Promise.all(ports.map(listen));
  open.push(...servers);
  return servers;
}

async function release(servers: Server[]): Promise<void> {
  for (const s of servers) open.splice(open.indexOf(s), 1);
  await Promise.all(servers.map(close));
}

describe("port binding", () => {
  it("port binding - next strategy counts up from the base and stops at 65535", () => {
    assert.deepEqual([...candidatePorts({ host, basePort: 100, maxAttempts: 3 })], [100, 101, 102]);
    assert.deepEqual([...candidatePorts({ host, basePort: 65533 })], [65533, 65534, 65535]);
    assert.equal([...candidatePorts({ host, basePort: 1024 })].length, 65535 - 1024 + 1);
  });

  it("port binding - random strategy tries each port of the window once, and no other", () => {
    let seed = 7;
    const randomBelow = (n: number): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % n;
    const ports = [...candidatePorts({ host, basePort: 5000, strategy: "random", window: 50, randomBelow })];
    assert.equal(ports.length, 50);
    assert.deepEqual(
      [...ports].sort((a, b) => a - b),
      Array.from({ length: 50 }, (_, i) => 5000 + i),
    );
    assert.notDeepEqual(ports.slice(0, 10), [5000, 5001, 5002, 5003, 5004, 5005, 5006, 5007, 5008, 5009]);
    const clipped = [...candidatePorts({ host, basePort: 65530, strategy: "random", window: 1000 })];
    assert.deepEqual(
      clipped.sort((a, b) => a - b),
      [65530, 65531, 65532, 65533, 65534, 65535],
    );
  });

  it("port binding - rejects a base outside 1..65535", () => {
    assert.throws(() => [...candidatePorts({ host, basePort: 0 })], RangeError);
    assert.throws(() => [...candidatePorts({ host, basePort: 65536 })], RangeError);
  });

  it("port binding - with base and base+1 occupied it binds base+2 and reports both", async () => {
    const held = await occupy(base, base + 1);
    const server = createServer();
    try {
      const bound = await bindPort(server, { host, basePort: base });
      assert.equal(bound.port, base + 2);
      assert.deepEqual(bound.busy, [base, base + 1]);
      const address = server.address();
      assert.ok(address !== null && typeof address === "object");
      assert.equal(address.port, base + 2);
    } finally {
      await close(server);
      await release(held);
    }
  });

  it("port binding - a factory gets a fresh server per attempt and the failed ones are closed", async () => {
    const held = await occupy(base + 3);
    const made: Server[] = [];
    const bound = await bindPort(
      () => {
        const s = createServer();
        made.push(s);
        return s;
      },
      { host, basePort: base + 3 },
    );
    try {
      assert.equal(bound.port, base + 4);
      assert.deepEqual(bound.busy, [base + 3]);
      assert.equal(made.length, 2);
      assert.equal(bound.server, made[1]);
      assert.equal(made[0]?.listening, false);
    } finally {
      await close(bound.server);
      await release(held);
    }
  });

  it("port binding - next strategy gives up after maxAttempts with PORTS_EXHAUSTED", async () => {
    const held = await occupy(base + 5, base + 6);
    const server = createServer();
    try {
      await assert.rejects(bindPort(server, { host, basePort: base + 5, maxAttempts: 2 }), (error) => {
        assert.ok(error instanceof PortsExhaustedError);
        assert.equal(error.code, "PORTS_EXHAUSTED");
        assert.deepEqual(error.busy, [base + 5, base + 6]);
        return true;
      });
      assert.equal(server.listening, false);
    } finally {
      await release(held);
    }
  });

  it("port binding - random strategy stays in the window across many runs", async () => {
    const window = 16;
    const seen = new Set<number>();
    for (let run = 0; run < 60; run++) {
      const server = createServer();
      const bound = await bindPort(server, { host, basePort: base + 8, strategy: "random", window });
      await close(server);
      assert.ok(bound.port >= base + 8 && bound.port < base + 8 + window, `port ${bound.port}`);
      assert.deepEqual(bound.busy, []);
      seen.add(bound.port);
    }
    // 60 uniform draws from 16 ports: fewer than 5 distinct would be a broken shuffle, not chance.
    assert.ok(seen.size >= 5, `only ${seen.size} distinct ports`);
  });

  it("port binding - random strategy retries other ports of the window on conflict", async () => {
    const window = 6;
    const first = base + 8;
    const held = await occupy(first, first + 1, first + 2, first + 4, first + 5);
    try {
      for (let run = 0; run < 10; run++) {
        const server = createServer();
        const bound = await bindPort(server, { host, basePort: first, strategy: "random", window });
        await close(server);
        assert.equal(bound.port, first + 3);
        assert.ok(bound.busy.every((p) => [first, first + 1, first + 2, first + 4, first + 5].includes(p)));
        assert.equal(new Set(bound.busy).size, bound.busy.length);
      }
    } finally {
      await release(held);
    }
  });

  it("port binding - an exhausted random window is PORTS_EXHAUSTED listing every port", async () => {
    const first = base + 24;
    const held = await occupy(first, first + 1, first + 2, first + 3);
    try {
      await assert.rejects(
        bindPort(createServer(), { host, basePort: first, strategy: "random", window: 4 }),
        (error) => {
          assert.ok(error instanceof PortsExhaustedError);
          assert.equal(error.code, "PORTS_EXHAUSTED");
          assert.equal(error.retryable, true);
          assert.deepEqual(
            [...error.busy].sort((a, b) => a - b),
            [first, first + 1, first + 2, first + 3],
          );
          assert.match(error.message, new RegExp(`\\[${first}, ${first + 4}\\)`));
          return true;
        },
      );
    } finally {
      await release(held);
    }
  });

  it("port binding - a bind that never completes fails at its deadline", async () => {
    let closed = false;
    const stuck = Object.assign(new EventEmitter(), {
      listen: () => undefined,
      close: () => (closed = true),
    }) as unknown as Server;
    const t0 = performance.now();
    await assert.rejects(bindPort(stuck, { host, basePort: base, bindTimeoutMs: 50 }), (error) => {
      assert.ok(error instanceof PortBindTimeoutError);
      assert.equal(error.code, "PORT_BIND_TIMEOUT");
      return true;
    });
    assert.ok(performance.now() - t0 < 1_000);
    assert.equal(closed, true);
  });

  it("port binding - an address that is not local is PORT_BIND_FAILED, not a busy port", async () => {
    // 192.0.2.1 (TEST-NET-1, RFC 5737) is on no interface here: EADDRNOTAVAIL, no packet is sent.
    await assert.rejects(bindPort(createServer(), { host: "192.0.2.1", basePort: base }), (error) => {
      assert.ok(error instanceof PortBindFailedError);
      assert.equal(error.code, "PORT_BIND_FAILED");
      assert.equal((error.cause as NodeJS.ErrnoException).code, "EADDRNOTAVAIL");
      return true;
    });
  });
});
