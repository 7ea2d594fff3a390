/**
 * The agent's sign of life (issue 13, item 4), against real agents and real TLS:
 *
 * - callback port blocked on the workstation (the agent's callback target refuses, or takes the
 *   connection and says nothing, as a DROP rule would): startAgent, with the real agent started as
 *   a local process by the local launcher, fails the target within 10 s with CALLBACK_BLOCKED
 *   naming the port and the address to open;
 * - callbacks that get through at the start and then are too slow to be acknowledged: a 3-minute
 *   exchange keeps its agent, since the workstation's requests are signs of life. Three minutes of
 *   the agent's (and the workstation's) clock and timers, run by hand: the same watch would stop the
 *   agent a minute after its last acknowledged callback if requests did not count.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdir, mkdtemp, readFile, rm } from "node:fs/promises";
import { createServer, type Server, type Socket, connect as tcpConnect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { after, describe, it } from "node:test";
import { type CallbackListener, startCallbackListener } from "../../agent/client/callback-listener.ts";
import { createRunCa, issueLeaf } from "../../agent/client/credentials.ts";
import type { CallbackMessage } from "../../agent/protocol/callback-messages.ts";
import { createAgentSteps } from "../../actors/target/agent-steps.ts";
import { localAgentLauncher } from "../../actors/target/posix/agent-process.ts";
import { SessionRegistry, type TargetSession } from "../../actors/target/session.ts";
import { LocalSession } from "../../actors/local/session.ts";
import { listenOn } from "../../agent/server/listen.ts";
import { startAgentFixture } from "../support/agent.ts";

const RUN_ID = "run-life";
const scratch = await mkdtemp(join(tmpdir(), "sumac-life-"));
const closers: (() => Promise<unknown> | void)[] = [];
after(async () => {
  for (const close of closers.reverse()) await close();
  await rm(scratch, { recursive: true, force: true });
});

/** A TCP server that takes connections and never answers: a port whose packets are dropped. */
async function blackHole(): Promise<Server> {
  const held: Socket[] = [];
  const server = createServer((socket) => void held.push(socket));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  closers.push(
    () =>
      new Promise((resolve) => {
        for (const socket of held) socket.destroy();
        server.close(resolve);
      }),
  );
  return server;
}

/** A port nothing listens on: connections are refused. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

const portOf = (server: Server) => (server.address() as { port: number }).port;

/** Binds a callback listener on any free port of 127.0.0.1. */
const anyPort = async (server: Server) => ({
  port: await listenOn({ host: "127.0.0.1", port: 0 })(server),
  busy: [],
});

describe("agent sign of life", () => {
  for (const blocked of ["refused", "dropped"] as const) {
    it(`agent sign of life - callbacks ${blocked} on the workstation: startAgent fails the target within 10 s with CALLBACK_BLOCKED naming the port`, async () => {
      const ca = createRunCa({ runId: RUN_ID, validForMs: 3_600_000 });
      const workstation = issueLeaf(ca, {
        commonName: "sumac-workstation",
        subjectAltNames: [],
        usage: "client",
      });
      const lines: string[] = [];
      const log = (_t: string, level: string, line: string) => void lines.push(`${level} ${line}`);
      const listenerLeaf = issueLeaf(ca, {
        commonName: "callback-t1",
        subjectAltNames: ["127.0.0.1"],
        usage: "server",
      });
      const sessions = new SessionRegistry();
      // The real listener runs, but the agent is told the blocked port: nothing reaches it.
      const listener = await startCallbackListener({
        host: "127.0.0.1",
        bind: anyPort,
        caCertPem: ca.certPem,
        certPem: listenerLeaf.certPem,
        keyPem: listenerLeaf.keyPem,
        agentFingerprints: (fp) => fp === sessions.find("t1")?.agentCallbackFingerprint,
        runId: RUN_ID,
        onMessage: () => undefined,
        log: () => undefined,
      });
      closers.push(() => listener.close());
      const callbackPort = blocked === "refused" ? await closedPort() : portOf(await blackHole());

      // The agent runs from its source here (Node strips the types), started as the local launcher
      // starts any agent: the bundle's SHA-256 checked, then `node <bundle> <marker>` as root.
      const root = await mkdtemp(join(scratch, `${blocked}-`));
      const mainTs = fileURLToPath(new URL("../../agent/server/main.ts", import.meta.url));
      const shell = new LocalSession(root);
      await mkdir(join(root, "staging"), { recursive: true });
      const session = {
        sessionId: `${RUN_ID}/t1/0`,
        targetId: "t1",
        remoteAddress: "127.0.0.1",
        localAddress: "127.0.0.1",
        local: true,
        description: "this machine",
        shell,
        files: shell,
        transport: { files: {}, launcher: localAgentLauncher(log) },
        ports: { listener, listenerFingerprint: listenerLeaf.fingerprint256 },
        pushed: {
          runDir: join(root, "run"),
          bundlePath: mainTs,
          bundleSha256: createHash("sha256")
            .update(await readFile(mainTs))
            .digest("hex"),
          nodePath: process.execPath,
          runtimePushed: false,
          stagingDir: join(root, "staging"),
          logDir: join(root, "log"),
          extraPaths: [],
        },
      } as unknown as TargetSession;
      sessions.add(session);
      const steps = createAgentSteps({
        runId: RUN_ID,
        sessions,
        ca,
        workstation,
        agentPorts: { strategy: "lowest", window: 100 },
        firewallMode: "none",
        log,
      });
      const target = { id: "t1", host: "local", os: "local" as const };
      const leases = {
        leaseIds: [],
        workstationPort: 0,
        callbackPort,
        agentPort: 40_000 + (process.pid % 2_000) * 10,
      };
      const started = Date.now();
      try {
        await assert.rejects(
          steps.startAgent(
            { target, sessionId: session.sessionId, leases } as never,
            AbortSignal.timeout(30_000),
          ),
          (error: Error & { code?: string; retryable?: boolean }) => {
            assert.equal(error.code, "CALLBACK_BLOCKED", error.message);
            assert.equal(error.retryable, false);
            assert.match(
              error.message,
              new RegExp(`open TCP port ${callbackPort} on 127\\.0\\.0\\.1 \\(this workstation\\)`),
            );
            return true;
          },
        );
        const took = Date.now() - started;
        assert.ok(took < 10_000, `failed after ${took} ms`);
        assert.ok(
          lines.some((l) => /^info agent listening on \d+/.test(l)),
          lines.join("\n"),
        );
      } finally {
        // As the run's cleanup would: the agent was started and is stopped (no session: by signal).
        await steps.stopAgent({ target } as never, AbortSignal.timeout(30_000));
      }
      // The agent's own log says what it met.
      const agentLog = await readFile(join(root, "log", "t1.log"), "utf8");
      assert.match(
        agentLog,
        /warn (callback heartbeat not delivered|stopping: 1 callback\(s\) not delivered)/,
      );
    });
  }

  it("agent sign of life - callbacks through at the start, then too slow to be acknowledged: a 3-minute exchange keeps its agent", async () => {
    const clock = manualClock(Date.now());
    const ca = createRunCa({ runId: "run-test", validForMs: 3_600_000 });
    const listenerLeaf = issueLeaf(ca, {
      commonName: "callback",
      subjectAltNames: ["127.0.0.1"],
      usage: "server",
    });
    const received: CallbackMessage[] = [];
    let allowed = "";
    const listener: CallbackListener = await startCallbackListener({
      host: "127.0.0.1",
      bind: anyPort,
      caCertPem: ca.certPem,
      certPem: listenerLeaf.certPem,
      keyPem: listenerLeaf.keyPem,
      agentFingerprints: (fp) => fp === allowed,
      runId: "run-test",
      onMessage: (message) => received.push(message),
      log: () => undefined,
      now: clock.now,
    });
    closers.push(() => listener.close());
    const proxy = await slowProxy(listener.port);
    closers.push(() => proxy.close());
    const fixture = await startAgentFixture(
      {
        callback: {
          host: "127.0.0.1",
          port: proxy.port,
          fingerprint256: listenerLeaf.fingerprint256,
          heartbeatMs: 15_000,
          lostAfterMs: 60_000,
        },
        // A callback not acknowledged within 300 ms (real) is dropped: "too slow".
        callbackTimeoutMs: 300,
        // As on targets: the idle clock is not what decides here.
        idleTimeoutMs: 300_000,
        now: clock.now,
        idleTimers: clock.timers,
      },
      { ca },
    );
    closers.push(() => fixture.cleanup());
    allowed = fixture.agentCredentials.callbackFingerprint256;
    let stoppedBy: string | undefined;
    void fixture.agent.stopped.then((reason) => (stoppedBy = reason));

    // The start: the first heartbeat gets through, as startAgent checks.
    assert.equal(await listener.heardFrom(allowed, { timeoutMs: 5_000 }), true);
    const client = await fixture.connect({ now: clock.now, signNow: clock.now });
    await client.call("Hello", {});
    // From here on, callbacks stall on the way.
    proxy.stall();

    /** Moves both ends' clock by `ms` in steps, letting real I/O (stalled callbacks) happen. */
    const pass = async (ms: number) => {
      for (let done = 0; done < ms; done += 5_000) {
        await clock.advance(5_000);
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
    };
    const startedAt = clock.now();
    await pass(30_000);
    await client.call("Inventory", { component: [{ id: "c", detectCommand: "echo 1.0" }] });
    await pass(30_000);
    // A long install: 90 s of the clock pass while it runs.
    const install = client.call("Install", {
      componentId: "c",
      command: "sleep 1.5; echo done",
      timeoutMs: 60_000,
    });
    await pass(90_000);
    assert.equal((await install).exitCode, 0);
    await pass(30_000);
    await client.call("Hello", {});
    assert.ok(clock.now() - startedAt >= 180_000, "three minutes of the agent's clock");
    assert.equal(stoppedBy, undefined, "the agent is still there");
    const log = await fixture.logText();
    assert.match(log, /warn callback heartbeat not delivered/, "callbacks did not get through");
    assert.doesNotMatch(log, /presumed gone/);

    // The same watch does stop the agent once the workstation's requests stop too.
    await pass(90_000);
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.match(stoppedBy ?? "", /no sign of life from the workstation for \d+ ms/);
  });
});

/** A clock and timers run by hand (the agent's `now` and `idleTimers`). */
function manualClock(start: number) {
  let now = start;
  let next = 1;
  const due = new Map<number, { at: number; callback: () => void }>();
  return {
    now: () => now,
    timers: {
      setTimeout: (callback: () => void, ms: number) => {
        due.set(next, { at: now + ms, callback });
        return next++;
      },
      clearTimeout: (handle: unknown) => void due.delete(handle as number),
    },
    async advance(ms: number) {
      const until = now + ms;
      await new Promise((resolve) => setImmediate(resolve));
      for (;;) {
        const first = [...due].sort((a, b) => a[1].at - b[1].at)[0];
        if (first === undefined || first[1].at > until) break;
        due.delete(first[0]);
        now = first[1].at;
        first[1].callback();
        await new Promise((resolve) => setImmediate(resolve));
      }
      now = until;
    },
  };
}

/**
 * A TCP proxy to `port` that passes bytes until `stall()`; from then on it cuts the connections it
 * has and holds new ones without passing anything: every callback waits past its deadline.
 */
async function slowProxy(port: number): Promise<{ port: number; stall(): void; close(): Promise<void> }> {
  let stalled = false;
  const open = new Set<Socket>();
  const server = createServer((inbound) => {
    open.add(inbound);
    inbound.on("close", () => open.delete(inbound));
    inbound.on("error", () => undefined);
    if (stalled) return;
    const outbound = tcpConnect(port, "127.0.0.1");
    open.add(outbound);
    outbound.on("close", () => open.delete(outbound));
    outbound.on("error", () => inbound.destroy());
    inbound.on("close", () => outbound.destroy());
    outbound.on("close", () => inbound.destroy());
    inbound.pipe(outbound);
    outbound.pipe(inbound);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: portOf(server),
    stall() {
      stalled = true;
      for (const socket of open) socket.destroy();
    },
    close: () =>
      new Promise((resolve) => {
        for (const socket of open) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
