import assert from "node:assert/strict";
import { connect, type TLSSocket } from "node:tls";
import { after, describe, it } from "node:test";
import { type CallbackListener, startCallbackListener } from "../../agent/client/callback-listener.ts";
import { createRunCa, issueLeaf } from "../../agent/client/credentials.ts";
import { startAgentFixture } from "../support/agent.ts";

const RUN_ID = "run-test";

async function waitFor(what: string, done: () => boolean, timeoutMs = 10_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

interface Opened {
  readonly socket: TLSSocket;
  closed: boolean;
}

/** A TLS connection with `leaf` that sends nothing; resolves once its handshake is done. */
function openIdle(port: number, caPem: string, leaf: { certPem: string; keyPem: string }): Promise<Opened> {
  return new Promise((resolve, reject) => {
    const socket = connect({
      host: "127.0.0.1",
      port,
      ca: caPem,
      cert: leaf.certPem,
      key: leaf.keyPem,
      minVersion: "TLSv1.3",
      checkServerIdentity: () => undefined,
    });
    const opened: Opened = { socket, closed: false };
    socket.on("close", () => (opened.closed = true));
    socket.on("error", () => undefined);
    socket.once("secureConnect", () => resolve(opened));
    socket.once("error", reject);
  });
}

describe("connection bounds", () => {
  const ca = createRunCa({ runId: RUN_ID, validForMs: 3_600_000 });
  const workstation = issueLeaf(ca, {
    commonName: "workstation-callback",
    subjectAltNames: ["127.0.0.1"],
    usage: "server",
  });
  const agentLeaf = issueLeaf(ca, { commonName: "agent-callback", subjectAltNames: [], usage: "client" });
  const listeners: CallbackListener[] = [];
  const sockets: TLSSocket[] = [];
  after(async () => {
    for (const s of sockets) s.destroy();
    for (const l of listeners) await l.close();
  });

  async function listen(
    options: { firstRequestTimeoutMs?: number; rejectionIntervalMs?: number; keepAliveTimeoutMs?: number },
    lines: string[],
  ): Promise<CallbackListener> {
    const listener = await startCallbackListener({
      host: "127.0.0.1",
      bind: (server) =>
        new Promise((resolve) =>
          server.listen({ host: "127.0.0.1", port: 0 }, () => {
            const address = server.address();
            resolve({ port: typeof address === "object" && address !== null ? address.port : 0, busy: [] });
          }),
        ),
      caCertPem: ca.certPem,
      certPem: workstation.certPem,
      keyPem: workstation.keyPem,
      agentFingerprints: [agentLeaf.fingerprint256],
      runId: RUN_ID,
      onMessage: () => undefined,
      log: (level, line) => lines.push(`${level} ${line}`),
      ...options,
    });
    listeners.push(listener);
    return listener;
  }

  it("connection bounds - the callback listener keeps at most 4 of its agent's connections: beyond, the oldest go", async () => {
    const lines: string[] = [];
    const listener = await listen({ firstRequestTimeoutMs: 60_000 }, lines);
    const opened: Opened[] = [];
    for (let i = 0; i < 10; i++) {
      const o = await openIdle(listener.port, ca.certPem, agentLeaf);
      sockets.push(o.socket);
      opened.push(o);
    }
    await waitFor("6 connections closed", () => opened.filter((o) => o.closed).length === 6);
    // None more closes: the 4 kept stay (the closing of the others was seen first).
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(opened.filter((o) => !o.closed).length, 4);
    assert.ok(lines.some((l) => /dropped the agent's oldest idle connection: at most 4 kept open/.test(l)));
    for (const o of opened) o.socket.destroy();
  });

  it("connection bounds - the callback listener closes a connection that sends no request", async () => {
    const lines: string[] = [];
    const listener = await listen({ firstRequestTimeoutMs: 300 }, lines);
    const opened: Opened[] = [];
    for (let i = 0; i < 3; i++) {
      const o = await openIdle(listener.port, ca.certPem, agentLeaf);
      sockets.push(o.socket);
      opened.push(o);
    }
    await waitFor("the idle connections closed", () => opened.every((o) => o.closed), 5_000);
  });

  it("connection bounds - the callback listener closes a connection idle after a request", async () => {
    const lines: string[] = [];
    const listener = await listen({ firstRequestTimeoutMs: 60_000, keepAliveTimeoutMs: 300 }, lines);
    const o = await openIdle(listener.port, ca.certPem, agentLeaf);
    sockets.push(o.socket);
    let answered = false;
    o.socket.on("data", () => (answered = true));
    o.socket.write("GET /x HTTP/1.1\r\nHost: ws\r\n\r\n");
    await waitFor("the answer", () => answered || o.closed);
    assert.equal(answered, true);
    await waitFor("the idle connection closed", () => o.closed, 5_000);
  });

  it("connection bounds - 1,000 bad requests on one connection make at most a few events", async () => {
    const lines: string[] = [];
    // One interval for the whole loop, however long this machine takes over it.
    const listener = await listen({ rejectionIntervalMs: 600_000 }, lines);
    const o = await openIdle(listener.port, ca.certPem, agentLeaf);
    sockets.push(o.socket);
    let answers = 0;
    let received = "";
    let wake: (() => void) | undefined;
    o.socket.on("data", (chunk: Buffer) => {
      received += chunk.toString("latin1");
      const parts = received.split("HTTP/1.1 404");
      answers += parts.length - 1;
      received = parts.at(-1)!;
      wake?.();
    });
    o.socket.on("close", () => wake?.());
    // One at a time, each after the answer to the one before: a kept-alive loop.
    for (let i = 0; i < 1000; i++) {
      o.socket.write("GET /x HTTP/1.1\r\nHost: ws\r\n\r\n");
      while (answers <= i && !o.closed) await new Promise<void>((resolve) => (wake = resolve));
      assert.equal(o.closed, false, `closed after ${answers} answers`);
    }
    await listener.close();
    const refused = lines.filter((l) => l.startsWith("warn "));
    assert.ok(refused.length <= 4, `${refused.length} events:\n${refused.join("\n")}`);
    assert.match(
      refused.at(-1)!,
      /^warn 997 more requests refused in the last \d+ s \(last: rejected NOT_FOUND/,
    );
  });

  it("connection bounds - the agent keeps at most 3 of the workstation's connections and closes idle ones", async () => {
    const fixture = await startAgentFixture({
      connections: { maxWorkstationConnections: 3, firstRequestTimeoutMs: 60_000 },
    });
    try {
      const opened: Opened[] = [];
      for (let i = 0; i < 8; i++) {
        const o = await openIdle(fixture.port, fixture.ca.certPem, fixture.workstation);
        sockets.push(o.socket);
        opened.push(o);
      }
      await waitFor("5 connections closed", () => opened.filter((o) => o.closed).length === 5);
      await new Promise((resolve) => setImmediate(resolve));
      assert.equal(opened.filter((o) => !o.closed).length, 3);
      // The workstation still gets through.
      const client = await fixture.connect();
      assert.equal((await client.call("Hello", {})).targetId, fixture.targetId);
      client.close();
    } finally {
      await fixture.cleanup();
    }
    const idle = await startAgentFixture({ connections: { firstRequestTimeoutMs: 300 } });
    try {
      const opened: Opened[] = [];
      for (let i = 0; i < 3; i++) opened.push(await openIdle(idle.port, idle.ca.certPem, idle.workstation));
      sockets.push(...opened.map((o) => o.socket));
      await waitFor("the idle connections closed", () => opened.every((o) => o.closed), 5_000);
    } finally {
      await idle.cleanup();
    }
  });

  it("connection bounds - 600 refused handshakes on an agent leave its lifecycle lines in its capped log", async () => {
    const max = 32 * 1024;
    // Every refusal written as it comes: the cap's reserve alone must keep the last lines.
    const fixture = await startAgentFixture({ limits: { maxLogFileBytes: max }, rejectionBurst: 100_000 });
    try {
      const stranger = createRunCa({ runId: "other-run", validForMs: 3_600_000 });
      const leaf = issueLeaf(stranger, { commonName: "stranger", subjectAltNames: [], usage: "client" });
      let refused = 0;
      for (let batch = 0; batch < 30; batch++)
        await Promise.all(
          Array.from(
            { length: 20 },
            () =>
              new Promise<void>((resolve) => {
                const socket = connect({
                  host: "127.0.0.1",
                  port: fixture.port,
                  ca: fixture.ca.certPem,
                  cert: leaf.certPem,
                  key: leaf.keyPem,
                  minVersion: "TLSv1.3",
                  checkServerIdentity: () => undefined,
                });
                socket.on("error", () => undefined);
                socket.on("close", () => {
                  refused++;
                  resolve();
                });
              }),
          ),
        );
      assert.equal(refused, 600);
      await fixture.agent.stop("test over");
      const text = await fixture.logText();
      assert.ok(Buffer.byteLength(text) <= max, `${Buffer.byteLength(text)} bytes`);
      assert.match(text, /refusals cut here at \d+ bytes \(log cap 32768\)/);
      assert.match(text, /info stopping: test over\n(.*\n)*.*info stopped: test over; the log stays at /);
      assert.doesNotMatch(text, /log full/);
    } finally {
      await fixture.cleanup();
    }
  });
});
