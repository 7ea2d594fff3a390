import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { access, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { type AgentFixture, startAgentFixture } from "../support/agent.ts";

const exists = (path: string) =>
  access(path).then(
    () => true,
    () => false,
  );

describe("agent exchange", () => {
  let fixture: AgentFixture;
  before(async () => {
    fixture = await startAgentFixture();
  });
  after(async () => {
    await fixture.cleanup();
  });

  it("agent exchange - hello, inventory, stage, install, logs and shutdown succeed, and only the log remains", async () => {
    const client = await fixture.connect();

    const hello = await client.call("Hello", {});
    assert.equal(hello.sessionId, client.sessionId);
    assert.equal(hello.port, fixture.port);
    assert.equal(hello.runId, fixture.runId);
    assert.equal(hello.targetId, fixture.targetId);
    assert.equal(hello.stagingDir, fixture.stagingDir);
    assert.equal(hello.pid, process.pid);
    assert.equal(hello.nodeVersion, process.version);

    const inventory = await client.call("Inventory", {
      component: [
        { id: "present", detectCommand: "echo 2.4.1" },
        { id: "missing", detectCommand: "exit 1" },
        { id: "broken", detectCommand: "exit 7" },
      ],
    });
    assert.deepEqual(
      inventory.components.map((c) => [c.id, c.status, c.version, c.exitCode]),
      [
        ["present", "installed", "2.4.1", 0],
        ["missing", "absent", "absent", 1],
        ["broken", "failed", "absent", 7],
      ],
    );

    // The push channel's part: the file is already in the staging directory.
    const payload = Buffer.from(
      "#!/bin/sh\necho installing component\necho oops >&2\necho sumac:reboot-required\nexit 0\n",
    );
    await writeFile(join(fixture.stagingDir, "install.sh"), payload, { mode: 0o755 });
    const sha256 = createHash("sha256").update(payload).digest("hex");
    const staged = await client.call("Stage", { name: "install.sh", size: payload.byteLength, sha256 });
    assert.deepEqual(staged, { name: "install.sh", size: payload.byteLength, sha256 });

    const install = await client.call("Install", {
      componentId: "comp-1",
      command: "./install.sh",
      timeoutMs: 20_000,
    });
    assert.equal(install.exitCode, 0);
    assert.equal(install.rebootRequired, true);
    assert.equal(install.outputTruncated, false);

    const logs = await client.call("Logs", {});
    const log = logs.files.find((f) => f.name === `${fixture.targetId}.log`);
    assert.ok(log, "the agent's log is returned");
    const text = log.content.toString("utf8");
    assert.match(text, /install comp-1 stdout: installing component/);
    assert.match(text, /install comp-1 stderr: oops/);
    assert.match(text, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z info /m);

    const shutdown = await client.call("Shutdown", { reason: "run finished" });
    assert.equal(shutdown.logFile, fixture.agent.log.path);
    const reason = await fixture.agent.stopped;
    assert.match(reason, /run finished/);

    assert.equal(await exists(fixture.programDir), false, "program files removed");
    assert.equal(await exists(fixture.stagingDir), false, "staging directory removed");
    assert.equal(await exists(fixture.agent.log.path), true, "log kept");
    assert.equal(fixture.agent.https.listening, false, "no longer listening");
    assert.match(await fixture.logText(), /stopped: Shutdown from .*run finished/);
  });
});
