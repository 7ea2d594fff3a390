import assert from "node:assert/strict";
import { createServer, type Server } from "node:net";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { openAgentLog } from "../../agent/server/agent-log.ts";
import { CallbackClient } from "../../agent/server/callback-client.ts";
import { type CallbackListener, startCallbackListener } from "../../agent/client/callback-listener.ts";
import type { CallbackMessage } from "../../agent/protocol/callback-messages.ts";
import { createRunCa, issueLeaf } from "../../agent/client/credentials.ts";
import { type AgentFixture, startAgentFixture } from "../support/agent.ts";

const RUN_ID = "run-test";

async function waitFor<T>(what: string, find: () => T | undefined, timeoutMs = 10_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const found = find();
    if (found !== undefined) return found;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

describe("agent callback", () => {
  const ca = createRunCa({ runId: RUN_ID, validForMs: 3_600_000 });
  const workstation = issueLeaf(ca, {
    commonName: "workstation-callback",
    subjectAltNames: ["127.0.0.1"],
    usage: "server",
  });
  const received: CallbackMessage[] = [];
  const logLines: string[] = [];
  let blocker: Server | undefined;
  let listener: CallbackListener;
  let fixture: AgentFixture;
  let agentFingerprint = "";
  let scratch: string;

  before(async () => {
    scratch = await mkdtemp(join(tmpdir(), "sumac-callback-"));
    // 61000 taken by another server (if something else already has it, it is taken all the same).
    blocker = createServer();
    await new Promise<void>((resolve) => {
      blocker?.once("error", () => {
        blocker = undefined;
        resolve();
      });
      blocker?.listen({ host: "127.0.0.1", port: 61000, exclusive: true }, resolve);
    });
    listener = await startCallbackListener({
      host: "127.0.0.1",
      caCertPem: ca.certPem,
      certPem: workstation.certPem,
      keyPem: workstation.keyPem,
      agentFingerprints: (fp) => fp === agentFingerprint,
      runId: RUN_ID,
      onMessage: (message) => received.push(message),
      log: (level, line) => logLines.push(`${level} ${line}`),
    });
    fixture = await startAgentFixture(
      { callback: { host: "127.0.0.1", port: listener.port, fingerprint256: workstation.fingerprint256 } },
      { ca },
    );
    // The listener pins the agent's callback leaf, not the server leaf of its listener.
    agentFingerprint = fixture.agentCredentials.callbackFingerprint256;
  });
  after(async () => {
    await fixture.cleanup();
    await listener.close();
    await new Promise((resolve) => (blocker === undefined ? resolve(undefined) : blocker.close(resolve)));
    await rm(scratch, { recursive: true, force: true });
  });

  it("agent callback - the listener skips the busy 61000 and binds 61001", () => {
    if (blocker === undefined) {
      assert.ok(listener.port > 61000, `bound ${listener.port}`);
      return;
    }
    assert.equal(listener.port, 61001);
    assert.deepEqual(listener.busy, [61000]);
  });

  it("agent callback - the agent's first heartbeat arrives as soon as it listens", async () => {
    assert.equal(
      await listener.heardFrom(fixture.agentCredentials.callbackFingerprint256, { timeoutMs: 5_000 }),
      true,
    );
    assert.ok(received.some((m) => m.kind === "heartbeat"));
    assert.equal(await listener.heardFrom(fixture.agent.fingerprint256, { timeoutMs: 50 }), false);
  });

  it("agent callback - an install's output lines and result reach onMessage", async () => {
    const client = await fixture.connect();
    const install = await client.call("Install", {
      componentId: "comp-1",
      command: "echo first line; echo sumac:progress 40; echo second line >&2; exit 3",
      timeoutMs: 10_000,
    });
    assert.equal(install.exitCode, 3);
    const result = await waitFor("installResult", () => received.find((m) => m.kind === "installResult"));
    assert.deepEqual(result, {
      kind: "installResult",
      component: "comp-1",
      exitCode: 3,
      rebootRequired: false,
    });
    const lines = received.flatMap((m) => (m.kind === "log" ? [m.line] : []));
    assert.deepEqual([...lines].sort(), [
      "stderr: second line",
      "stdout: first line",
      "stdout: sumac:progress 40",
    ]);
    const percents = received.flatMap((m) => (m.kind === "progress" ? [m.percent] : []));
    assert.deepEqual(percents, [0, 40, 100], "start, the command's own marker, end");
  });

  it("agent callback - a replayed message is rejected with REPLAYED", async () => {
    const agentCert = issueLeaf(ca, { commonName: "agent-replayer", subjectAltNames: [], usage: "client" });
    agentFingerprint = agentCert.fingerprint256;
    const client = new CallbackClient({
      target: { host: "127.0.0.1", port: listener.port, fingerprint256: workstation.fingerprint256 },
      runId: RUN_ID,
      caCertPem: ca.certPem,
      certPem: agentCert.certPem,
      keyPem: agentCert.keyPem,
      log: openAgentLog({ dir: scratch, targetId: "replayer" }),
    });
    try {
      const before = received.length;
      const wire = await client.prepare({ kind: "log", line: "once only" });
      const first = await client.sendWire(wire);
      assert.equal(first.status, 200);
      const replay = await client.sendWire(wire);
      assert.equal(replay.status, 500);
      assert.match(replay.body.toString("utf8"), /<tns:code>REPLAYED<\/tns:code>/);
      assert.equal(received.length, before + 1);
      assert.ok(
        logLines.some((l) => /^warn rejected REPLAYED /.test(l)),
        logLines.join("\n"),
      );
    } finally {
      client.close();
      agentFingerprint = fixture.agentCredentials.callbackFingerprint256;
    }
  });

  it("agent callback - another agent of the run is refused by this target's listener, with either of its leaves", async () => {
    // A second real agent of the same run (same CA), told to call back to the first one's listener.
    const other = await startAgentFixture(
      { callback: { host: "127.0.0.1", port: listener.port, fingerprint256: workstation.fingerprint256 } },
      { ca, targetId: "target-2" },
    );
    try {
      const before = received.length;
      // Its callback leaf passes the TLS handshake (same CA, clientAuth) and is refused by the pin.
      const refused = await waitFor("the refusal of the other agent's callback leaf", () =>
        logLines.find((l) =>
          /^warn rejected UNKNOWN_AGENT from 127\.0\.0\.1:\d+ CN=agent-callback-target-2 /.test(l),
        ),
      );
      assert.match(refused, new RegExp(`sha256=${other.agentCredentials.callbackFingerprint256}`));
      await other.waitForLog(/warn callback heartbeat not delivered/);
      assert.equal(
        await listener.heardFrom(other.agentCredentials.callbackFingerprint256, { timeoutMs: 200 }),
        false,
      );

      // Its server leaf (serverAuth only) cannot even be a TLS client: the handshake fails.
      const log = openAgentLog({ dir: scratch, targetId: "other-server-leaf" });
      const client = new CallbackClient({
        target: { host: "127.0.0.1", port: listener.port, fingerprint256: workstation.fingerprint256 },
        runId: RUN_ID,
        caCertPem: ca.certPem,
        certPem: other.agentCredentials.certPem,
        keyPem: other.agentCredentials.keyPem,
        log,
        timeoutMs: 5_000,
      });
      try {
        assert.equal(await client.send({ kind: "log", line: "from the other agent's server leaf" }), false);
      } finally {
        client.close();
      }
      await waitFor("the TLS refusal of the server leaf", () =>
        logLines.find((l) => /^warn rejected TLS_CLIENT .*INVALID_PURPOSE/.test(l)),
      );
      assert.equal(received.length, before, "nothing from the other agent was taken");
      // Refused before its HTTP was read: no request ever reached the listener's handler.
      assert.ok(!logLines.some((l) => /NO_SESSION/.test(l)), logLines.join("\n"));
    } finally {
      await other.cleanup();
    }
  });

  it("agent callback - a certificate of another CA is refused in the TLS handshake", async () => {
    const otherCa = createRunCa({ runId: "run-other", validForMs: 3_600_000 });
    const stranger = issueLeaf(otherCa, {
      commonName: "agent-stranger",
      subjectAltNames: [],
      usage: "client",
    });
    const log = openAgentLog({ dir: scratch, targetId: "stranger" });
    const client = new CallbackClient({
      target: { host: "127.0.0.1", port: listener.port, fingerprint256: workstation.fingerprint256 },
      runId: RUN_ID,
      // The stranger trusts the run CA (so it gets as far as presenting its own certificate).
      caCertPem: ca.certPem,
      certPem: stranger.certPem,
      keyPem: stranger.keyPem,
      log,
      timeoutMs: 5_000,
    });
    try {
      const before = received.length;
      assert.equal(await client.send({ kind: "log", line: "from a stranger" }), false);
      assert.equal(received.length, before);
      await waitFor("the TLS rejection", () => logLines.find((l) => /^warn rejected TLS_CLIENT /.test(l)));
    } finally {
      client.close();
    }
  });
});
