/**
 * The agent bundle with `--dialogue=files`, as a Windows target runs it: the bundle in a run
 * directory under a run root, driven over files exactly as the workstation does (config file,
 * out file read for complete lines, certificate written as `.part` and renamed, stop file), with
 * `SystemRoot` pointing at a directory whose `System32/netsh.exe` is a script that records its argv
 * (the test bed's scm-peer emulates netsh for real). And the same bundle without the flag still
 * speaks on stdin and stdout.
 */
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { access, chmod, copyFile, mkdir, mkdtemp, readFile, rename, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { after, before, describe, it } from "node:test";
import { buildAgent, type BuiltAgent } from "../../agent/build.ts";
import { AgentClient } from "../../agent/client/client.ts";
import {
  createRunCa,
  issueLeaf,
  type IssuedLeafWithKey,
  type RunCa,
} from "../../agent/client/credentials.ts";
import { completeEvents, DIALOGUE_FILES } from "../../agent/protocol/files-dialogue.ts";
import { ruleComment } from "../../agent/protocol/firewall-rule.ts";

/** Records each call as one line of tab-separated arguments; answers as netsh does. */
const FAKE_NETSH = `#!/bin/sh
root="$(dirname "$0")/.."
( IFS="$(printf '\\t')"; printf '%s\\n' "$*" ) >> "$root/netsh-calls.txt"
case "$3" in
  show)
    if [ -s "$root/netsh-rules.txt" ]; then cat "$root/netsh-rules.txt"; printf 'Ok.\\r\\n'
    else printf '\\r\\nNo rules match the specified criteria.\\r\\n'; exit 1; fi ;;
  delete) printf '\\r\\nDeleted 1 rule(s).\\r\\nOk.\\r\\n' ;;
  add) printf 'Ok.\\r\\n' ;;
  *) printf 'The syntax supplied for this command is not valid.\\r\\n'; exit 1 ;;
esac
`;

/** A `show rule` listing of these rule names, in netsh's layout. */
function listing(names: readonly string[]): string {
  const dashes = "-".repeat(70);
  return names
    .map((name) => `\r\n${"Rule Name:".padEnd(38)}${name}\r\n${dashes}\r\n${"Enabled:".padEnd(38)}Yes\r\n`)
    .join("");
}

interface Layout {
  readonly root: string;
  /** `SystemRoot`: holds System32/netsh.exe and what it records. */
  readonly windows: string;
  /** The run root (`C:\Windows\Temp\sumac`) and this run's directory in it. */
  readonly runRoot: string;
  readonly runDir: string;
}

async function layout(built: BuiltAgent, runId: string): Promise<Layout> {
  const root = await mkdtemp(join(tmpdir(), "sumac-files-"));
  const windows = join(root, "windows");
  await mkdir(join(windows, "System32"), { recursive: true });
  await writeFile(join(windows, "System32", "netsh.exe"), FAKE_NETSH);
  await chmod(join(windows, "System32", "netsh.exe"), 0o755);
  const runRoot = join(windows, "Temp", "sumac");
  const runDir = join(runRoot, runId);
  await mkdir(join(runDir, "staging"), { recursive: true });
  await copyFile(built.path, join(runDir, "agent.js"));
  return { root, windows, runRoot, runDir };
}

const children: ChildProcess[] = [];
const roots: string[] = [];
after(async () => {
  for (const child of children) child.kill("SIGKILL");
  for (const root of roots) await rm(root, { recursive: true, force: true });
});

/** Starts the bundle as cmd's `start /b node.exe agent.js <marker> --dialogue=files` does, elsewhere as cwd. */
function startFiles(
  l: Layout,
  runId: string,
  targetId: string,
): { child: ChildProcess; exited: Promise<number | null> } {
  const child = spawn(process.execPath, ["agent.js", `sumac-run=${runId}:${targetId}`, "--dialogue=files"], {
    cwd: l.runDir,
    env: { ...process.env, SystemRoot: l.windows },
    stdio: ["ignore", "ignore", "inherit"],
  });
  children.push(child);
  // An agent that does not stop fails the test (exit null) rather than hanging it.
  const kill = setTimeout(() => child.kill("SIGKILL"), 60_000);
  const exited = new Promise<number | null>((resolve) => child.on("exit", resolve)).finally(() =>
    clearTimeout(kill),
  );
  return { child, exited };
}

/** Polls the out file (every 50 ms, at most `ms`) until a complete line has `event`. */
async function waitForEvent(runDir: string, event: string, ms = 20_000): Promise<Record<string, unknown>> {
  const until = Date.now() + ms;
  for (;;) {
    const text = await readFile(join(runDir, DIALOGUE_FILES.out), "utf8").catch(() => "");
    const found = completeEvents(text).find((e) => e.event === event);
    if (found !== undefined) return found;
    if (Date.now() > until)
      throw new Error(`no ${event} line in ${DIALOGUE_FILES.out} within ${ms} ms: ${text}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** The calls the fake netsh recorded, each as its argv. */
async function netshCalls(l: Layout): Promise<string[][]> {
  const text = await readFile(join(l.windows, "netsh-calls.txt"), "utf8").catch(() => "");
  return text
    .split("\n")
    .filter((line) => line !== "")
    .map((line) => line.split("\t"));
}

interface Credentials {
  readonly ca: RunCa;
  readonly workstation: IssuedLeafWithKey;
}

function credentials(runId: string): Credentials {
  const ca = createRunCa({ runId, validForMs: 3_600_000 });
  const workstation = issueLeaf(ca, { commonName: "workstation", subjectAltNames: [], usage: "client" });
  return { ca, workstation };
}

function configOf(runId: string, targetId: string, c: Credentials): Record<string, unknown> {
  return {
    runId,
    targetId,
    caCertPem: c.ca.certPem,
    workstationFingerprint256: c.workstation.fingerprint256,
    stagingDir: "staging",
    programFiles: ["agent.js"],
    logDir: `../logs/${runId}`,
    idleTimeoutMs: 20_000,
    listen: { host: "127.0.0.1", port: 0 },
    workstationAddress: "127.0.0.1",
    firewall: "netsh",
  };
}

/** Issues the agent's server leaf on its key and hands it over as the workstation does. */
async function answerWithCertificate(l: Layout, c: Credentials, publicKeyPem: string, targetId: string) {
  const cert = issueLeaf(c.ca, {
    commonName: `agent-${targetId}`,
    subjectAltNames: ["127.0.0.1"],
    usage: "server",
    publicKey: publicKeyPem,
  });
  await writeFile(join(l.runDir, DIALOGUE_FILES.certPart), JSON.stringify({ certPem: cert.certPem }));
  await rename(join(l.runDir, DIALOGUE_FILES.certPart), join(l.runDir, DIALOGUE_FILES.cert));
  return cert;
}

describe("agent files dialogue", () => {
  let outDir: string;
  let built: BuiltAgent;
  before(async () => {
    outDir = await mkdtemp(join(tmpdir(), "sumac-files-bundle-"));
    roots.push(outDir);
    built = await buildAgent({ outDir });
  });

  it("agent files dialogue - over files: config taken, key with pid, certificate, listening with netsh's rule, the stop file stops it", async () => {
    const runId = "run-files";
    const targetId = "t1";
    const l = await layout(built, runId);
    roots.push(l.root);
    // Other runs: one whose directory is not here, one whose agent stopped, one whose agent lives.
    const dead = ruleComment({ runId: "run-dead", targetId: "t1", port: 62001 });
    const done = ruleComment({ runId: "run-done", targetId: "t1", port: 62002 });
    const live = ruleComment({ runId: "run-live", targetId: "t1", port: 62003 });
    const sibling = ruleComment({ runId, targetId: "t2", port: 62004 });
    await mkdir(join(l.runRoot, "run-done"));
    await writeFile(
      join(l.runRoot, "run-done", DIALOGUE_FILES.out),
      '{"event":"listening","port":62002,"busy":[],"fingerprint256":"x"}\n{"event":"stopped","reason":"Shutdown","removed":true}\n',
    );
    await mkdir(join(l.runRoot, "run-live"));
    await writeFile(
      join(l.runRoot, "run-live", DIALOGUE_FILES.out),
      '{"event":"listening","port":62003,"busy":[],"fingerprint256":"x"}\n',
    );
    const foreign = "Remote Desktop - User Mode (TCP-In)";
    await writeFile(join(l.windows, "netsh-rules.txt"), listing([foreign, dead, done, live, sibling]));

    const c = credentials(runId);
    await writeFile(join(l.runDir, DIALOGUE_FILES.config), JSON.stringify(configOf(runId, targetId, c)));
    const { child, exited } = startFiles(l, runId, targetId);

    const key = await waitForEvent(l.runDir, "publicKey");
    assert.equal(key.pid, child.pid);
    await assert.rejects(access(join(l.runDir, DIALOGUE_FILES.config)), { code: "ENOENT" });
    const cert = await answerWithCertificate(l, c, key.publicKeyPem as string, targetId);
    const listening = await waitForEvent(l.runDir, "listening");
    assert.equal(listening.fingerprint256, cert.fingerprint256);
    await assert.rejects(access(join(l.runDir, DIALOGUE_FILES.cert)), { code: "ENOENT" });

    // It serves TLS with the issued leaf, to the pinned workstation.
    const client = await AgentClient.connect({
      host: "127.0.0.1",
      port: listening.port as number,
      caCertPem: c.ca.certPem,
      certPem: c.workstation.certPem,
      keyPem: c.workstation.keyPem,
      agentFingerprint256: cert.fingerprint256,
      runId,
      targetId,
      callTimeoutMs: 10_000,
    });
    try {
      assert.equal((await client.call("Hello", {})).pid, child.pid);
    } finally {
      client.close();
    }

    const own = ruleComment({ runId, targetId, port: listening.port as number });
    assert.deepEqual(await netshCalls(l), [
      ["advfirewall", "firewall", "show", "rule", "name=all", "dir=in"],
      // Not run-dead's: its directory is not here (it may be under another run root).
      ["advfirewall", "firewall", "delete", "rule", `name=${done}`],
      [
        "advfirewall",
        "firewall",
        "add",
        "rule",
        `name=${own}`,
        "dir=in",
        "action=allow",
        "protocol=TCP",
        `localport=${String(listening.port)}`,
        "remoteip=127.0.0.1",
        "profile=any",
      ],
    ]);

    await writeFile(join(l.runDir, DIALOGUE_FILES.stop), "");
    assert.equal(await exited, 0);
    const stopped = await waitForEvent(l.runDir, "stopped", 0);
    assert.deepEqual(stopped, { event: "stopped", reason: "the stop file agent-stop", removed: true });
    await assert.rejects(access(join(l.runDir, DIALOGUE_FILES.stop)), { code: "ENOENT" });
    assert.deepEqual((await netshCalls(l)).at(-1), [
      "advfirewall",
      "firewall",
      "delete",
      "rule",
      `name=${own}`,
    ]);
    // The program files (relative: the bundle) and the staging directory are gone, the log kept.
    await assert.rejects(access(join(l.runDir, "agent.js")), { code: "ENOENT" });
    await assert.rejects(access(join(l.runDir, "staging")), { code: "ENOENT" });
    const log = await readFile(join(l.runRoot, "logs", runId, `${targetId}.log`), "utf8");
    assert.match(
      log,
      /firewall: sweep of gone runs' rules: .*"removed":\["sumac run=run-done[^\]]*\],"kept":\[[^\]]*run-dead[^\]]*run-live/,
    );
    assert.match(log, /stopping: the stop file agent-stop/);
    assert.match(log, /firewall: \{"status":"removed"/);
    // Every line of the out file is one event, in order.
    const text = await readFile(join(l.runDir, DIALOGUE_FILES.out), "utf8");
    assert.deepEqual(
      completeEvents(text).map((e) => e.event),
      ["publicKey", "listening", "stopped"],
    );
    assert.ok(text.endsWith("\n"));
  });

  it("agent files dialogue - the stop file before the server exists ends the agent as SIGTERM does", async () => {
    const runId = "run-early";
    const l = await layout(built, runId);
    roots.push(l.root);
    await writeFile(
      join(l.runDir, DIALOGUE_FILES.config),
      JSON.stringify(configOf(runId, "t1", credentials(runId))),
    );
    const { exited } = startFiles(l, runId, "t1");
    await waitForEvent(l.runDir, "publicKey");
    await writeFile(join(l.runDir, DIALOGUE_FILES.stop), "");
    assert.equal(await exited, 143);
    await assert.rejects(access(join(l.runDir, DIALOGUE_FILES.stop)), { code: "ENOENT" });
    // The sweep may have listed the rules; no rule was added.
    assert.deepEqual(
      (await netshCalls(l)).filter((call) => call[2] !== "show"),
      [],
    );
  });

  it("agent files dialogue - a config that cannot be used fails the agent with a failed line and exit 1", async () => {
    const runId = "run-bad";
    const l = await layout(built, runId);
    roots.push(l.root);
    const config = { ...configOf(runId, "t1", credentials(runId)), firewall: "iptables" };
    await writeFile(join(l.runDir, DIALOGUE_FILES.config), JSON.stringify(config));
    const { exited } = startFiles(l, runId, "t1");
    assert.equal(await exited, 1);
    assert.deepEqual(await waitForEvent(l.runDir, "failed", 0), {
      event: "failed",
      message: 'config.firewall must be "nft", "netsh" or "none"',
    });
    await assert.rejects(access(join(l.runDir, DIALOGUE_FILES.config)), { code: "ENOENT" });
  });

  it("agent files dialogue - without --dialogue=files the bundle speaks on stdin and stdout as before", async () => {
    const runId = "run-stdio";
    const l = await layout(built, runId);
    roots.push(l.root);
    const c = credentials(runId);
    const child = spawn(process.execPath, [join(l.runDir, "agent.js"), `sumac-run=${runId}:t1`], {
      env: { ...process.env, SystemRoot: l.windows },
      stdio: ["pipe", "pipe", "inherit"],
    });
    children.push(child);
    const kill = setTimeout(() => child.kill("SIGKILL"), 60_000);
    const exited = new Promise<number | null>((resolve) => child.on("exit", resolve)).finally(() =>
      clearTimeout(kill),
    );
    const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
    const next = async () => JSON.parse((await lines.next()).value ?? "null") as Record<string, unknown>;
    const config = {
      ...configOf(runId, "t1", c),
      stagingDir: join(l.runDir, "staging"),
      programFiles: [join(l.runDir, "agent.js")],
      logDir: join(l.root, "log"),
      firewall: "none",
    };
    child.stdin.write(`${JSON.stringify(config)}\n`);
    const key = await next();
    assert.deepEqual(Object.keys(key), ["event", "publicKeyPem"], "no pid over stdio");
    const cert = issueLeaf(c.ca, {
      commonName: "agent-t1",
      subjectAltNames: ["127.0.0.1"],
      usage: "server",
      publicKey: key.publicKeyPem as string,
    });
    child.stdin.write(`${JSON.stringify({ certPem: cert.certPem })}\n`);
    const listening = await next();
    assert.equal(listening.event, "listening");
    child.kill("SIGTERM");
    assert.deepEqual(await next(), { event: "stopped", reason: "signal SIGTERM", removed: true });
    assert.equal(await exited, 0);
    // Nothing of the files dialogue, and netsh never run.
    await assert.rejects(access(join(l.runDir, DIALOGUE_FILES.out)), { code: "ENOENT" });
    assert.deepEqual(await netshCalls(l), []);
  });
});
