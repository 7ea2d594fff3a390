import assert from "node:assert/strict";
import { access } from "node:fs/promises";
import { describe, it } from "node:test";
import { startAgentFixture } from "../support/agent.ts";

const exists = (path: string) =>
  access(path).then(
    () => true,
    () => false,
  );

describe("agent idle shutdown", () => {
  it("agent idle shutdown - with no authenticated request, the agent removes itself and logs why", async () => {
    const fixture = await startAgentFixture({ idleTimeoutMs: 300 });
    try {
      // An authenticated call resets the clock; then the workstation goes silent.
      const client = await fixture.connect();
      await client.call("Hello", {});
      const reason = await fixture.agent.stopped;
      assert.match(reason, /idle timeout/);
      assert.equal(await exists(fixture.programDir), false);
      assert.equal(await exists(fixture.stagingDir), false);
      assert.match(await fixture.logText(), /stopped: no authenticated request for 300 ms \(idle timeout\)/);
      assert.equal(fixture.agent.https.listening, false);
    } finally {
      await fixture.cleanup();
    }
  });
});
