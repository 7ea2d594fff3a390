/**
 * startAgent and stopAgent against a fake launcher: the configuration the agent gets, the
 * certificate issued on its key, an agent left by an earlier attempt stopped first, and how a stop
 * goes: asked (Shutdown), waited for, stopped otherwise when it does not answer.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { createRunCa, issueLeaf } from "../../agent/client/credentials.ts";
import type { AgentConfigDocument } from "../../agent/protocol/start-up.ts";
import { createKeyPair } from "../../agent/protocol/key-pair.ts";
import { agentMarker, createAgentSteps } from "../../actors/target/agent-steps.ts";
import type { AgentCalls } from "../../actors/target/agent-session.ts";
import type { TargetSession } from "../../actors/target/session.ts";
import { testSession } from "../support/target-session.ts";
import type { AgentLauncher, RunningAgent, StartedAgent } from "../../actors/target/transport.ts";

const never = new AbortController().signal;
const TARGET = { id: "t1", host: "10.0.0.5", os: "linux" as const };
const LEASES = { leaseIds: ["a", "b"], workstationPort: 60000, callbackPort: 61003, agentPort: 62286 };
const ca = createRunCa({ runId: "r1", validForMs: 60_000 });
const workstation = issueLeaf(ca, { commonName: "sumac-workstation", subjectAltNames: [], usage: "client" });

/** A launcher that runs no process: it answers like an agent that made a key and listens. */
class FakeLauncher implements AgentLauncher {
  readonly events: string[] = [];
  config: AgentConfigDocument | undefined;
  issued: { certPem: string; fingerprint256: string; callbackCertPem?: string } | undefined;
  exitCode: number | null = 0;
  exited: (status: { exitCode: number | null }) => void = () => undefined;

  async start(_session: unknown, request: Parameters<AgentLauncher["start"]>[1]): Promise<StartedAgent> {
    this.config = request.config;
    this.events.push(`start ${request.marker}`);
    const exited = new Promise<{ exitCode: number | null }>((resolve) => (this.exited = resolve));
    request.running({ exited });
    this.issued = request.issue(createKeyPair().publicKeyPem);
    return Promise.resolve({
      port: 62290,
      busy: [62286, 62287],
      fingerprint256: this.issued.fingerprint256,
      exited,
    });
  }

  forceStop(_session: unknown, _agent: RunningAgent, marker: string): Promise<void> {
    this.events.push(`forceStop ${marker}`);
    this.exited({ exitCode: null });
    return Promise.resolve();
  }
}

function setup(
  over: Partial<TargetSession> = {},
  firewallMode: "auto" | "none" = "auto",
  callbacks: "arrive" | "blocked" = "arrive",
) {
  const launcher = new FakeLauncher();
  const lines: string[] = [];
  const listenerClosed: string[] = [];
  /** The fingerprints startAgent waited to hear from, and for how long. */
  const waitedFor: { fingerprint256: string; timeoutMs: number }[] = [];
  const { session, sessions } = testSession({
    seenAs: "192.0.2.1",
    transport: { launcher },
    pushed: {
      runDir: "/var/tmp/sumac/r1",
      stagingDir: "/var/tmp/sumac/r1/staging",
      logDir: "/var/log/sumac/r1",
    },
    ports: {
      listenerFingerprint: "CB:".repeat(31) + "CB",
      listener: {
        port: 61003,
        heardFrom: (fingerprint256: string, options: { timeoutMs: number }) => {
          waitedFor.push({ fingerprint256, timeoutMs: options.timeoutMs });
          return Promise.resolve(callbacks === "arrive");
        },
        close: () => (listenerClosed.push("closed"), Promise.resolve()),
      },
    },
    ...over,
  });
  const steps = createAgentSteps({
    runId: "r1",
    sessions,
    ca,
    workstation,
    agentPorts: { strategy: "random", window: 500 },
    firewallMode,
    log: (_t, level, line) => void lines.push(`${level} ${line}`),
  });
  return { steps, session, launcher, lines, listenerClosed, waitedFor };
}

/** An agent session whose Shutdown answers, or fails. */
function shutdown(answers: boolean): AgentCalls & { calls: string[]; fields: unknown[]; closed: boolean } {
  return {
    calls: [],
    fields: [],
    closed: false,
    call(operation, fields) {
      this.calls.push(operation);
      this.fields.push(fields);
      return answers ? Promise.resolve({} as never) : Promise.reject(new Error("socket hang up"));
    },
    close() {
      this.closed = true;
    },
  };
}

describe("target agent steps", () => {
  it("target agent steps - startAgent configures the agent for this target and pins the certificate issued on its key", async () => {
    const s = setup();
    const result = await s.steps.startAgent(
      { runId: "r1", target: TARGET, sessionId: "r1/t1/0", leases: LEASES } as never,
      never,
    );
    assert.deepEqual(result, { agentPort: 62290 });
    assert.deepEqual(s.launcher.config, {
      runId: "r1",
      targetId: "t1",
      caCertPem: ca.certPem,
      workstationFingerprint256: workstation.fingerprint256,
      stagingDir: "/var/tmp/sumac/r1/staging",
      programFiles: ["/var/tmp/sumac/r1"],
      logDir: "/var/log/sumac/r1",
      idleTimeoutMs: 300_000,
      listen: { host: "0.0.0.0", basePort: 62286, strategy: "random", window: 500 },
      workstationAddress: "192.0.2.1",
      firewall: "nft",
      callback: { host: "10.0.0.1", port: 61003, fingerprint256: "CB:".repeat(31) + "CB" },
    });
    assert.deepEqual(s.launcher.events, [`start ${agentMarker("r1", "t1")}`]);
    const cert = new X509Certificate(s.launcher.issued!.certPem);
    assert.ok(cert.checkIssued(new X509Certificate(ca.certPem)));
    assert.match(cert.subjectAltName ?? "", /IP Address:10\.0\.0\.5/);
    assert.equal(s.session.agentFingerprint, s.launcher.issued!.fingerprint256);
    assert.ok(s.lines.includes("info agent listening on 62290 (busy: 62286, 62287)"));
    // Two one-purpose leaves on the agent's one key: server for its listener, client for callbacks.
    const callbackCert = new X509Certificate(s.launcher.issued!.callbackCertPem!);
    assert.ok(callbackCert.checkIssued(new X509Certificate(ca.certPem)));
    assert.equal(
      callbackCert.publicKey.export({ format: "pem", type: "spki" }),
      cert.publicKey.export({ format: "pem", type: "spki" }),
    );
    assert.deepEqual(extendedKeyUsage(cert), ["serverAuth"]);
    assert.deepEqual(extendedKeyUsage(callbackCert), ["clientAuth"]);
    assert.equal(s.session.agentCallbackFingerprint, callbackCert.fingerprint256);
    // And it waited for the agent's first callback, by the callback leaf.
    assert.deepEqual(s.waitedFor, [{ fingerprint256: callbackCert.fingerprint256, timeoutMs: 5_000 }]);
  });

  it("target agent steps - an agent whose first callback does not arrive fails the target with CALLBACK_BLOCKED, naming the port and address to open", async () => {
    const s = setup({}, "auto", "blocked");
    await assert.rejects(
      s.steps.startAgent({ target: TARGET, sessionId: "r1/t1/0", leases: LEASES } as never, never),
      (error: Error & { code?: string; retryable?: boolean }) => {
        assert.equal(error.code, "CALLBACK_BLOCKED");
        assert.equal(error.retryable, false);
        assert.match(
          error.message,
          /open TCP port 61003 on 10\.0\.0\.1 \(this workstation\) to connections from 192\.0\.2\.1/,
        );
        return true;
      },
    );
    // The agent runs: it is the target's to stop in cleanup.
    assert.ok(s.session.agent !== undefined);
  });

  it("target agent steps - on this machine, or with firewall none, the agent opens no rule; locally it listens on loopback", async () => {
    const local = setup({ local: true });
    await local.steps.startAgent({ target: TARGET, sessionId: "r1/t1/0", leases: LEASES } as never, never);
    assert.equal(local.launcher.config?.firewall, "none");
    assert.equal(local.launcher.config?.listen.host, "127.0.0.1");
    const none = setup({}, "none");
    await none.steps.startAgent({ target: TARGET, sessionId: "r1/t1/0", leases: LEASES } as never, never);
    assert.equal(none.launcher.config?.firewall, "none");
    assert.equal(none.launcher.config?.listen.host, "0.0.0.0");
  });

  it("target agent steps - startAgent stops an agent an earlier attempt started before it starts another", async () => {
    const s = setup();
    const input = { target: TARGET, sessionId: "r1/t1/0", leases: LEASES } as never;
    await s.steps.startAgent(input, never);
    await s.steps.startAgent(input, never);
    const marker = agentMarker("r1", "t1");
    assert.deepEqual(s.launcher.events, [`start ${marker}`, `forceStop ${marker}`, `start ${marker}`]);
  });

  it("target agent steps - startAgent without a push or ports, or on another session, fails with its code", async () => {
    await assert.rejects(
      setup({ pushed: undefined }).steps.startAgent(
        { target: TARGET, sessionId: "r1/t1/0", leases: LEASES } as never,
        never,
      ),
      { code: "AGENT_NOT_RUNNING", retryable: false },
    );
    await assert.rejects(
      setup().steps.startAgent({ target: TARGET, sessionId: "r1/t1/9", leases: LEASES } as never, never),
      { code: "SESSION_LOST", retryable: false },
    );
  });

  it("target agent steps - stopAgent asks for Shutdown and, when the agent exits 0, knows its files are gone", async () => {
    const s = setup();
    await s.steps.startAgent({ target: TARGET, sessionId: "r1/t1/0", leases: LEASES } as never, never);
    const client = shutdown(true);
    s.session.client = client;
    const stopping = s.steps.stopAgent({ target: TARGET } as never, never);
    setImmediate(() => s.launcher.exited({ exitCode: 0 }));
    await stopping;
    assert.deepEqual(client.calls, ["Shutdown"]);
    assert.equal(client.closed, true);
    assert.equal(s.session.client, undefined);
    assert.equal(s.session.agent, undefined);
    assert.equal(s.session.agentRemovedFiles, true);
    assert.deepEqual(s.listenerClosed, ["closed"]);
    assert.ok(!s.launcher.events.some((e) => e.startsWith("forceStop")));
  });

  it("target agent steps - an agent that does not answer Shutdown, or was never reached, is stopped otherwise", async () => {
    const s = setup();
    await s.steps.startAgent({ target: TARGET, sessionId: "r1/t1/0", leases: LEASES } as never, never);
    s.session.client = shutdown(false);
    await s.steps.stopAgent({ target: TARGET } as never, never);
    assert.deepEqual(s.launcher.events.slice(1), [`forceStop ${agentMarker("r1", "t1")}`]);
    assert.ok(s.lines.some((l) => /^warn Shutdown not answered \(socket hang up\)/.test(l)));
    assert.notEqual(s.session.agentRemovedFiles, true);

    const never_reached = setup();
    await never_reached.steps.startAgent(
      { target: TARGET, sessionId: "r1/t1/0", leases: LEASES } as never,
      never,
    );
    await never_reached.steps.stopAgent({ target: TARGET } as never, never);
    assert.deepEqual(never_reached.launcher.events.slice(1), [`forceStop ${agentMarker("r1", "t1")}`]);
    // Again, and for a target with no session: nothing to do, no error.
    await never_reached.steps.stopAgent({ target: TARGET } as never, never);
    await never_reached.steps.stopAgent({ target: { ...TARGET, id: "t2" } } as never, never);
    assert.equal(never_reached.launcher.events.length, 2);
  });

  it("target agent steps - after a forced cancel, or an Install left unanswered, the Shutdown is forced", async () => {
    for (const [cancel, abandoned] of [
      ["force", undefined],
      [undefined, "fw"],
    ] as const) {
      const s = setup();
      await s.steps.startAgent({ target: TARGET, sessionId: "r1/t1/0", leases: LEASES } as never, never);
      const client = shutdown(true);
      s.session.client = client;
      if (abandoned !== undefined) s.session.installAbandoned = abandoned;
      const stopping = s.steps.stopAgent({ target: TARGET, cancel } as never, never);
      setImmediate(() => s.launcher.exited({ exitCode: 0 }));
      await stopping;
      assert.deepEqual(client.fields, [{ reason: "run cancelled: stop the install", force: true }]);
      assert.equal(s.session.installAbandoned, undefined);
    }
    const graceful = setup();
    await graceful.steps.startAgent({ target: TARGET, sessionId: "r1/t1/0", leases: LEASES } as never, never);
    const client = shutdown(true);
    graceful.session.client = client;
    const stopping = graceful.steps.stopAgent({ target: TARGET, cancel: "graceful" } as never, never);
    setImmediate(() => graceful.launcher.exited({ exitCode: 0 }));
    await stopping;
    assert.deepEqual(client.fields, [{ reason: "run finished" }]);
  });

  it("target agent steps - a lost session is opened again for Shutdown; one that cannot be is stopped otherwise", async () => {
    const s = setup();
    await s.steps.startAgent({ target: TARGET, sessionId: "r1/t1/0", leases: LEASES } as never, never);
    s.session.client = Object.assign(shutdown(false), { closed: true });
    const fresh = shutdown(true);
    const signals: AbortSignal[] = [];
    s.session.reconnect = (signal) => (signals.push(signal), Promise.resolve(fresh));
    const stopping = s.steps.stopAgent({ target: TARGET, cancel: "force" } as never, never);
    setImmediate(() => s.launcher.exited({ exitCode: 0 }));
    await stopping;
    assert.deepEqual(fresh.calls, ["Shutdown"]);
    assert.equal(signals.length, 1);
    assert.equal(s.session.reconnect, undefined);
    assert.ok(!s.launcher.events.some((e) => e.startsWith("forceStop")));

    const gone = setup();
    await gone.steps.startAgent({ target: TARGET, sessionId: "r1/t1/0", leases: LEASES } as never, never);
    gone.session.client = Object.assign(shutdown(false), { closed: true });
    gone.session.reconnect = () => Promise.reject(new Error("connect ECONNREFUSED"));
    await gone.steps.stopAgent({ target: TARGET, cancel: "force" } as never, never);
    assert.deepEqual(gone.launcher.events.slice(1), [`forceStop ${agentMarker("r1", "t1")}`]);
    assert.ok(gone.lines.some((l) => /Shutdown not answered \(connect ECONNREFUSED\)/.test(l)));
  });

  it("target agent steps - removeFiles leaves the files of an agent that still runs, and removes them once it ended", async () => {
    const removed: string[] = [];
    const s = setup({
      transport: {
        launcher: new FakeLauncher(),
        files: { remove: (_s: unknown, runId: string) => (removed.push(runId), Promise.resolve()) },
      },
    } as never);
    const { createFileSteps } = await import("../../actors/target/file-steps.ts");
    const files = createFileSteps({ sessions: { find: () => s.session } as never });
    let exit: (status: { exitCode: number | null }) => void = () => undefined;
    s.session.agent = { exited: new Promise((resolve) => (exit = resolve)) };
    const aborted = new AbortController();
    aborted.abort(new Error("the step's deadline"));
    await assert.rejects(files.removeFiles({ runId: "r1", target: TARGET } as never, aborted.signal), {
      code: "AGENT_STILL_RUNNING",
      retryable: true,
    });
    assert.deepEqual(removed, []);
    exit({ exitCode: null });
    await files.removeFiles({ runId: "r1", target: TARGET } as never, never);
    assert.deepEqual(removed, ["r1"]);
    assert.equal(s.session.agent, undefined);
  });
});

/** The extKeyUsage purposes of a certificate, by name (openssl's text form, as X509Certificate has no field). */
function extendedKeyUsage(cert: X509Certificate): string[] {
  const oids: Record<string, string> = {
    "1.3.6.1.5.5.7.3.1": "serverAuth",
    "1.3.6.1.5.5.7.3.2": "clientAuth",
  };
  return (cert.keyUsage ?? []).map((oid) => oids[oid] ?? oid);
}
