/**
 * The agent's callback queue under a flood, against the real callback listener: bounded in
 * messages and bytes, what overflows counted and said once (to the workstation and in the agent's
 * log), and the messages that matter (an install's result) still sent.
 */
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { type CallbackListener, startCallbackListener } from "../../agent/client/callback-listener.ts";
import { createRunCa, issueLeaf } from "../../agent/client/credentials.ts";
import type { CallbackMessage } from "../../agent/protocol/callback-messages.ts";
import { openAgentLog } from "../../agent/server/agent-log.ts";
import { CallbackClient } from "../../agent/server/callback-client.ts";

const RUN_ID = "run-overflow";

describe("callback overflow", () => {
  const ca = createRunCa({ runId: RUN_ID, validForMs: 3_600_000 });
  const workstation = issueLeaf(ca, { commonName: "ws", subjectAltNames: ["127.0.0.1"], usage: "server" });
  const agent = issueLeaf(ca, {
    commonName: "agent",
    subjectAltNames: ["127.0.0.1"],
    usage: "server-and-client",
  });
  const received: CallbackMessage[] = [];
  let listener: CallbackListener;
  let scratch: string;

  before(async () => {
    scratch = await mkdtemp(join(tmpdir(), "sumac-overflow-"));
    listener = await startCallbackListener({
      host: "127.0.0.1",
      basePort: 61500,
      caCertPem: ca.certPem,
      certPem: workstation.certPem,
      keyPem: workstation.keyPem,
      agentFingerprints: (fp) => fp === agent.fingerprint256,
      runId: RUN_ID,
      onMessage: (message) => received.push(message),
      log: () => undefined,
    });
  });
  after(async () => {
    await listener.close();
    await rm(scratch, { recursive: true, force: true });
  });

  it("callback overflow - a flood is queued up to the bound, the rest counted, said once, and the result still goes", async () => {
    const log = openAgentLog({ dir: scratch, targetId: "flood" });
    const client = new CallbackClient({
      target: { host: "127.0.0.1", port: listener.port, fingerprint256: workstation.fingerprint256 },
      runId: RUN_ID,
      caCertPem: ca.certPem,
      certPem: agent.certPem,
      keyPem: agent.keyPem,
      log,
      maxQueued: 200,
      maxQueuedBytes: 16 * 1024,
    });
    try {
      const total = 20_000;
      const line = `stdout: ${"x".repeat(100)}`;
      const sent: Promise<boolean>[] = [];
      for (let i = 0; i < total; i++) sent.push(client.send({ kind: "log", line }));
      const outcomes = await Promise.all(sent);
      const accepted = outcomes.filter(Boolean).length;
      // 16 KiB of 172-byte messages: at most 95 wait at once, and nothing drained while we sent.
      assert.ok(accepted > 0 && accepted <= 95, `${accepted} accepted`);
      assert.equal(
        await client.send({ kind: "installResult", component: "c", exitCode: 0, rebootRequired: false }),
        true,
      );

      const logs = received.flatMap((m) => (m.kind === "log" ? [m.line] : []));
      assert.equal(logs.filter((l) => l === line).length, accepted);
      const said = logs.filter((l) => l.startsWith("agent: "));
      assert.deepEqual(said, [
        `agent: ${total - accepted} output lines (${(total - accepted) * line.length} bytes) not sent: the workstation did not take them as fast as they came`,
      ]);
      assert.equal(received.at(-1)?.kind, "installResult", "the result comes after the count");

      const text = await readFile(log.path, "utf8");
      assert.equal(text.match(/callbacks dropped from here/g)?.length, 1, text);
      assert.equal(text.match(/callbacks dropped: /g)?.length, 1, text);
      assert.ok(text.length < 2048, `${text.length} characters of log for ${total - accepted} drops`);
    } finally {
      client.close();
    }
  });
});
