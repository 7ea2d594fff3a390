/**
 * Stopping an install on the real agent (in process, real TLS, real child processes): a forced
 * Shutdown on a second connection is answered while the Install of the first still runs, and
 * stops the install's process group (TERM, then KILL for one that ignores TERM); a call abandoned
 * by its caller closes its session and leaves the install alone; the agent's own stop by signal
 * (its `stop` with force) stops the install too.
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { KILL_GRACE_MS } from "../../agent/protocol/deadlines.ts";
import { type AgentFixture, startAgentFixture } from "../support/agent.ts";

const fixtures: AgentFixture[] = [];
after(async () => {
  for (const f of fixtures) await f.cleanup();
});

async function fixture(): Promise<AgentFixture> {
  const f = await startAgentFixture();
  fixtures.push(f);
  return f;
}

/** Whether a process with this pid exists (a zombie counts as gone). */
async function alive(pid: number): Promise<boolean> {
  try {
    const status = await readFile(`/proc/${pid}/status`, "utf8");
    return !/^State:\s+Z/m.test(status);
  } catch {
    return false;
  }
}

/** Waits (bounded) until `file` holds a pid: the install's shell wrote it once it runs. */
async function pidIn(file: string, ms = 10_000): Promise<number> {
  const until = Date.now() + ms;
  for (;;) {
    const text = await readFile(file, "utf8").catch(() => "");
    if (/^\d+\n/.test(text)) return Number(text.trim());
    if (Date.now() > until) throw new Error(`no pid in ${file} within ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe("agent cancel", () => {
  it("agent cancel - a forced Shutdown on a second session is answered while the install runs, and stops its process group", async () => {
    const f = await fixture();
    const installer = await f.connect();
    // `exec`: the pid written is the sleep's own, the process that must be gone afterwards.
    const install = installer.call("Install", {
      componentId: "slow",
      command: "echo $$ > pid; exec sleep 600",
      timeoutMs: 3_600_000,
    });
    install.catch(() => undefined);
    const sleep = await pidIn(join(f.stagingDir, "pid"));
    assert.ok(await alive(sleep));

    const control = await f.connect();
    assert.notEqual(control.sessionId, installer.sessionId, "a session of its own");
    const started = Date.now();
    const answer = await control.call("Shutdown", { reason: "second Ctrl-C", force: true });
    const tookMs = Date.now() - started;
    assert.equal(answer.logFile, f.agent.log.path);
    assert.ok(tookMs < KILL_GRACE_MS, `answered after ${tookMs} ms: the sleep did not go on TERM`);
    assert.equal(await alive(sleep), false, "the install's sleep still runs");
    await assert.rejects(install, { code: "INSTALL_STOPPED", retryable: false });

    assert.match(await f.agent.stopped, /Shutdown \(forced\)/);
    assert.equal(f.agent.filesRemoved(), true);
    const log = await f.logText();
    assert.match(log, /stopping the install in progress: Shutdown \(forced\)/);
    assert.match(log, /install slow: the install was stopped/);
    assert.doesNotMatch(log, /waiting for the install in progress/);
  });

  it("agent cancel - an install that ignores TERM is killed after the grace", async () => {
    const f = await fixture();
    const installer = await f.connect();
    // An ignored signal stays ignored across exec: neither the shell nor the sleep ends on TERM.
    const install = installer.call("Install", {
      componentId: "stubborn",
      command: "trap '' TERM; echo $$ > pid; exec sleep 600",
      timeoutMs: 3_600_000,
    });
    install.catch(() => undefined);
    const sleep = await pidIn(join(f.stagingDir, "pid"));
    const control = await f.connect();
    const asked = performance.now();
    await control.call("Shutdown", { reason: "force", force: true });
    // TERM was ignored: only the KILL, a grace after it, ended the group (a lower bound only, which
    // a loaded machine cannot break).
    assert.ok(
      performance.now() - asked >= KILL_GRACE_MS - 500,
      `answered after ${Math.round(performance.now() - asked)} ms: KILL did not wait its grace`,
    );
    assert.equal(await alive(sleep), false);
    await assert.rejects(install, { code: "INSTALL_STOPPED" });
    await f.agent.stopped;
  });

  it("agent cancel - an abandoned call closes its session, the install runs on; an unforced Shutdown waits for it", async () => {
    const f = await fixture();
    const installer = await f.connect();
    const abandon = new AbortController();
    const install = installer.call(
      "Install",
      { componentId: "short", command: "echo $$ > pid; sleep 1; echo done > done", timeoutMs: 60_000 },
      { signal: abandon.signal },
    );
    const sleep = await pidIn(join(f.stagingDir, "pid"));
    abandon.abort(new Error("step stopped"));
    await assert.rejects(install, { code: "AGENT_CONNECTION", message: /abandoned/ });
    assert.equal(installer.closed, true);
    await assert.rejects(installer.call("Hello", {}), { code: "AGENT_CONNECTION" });
    // A connection's own signal: aborted, no session is opened.
    await assert.rejects(f.connect({ signal: AbortSignal.abort(new Error("step stopped")) }), /step stopped/);
    assert.ok(await alive(sleep), "an abandoned call does not stop the install");

    const control = await f.connect();
    await control.call("Shutdown", { reason: "run finished" });
    // Answered once the install had finished (its last line written), before the files went.
    assert.equal(await readFile(join(f.stagingDir, "done"), "utf8"), "done\n");
    assert.match(await f.logText(), /shutdown: waiting for the install in progress/);
    assert.match(await f.logText(), /install short: exit 0/);
  });

  it("agent cancel - the agent's forced stop (a signal) stops the install before it removes its files", async () => {
    const f = await fixture();
    const installer = await f.connect();
    const install = installer.call("Install", {
      componentId: "slow",
      command: "echo $$ > pid; exec sleep 600",
      timeoutMs: 3_600_000,
    });
    install.catch(() => undefined);
    const sleep = await pidIn(join(f.stagingDir, "pid"));
    await f.agent.stop("signal SIGTERM", { force: true });
    assert.equal(await alive(sleep), false);
    assert.equal(f.agent.filesRemoved(), true);
    assert.match(await f.logText(), /install slow: the install was stopped: signal SIGTERM/);
  });
});
