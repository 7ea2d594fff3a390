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
      { ca, agentLeafUsage: "server-and-client" },
    );
    agentFingerprint = fixture.agent.fingerprint256;
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
    const agentCert = issueLeaf(ca, {
      commonName: "agent-replayer",
      subjectAltNames: ["127.0.0.1"],
      usage: "server-and-client",
    });
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
      agentFingerprint = fixture.agent.fingerprint256;
    }
  });

  it("agent callback - a certificate of another CA is refused in the TLS handshake", async () => {
    const otherCa = createRunCa({ runId: "run-other", validForMs: 3_600_000 });
    const stranger = issueLeaf(otherCa, {
      commonName: "agent-stranger",
      subjectAltNames: ["127.0.0.1"],
      usage: "server-and-client",
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
