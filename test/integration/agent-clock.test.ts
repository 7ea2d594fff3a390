/**
 * Clocks (issue 13, item 5), against a real agent over real TLS:
 *
 * - the agent's clock 2 minutes ahead of the workstation's (its `now` injected): the whole
 *   exchange succeeds, callbacks included, since each end judges timestamps against the offset it
 *   measured at the session's first message;
 * - a run past 24 hours: the run's CA and every leaf made as compose makes them for a long job,
 *   but 25 hours ago; handshakes now, to the agent and to the callback listener, still succeed
 *   (a CA of the former fixed 24 hours, made then, fails them).
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { startCallbackListener } from "../../agent/client/callback-listener.ts";
import { createRunCa, issueLeaf, type RunCa } from "../../agent/client/credentials.ts";
import type { CallbackMessage } from "../../agent/protocol/callback-messages.ts";
import { listenOn } from "../../agent/server/listen.ts";
import { createRunCredentials } from "../../run/compose.ts";
import type { Job } from "../../run/job/types.ts";
import { jobLifetimeMs } from "../../run/run-lifetime.ts";
import { startAgentFixture } from "../support/agent.ts";

const HOUR = 3_600_000;
const closers: (() => Promise<unknown>)[] = [];
after(async () => {
  for (const close of closers.reverse()) await close();
});

async function waitFor<T>(what: string, find: () => T | undefined, timeoutMs = 10_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const found = find();
    if (found !== undefined) return found;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** A callback listener of `ca` on a free port, with a leaf issued at `issuedAt`. */
async function listenerOf(ca: RunCa, allowed: () => string, issuedAt?: number) {
  const leaf = issueLeaf(ca, {
    commonName: "callback",
    subjectAltNames: ["127.0.0.1"],
    usage: "server",
    ...(issuedAt === undefined ? {} : { now: issuedAt }),
  });
  const received: CallbackMessage[] = [];
  const lines: string[] = [];
  const listener = await startCallbackListener({
    host: "127.0.0.1",
    bind: async (server) => ({ port: await listenOn({ host: "127.0.0.1", port: 0 })(server), busy: [] }),
    caCertPem: ca.certPem,
    certPem: leaf.certPem,
    keyPem: leaf.keyPem,
    agentFingerprints: (fp) => fp === allowed(),
    runId: "run-test",
    onMessage: (message) => received.push(message),
    log: (level, line) => lines.push(`${level} ${line}`),
  });
  closers.push(() => listener.close());
  return { listener, leaf, received, lines };
}

describe("agent clocks", () => {
  it("agent clocks - the agent's clock 2 minutes ahead: hello, inventory, stage, install with its callbacks, logs and shutdown succeed", async () => {
    const ca = createRunCa({ runId: "run-test", validForMs: HOUR });
    let allowed = "";
    const cb = await listenerOf(ca, () => allowed);
    const fixture = await startAgentFixture(
      {
        now: () => Date.now() + 2 * 60_000,
        callback: { host: "127.0.0.1", port: cb.listener.port, fingerprint256: cb.leaf.fingerprint256 },
      },
      { ca },
    );
    closers.push(() => fixture.cleanup());
    allowed = fixture.agentCredentials.callbackFingerprint256;

    // The first heartbeat, stamped 2 minutes ahead, is taken by the listener.
    assert.equal(await cb.listener.heardFrom(allowed, { timeoutMs: 5_000 }), true);
    const client = await fixture.connect();
    await client.call("Hello", {});
    const offset = client.clockOffsetMs ?? 0;
    assert.ok(Math.abs(offset - 120_000) < 5_000, `offset measured at Hello: ${offset} ms`);
    await client.call("Inventory", { component: [{ id: "c", detectCommand: "exit 1" }] });
    const payload = Buffer.from("#!/bin/sh\necho installed\n");
    await writeFile(join(fixture.stagingDir, "install.sh"), payload, { mode: 0o755 });
    await client.call("Stage", {
      name: "install.sh",
      size: payload.byteLength,
      sha256: createHash("sha256").update(payload).digest("hex"),
    });
    const install = await client.call("Install", {
      componentId: "c",
      command: "./install.sh",
      timeoutMs: 20_000,
    });
    assert.equal(install.exitCode, 0);
    await waitFor("the install's result on the callback listener", () =>
      cb.received.find((m) => m.kind === "installResult"),
    );
    assert.ok(cb.received.some((m) => m.kind === "log" && m.line === "stdout: installed"));
    await client.call("Logs", {});
    await client.call("Shutdown", { reason: "run finished" });
    assert.match(await fixture.agent.stopped, /run finished/);
    assert.ok(!cb.lines.some((l) => /TIMESTAMP/.test(l)), cb.lines.join("\n"));
    assert.doesNotMatch(await fixture.logText(), /TIMESTAMP/);
  });

  it("agent clocks - a run past 24 hours: the CA and leaves made 25 hours ago for a long job still shake hands", async () => {
    // A job that can last days: 1,000 targets, 32 at a time, default deadlines.
    const job = {
      targets: Array.from({ length: 1000 }, (_, i) => ({ id: `t${i}` })),
      package: { name: "p", components: [{ id: "c", version: "1" }] },
      options: { concurrency: 32, policy: {} },
    } as unknown as Job;
    const lifetime = jobLifetimeMs(job);
    assert.ok(lifetime > 25 * HOUR, `the CA lasts ${lifetime / HOUR} h`);
    const then = Date.now() - 25 * HOUR;
    const { ca, client: workstation } = createRunCredentials("run-test", lifetime, then);

    let allowed = "";
    const cb = await listenerOf(ca, () => allowed, then);
    const fixture = await startAgentFixture(
      { callback: { host: "127.0.0.1", port: cb.listener.port, fingerprint256: cb.leaf.fingerprint256 } },
      { ca, workstation, issuedAt: then },
    );
    closers.push(() => fixture.cleanup());
    allowed = fixture.agentCredentials.callbackFingerprint256;
    // The agent's callback handshake now, then the workstation's.
    assert.equal(await cb.listener.heardFrom(allowed, { timeoutMs: 5_000 }), true);
    const client = await fixture.connect();
    assert.equal((await client.call("Hello", {})).targetId, fixture.targetId);

    // With the former fixed 24 hours, the same handshakes fail: the CA has expired.
    const old = createRunCredentials("run-old", 24 * HOUR, then);
    const expired = await startAgentFixture({}, { ca: old.ca, workstation: old.client, issuedAt: then });
    closers.push(() => expired.cleanup());
    await assert.rejects((async () => (await expired.connect()).call("Hello", {}))(), (error: Error) =>
      /expired/i.test(error.message),
    );
  });
});
