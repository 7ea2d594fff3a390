/**
 * The real agent bundle on a Linux target: built from agent/server/main.ts, copied over SFTP into a
 * `linux-target-node` container (Debian 12, Node 18), started with `node` over an SSH exec
 * channel, and driven through its start-up dialogue on that channel's stdin/stdout, as the push
 * channel will. The workstation then calls it over mutual TLS at the container's bridge address,
 * and the agent calls back to a listener on this host's bridge address. The container has
 * NET_ADMIN, so the agent's nft registration runs for real.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { createInterface } from "node:readline";
import { after, before, describe, it } from "node:test";
import type ssh2 from "ssh2";
import { buildAgent, type BuiltAgent } from "../../agent/build.ts";
import { AgentClient } from "../../agent/client/client.ts";
import { type CallbackListener, startCallbackListener } from "../../agent/client/callback-listener.ts";
import type { CallbackMessage } from "../../agent/protocol/callback-messages.ts";
import { createRunCa, issueLeaf, type RunCa } from "../../agent/client/credentials.ts";
import { deadline } from "../support/container.ts";
import { containerSkipReason } from "../support/engine.ts";
import { sftpPut, sshLogin } from "../support/ssh.ts";
import { startLinuxTarget, type LinuxTarget } from "../support/linux-target.ts";

const BASE_PORT = 62286;
const STEP_MS = 15_000;

/** Runs `sh -c cmd` in the container; fails unless it exits 0. */
async function sh(target: LinuxTarget, cmd: string): Promise<string> {
  const outcome = await target.exec(cmd, STEP_MS);
  assert.equal(outcome.exitCode, 0, `'${cmd}' failed:\n${outcome.stdout}\n${outcome.stderr}`);
  return outcome.stdout;
}

/** Polls `check` every 200 ms until it holds, for at most `ms`. */
async function eventually(what: string, ms: number, check: () => Promise<boolean>): Promise<void> {
  const until = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`${what}: not so within ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/** The container's default gateway, i.e. this host's address on the bridge as the target sees it. */
async function gatewayOf(target: LinuxTarget): Promise<string> {
  const routes = await sh(target, "cat /proc/net/route");
  const line = routes.split("\n").find((l) => l.split(/\s+/)[1] === "00000000");
  const hex = line?.split(/\s+/)[2];
  if (hex === undefined) throw new Error(`no default route in the container:\n${routes}`);
  // Little-endian hex, as the kernel prints it.
  return [6, 4, 2, 0].map((i) => parseInt(hex.slice(i, i + 2), 16)).join(".");
}

/** Whether something in the container listens on TCP `port` (IPv4 or IPv6). */
async function listeningIn(target: LinuxTarget, port: number): Promise<boolean> {
  const hex = port.toString(16).toUpperCase().padStart(4, "0");
  const out = await sh(target, "cat /proc/net/tcp /proc/net/tcp6 2>/dev/null || true");
  // Columns: sl local_address rem_address st ...; state 0A is LISTEN.
  return out.split("\n").some((l) => {
    const cols = l.trim().split(/\s+/);
    return cols[1]?.endsWith(`:${hex}`) === true && cols[3] === "0A";
  });
}

interface RunningAgent {
  ssh: ssh2.Client;
  channel: ssh2.ClientChannel;
  ca: RunCa;
  runId: string;
  targetId: string;
  runDir: string;
  bundle: string;
  stagingDir: string;
  logDir: string;
  logFile: string;
  listening: { event: string; port: number; busy: number[]; fingerprint256: string };
  /** Resolves with the exit code the SSH channel reports. */
  exited: Promise<number | undefined>;
  /** With `callback`: the run's listener on this host and what it received. */
  listener?: CallbackListener;
  received: CallbackMessage[];
  connect(): Promise<AgentClient>;
}

describe("agent target", async () => {
  const skip = await containerSkipReason();
  let target: LinuxTarget | undefined;
  let built: BuiltAgent;
  let outDir: string | undefined;
  let workstationAddress: string;
  const cleanups: (() => void)[] = [];

  before(async () => {
    if (skip !== undefined) return;
    outDir = await mkdtemp(join(tmpdir(), "sumac-agent-target-"));
    built = await buildAgent({ outDir });
    target = await startLinuxTarget({ withNode: true, capAdd: ["NET_ADMIN"] });
    workstationAddress = await gatewayOf(target);
  });
  after(async () => {
    for (const cleanup of cleanups) cleanup();
    await target?.stop();
    if (outDir !== undefined) await rm(outDir, { recursive: true, force: true });
  });

  /**
   * Uploads the bundle to /var/tmp/sumac/<runId>/, starts it over SSH and does the start-up
   * dialogue. With `callback`, the run's callback listener is started on this host first and the
   * agent is told to call it back (with those heartbeat settings).
   */
  async function startAgent(
    runId: string,
    targetId: string,
    config: Record<string, unknown>,
    callback?: { heartbeatMs: number; lostAfterMs: number },
  ): Promise<RunningAgent> {
    assert.ok(target);
    const t = target;
    const runDir = `/var/tmp/sumac/${runId}`;
    const stagingDir = `${runDir}/staging`;
    const logDir = `/var/log/sumac/${runId}`;
    const bundle = `${runDir}/${basename(built.path)}`;
    await sh(t, `mkdir -p ${stagingDir}`);
    const ssh = await sshLogin(t, STEP_MS);
    cleanups.push(() => ssh.destroy());
    await sftpPut(ssh, built.path, bundle, 0o644, STEP_MS);

    const channel = await deadline(
      "SSH exec of the agent",
      STEP_MS,
      new Promise<ssh2.ClientChannel>((resolve, reject) =>
        ssh.exec(`exec node ${bundle}`, (error, stream) => (error ? reject(error) : resolve(stream))),
      ),
    );
    const exited = new Promise<number | undefined>((resolve) => {
      channel.once("exit", (code: number | null) => resolve(code ?? undefined));
      channel.once("close", () => resolve(undefined));
    });
    let stderr = "";
    channel.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString("utf8")));
    const lines = createInterface({ input: channel })[Symbol.asyncIterator]();
    const next = async (what: string): Promise<Record<string, unknown>> => {
      const line = await deadline(`the agent's ${what} line`, STEP_MS, lines.next());
      if (line.done === true) throw new Error(`the agent closed stdout before its ${what} line:\n${stderr}`);
      return JSON.parse(line.value) as Record<string, unknown>;
    };

    const ca = createRunCa({ runId, validForMs: 3_600_000 });
    // The workstation's client leaf: the one client the agent answers, by its fingerprint.
    const workstation = issueLeaf(ca, { commonName: "workstation", subjectAltNames: [], usage: "client" });
    const received: CallbackMessage[] = [];
    let listener: CallbackListener | undefined;
    let agentFingerprint = "";
    if (callback !== undefined) {
      const leaf = issueLeaf(ca, {
        commonName: "workstation-callback",
        subjectAltNames: [workstationAddress],
        usage: "server",
      });
      const started = await startCallbackListener({
        host: workstationAddress,
        caCertPem: ca.certPem,
        certPem: leaf.certPem,
        keyPem: leaf.keyPem,
        agentFingerprints: (fp) => fp === agentFingerprint,
        runId,
        onMessage: (message) => received.push(message),
        log: () => undefined,
      });
      listener = started;
      cleanups.push(() => void started.close());
      config = {
        ...config,
        callback: {
          host: workstationAddress,
          port: started.port,
          fingerprint256: leaf.fingerprint256,
          ...callback,
        },
      };
    }
    channel.write(
      `${JSON.stringify({
        runId,
        targetId,
        caCertPem: ca.certPem,
        workstationFingerprint256: workstation.fingerprint256,
        stagingDir,
        programFiles: [bundle, runDir],
        logDir,
        workstationAddress,
        firewall: "none",
        ...config,
      })}\n`,
    );
    const key = await next("publicKey");
    assert.equal(key.event, "publicKey", JSON.stringify(key));
    const cert = issueLeaf(ca, {
      commonName: `agent-${targetId}`,
      subjectAltNames: [t.address],
      usage: "server",
      publicKey: key.publicKeyPem as string,
    });
    // The agent is a TLS client when it calls back: a client leaf on the same key, which the
    // callback listener pins.
    const callbackCert = issueLeaf(ca, {
      commonName: `agent-callback-${targetId}`,
      subjectAltNames: [],
      usage: "client",
      publicKey: key.publicKeyPem as string,
    });
    agentFingerprint = callbackCert.fingerprint256;
    channel.write(`${JSON.stringify({ certPem: cert.certPem, callbackCertPem: callbackCert.certPem })}\n`);
    const listening = (await next("listening")) as unknown as RunningAgent["listening"];
    assert.equal(listening.event, "listening", JSON.stringify(listening));
    assert.equal(listening.fingerprint256, cert.fingerprint256);

    const connect = async () => {
      const client = await AgentClient.connect({
        host: t.address,
        port: listening.port,
        caCertPem: ca.certPem,
        certPem: workstation.certPem,
        keyPem: workstation.keyPem,
        agentFingerprint256: cert.fingerprint256,
        runId,
        targetId,
        connectTimeoutMs: STEP_MS,
        callTimeoutMs: STEP_MS,
      });
      cleanups.push(() => client.close());
      return client;
    };
    return {
      ssh,
      channel,
      ca,
      runId,
      targetId,
      runDir,
      bundle,
      stagingDir,
      logDir,
      logFile: `${logDir}/${targetId}.log`,
      listening,
      exited,
      connect,
      ...(listener === undefined ? {} : { listener }),
      received,
    };
  }

  const exists = async (path: string) => (await target?.exec(`test -e ${path}`, STEP_MS))?.exitCode === 0;

  it(
    "agent target - with 62286 and 62287 taken it listens on 62288, registers it in nft, calls back, and a full exchange leaves only its log",
    { skip },
    async () => {
      assert.ok(target);
      const t = target;
      for (const port of [BASE_PORT, BASE_PORT + 1])
        await sh(
          t,
          `nohup node -e "require('net').createServer().listen(${port}, '0.0.0.0')" >/dev/null 2>&1 &`,
        );
      for (const port of [BASE_PORT, BASE_PORT + 1])
        await eventually(`port ${port} taken in the container`, STEP_MS, () => listeningIn(t, port));

      const agent = await startAgent(
        "run-target-full",
        "web01",
        { idleTimeoutMs: 60_000, listen: { host: "0.0.0.0", basePort: BASE_PORT }, firewall: "nft" },
        { heartbeatMs: 1_000, lostAfterMs: 30_000 },
      );
      assert.equal(agent.listening.port, BASE_PORT + 2);
      assert.deepEqual(agent.listening.busy, [BASE_PORT, BASE_PORT + 1]);
      const ruleset = await sh(t, "nft list table inet sumac_agent");
      assert.match(
        ruleset,
        new RegExp(`ip saddr ${workstationAddress.replaceAll(".", "\\.")} tcp dport ${BASE_PORT + 2} accept`),
      );

      // Any other source is dropped: the container itself, over loopback, gets no answer.
      const probe = await t.exec(
        `node -e "const s=require('net').connect(${BASE_PORT + 2},'127.0.0.1');` +
          `s.on('connect',()=>{console.log('connected');process.exit(0)});` +
          `s.on('error',e=>{console.log(e.code);process.exit(0)});` +
          `setTimeout(()=>{console.log('no answer');process.exit(0)},1500)"`,
        STEP_MS,
      );
      assert.equal(probe.stdout.trim(), "no answer");

      const client = await agent.connect();
      const hello = await client.call("Hello", {});
      assert.equal(hello.port, BASE_PORT + 2);
      assert.equal(hello.runId, agent.runId);
      assert.equal(hello.targetId, agent.targetId);
      assert.equal(hello.stagingDir, agent.stagingDir);
      assert.match(hello.nodeVersion, /^v18\./);

      const inventory = await client.call("Inventory", {
        component: [
          { id: "node", detectCommand: "node --version | tr -d v" },
          { id: "missing", detectCommand: "exit 1" },
        ],
      });
      assert.deepEqual(
        inventory.components.map((c) => [c.id, c.status]),
        [
          ["node", "installed"],
          ["missing", "absent"],
        ],
      );
      assert.match(inventory.components[0]?.version ?? "", /^18\./);

      // The push channel's part: the component goes over SFTP into the staging directory.
      const payload = Buffer.from(
        `#!/bin/sh\necho installing on "$(uname -s)"\necho done > ${agent.runDir}/installed.txt\nexit 0\n`,
      );
      await sftpPut(agent.ssh, payload, `${agent.stagingDir}/install.sh`, 0o755, STEP_MS);
      const sha256 = createHash("sha256").update(payload).digest("hex");
      const staged = await client.call("Stage", { name: "install.sh", size: payload.byteLength, sha256 });
      assert.deepEqual(staged, { name: "install.sh", size: payload.byteLength, sha256 });

      const install = await client.call("Install", {
        componentId: "comp-1",
        command: "./install.sh",
        timeoutMs: 10_000,
      });
      assert.equal(install.exitCode, 0);
      assert.equal(install.rebootRequired, false);
      assert.equal((await sh(t, `cat ${agent.runDir}/installed.txt`)).trim(), "done");
      // The same install, as the workstation's callback listener heard it from the target.
      await eventually("the install result called back", STEP_MS, () =>
        Promise.resolve(agent.received.some((m) => m.kind === "installResult")),
      );
      assert.deepEqual(
        agent.received.find((m) => m.kind === "installResult"),
        { kind: "installResult", component: "comp-1", exitCode: 0, rebootRequired: false },
      );
      assert.ok(agent.received.some((m) => m.kind === "log" && m.line === "stdout: installing on Linux"));

      const logs = await client.call("Logs", {});
      const log = logs.files.find((f) => f.name === `${agent.targetId}.log`);
      assert.ok(log, "the agent's log is returned");
      assert.match(log.content.toString("utf8"), /install comp-1 stdout: installing on Linux/);
      assert.match(
        log.content.toString("utf8"),
        new RegExp(`ports found busy: ${BASE_PORT}, ${BASE_PORT + 1}`),
      );

      const shutdown = await client.call("Shutdown", { reason: "run finished" });
      assert.equal(shutdown.logFile, agent.logFile);
      client.close();
      assert.equal(await deadline("the agent's exit", STEP_MS, agent.exited), 0);

      assert.equal(await exists(agent.bundle), false, "bundle removed");
      assert.equal(await exists(agent.stagingDir), false, "staging directory removed");
      assert.equal(await exists(agent.runDir), false, "run directory removed");
      const tables = await sh(t, "nft list tables");
      assert.doesNotMatch(tables, /sumac_agent/, "firewall rule and table removed");
      const kept = await sh(t, `cat ${agent.logFile}`);
      assert.match(kept, /stopped: Shutdown from .*run finished/);
      assert.match(kept, /firewall: \{"status":"registered"/);
      assert.match(kept, /firewall: \{"status":"removed"/);
      agent.ssh.end();
    },
  );

  it("agent target - with the random strategy the port lies in the window", { skip }, async () => {
    const base = 62_400;
    const window = 50;
    const agent = await startAgent("run-target-random", "web02", {
      idleTimeoutMs: 60_000,
      listen: { host: "0.0.0.0", basePort: base, strategy: "random", window },
    });
    assert.ok(
      agent.listening.port >= base && agent.listening.port < base + window,
      `port ${agent.listening.port} outside [${base}, ${base + window})`,
    );
    const client = await agent.connect();
    assert.equal((await client.call("Hello", {})).port, agent.listening.port);
    await client.call("Shutdown", { reason: "done" });
    client.close();
    assert.equal(await deadline("the agent's exit", STEP_MS, agent.exited), 0);
    agent.ssh.end();
  });

  it(
    "agent target - when the workstation vanishes mid-session the agent removes itself within its idle deadline",
    { skip },
    async () => {
      assert.ok(target);
      const t = target;
      const agent = await startAgent("run-target-orphan", "web03", {
        idleTimeoutMs: 2_000,
        listen: { host: "0.0.0.0", basePort: 62_500 },
      });
      const client = await agent.connect();
      const hello = await client.call("Hello", {});
      assert.equal(await exists(`/proc/${hello.pid}`), true, "the agent runs");

      // The workstation dies: its TLS socket and the SSH session go without a Shutdown.
      client.socket.destroy();
      agent.channel.destroy();
      agent.ssh.destroy();

      await eventually("the agent's process gone", 20_000, async () => !(await exists(`/proc/${hello.pid}`)));
      assert.equal(await exists(agent.bundle), false, "bundle removed");
      assert.equal(await exists(agent.stagingDir), false, "staging directory removed");
      const kept = await sh(t, `cat ${agent.logFile}`);
      assert.match(kept, /stopped: no authenticated request for 2000 ms \(idle timeout\)/);
    },
  );

  it(
    "agent target - when the workstation stops answering callbacks the agent removes itself before its idle deadline",
    { skip },
    async () => {
      assert.ok(target);
      const t = target;
      const agent = await startAgent(
        "run-target-lost",
        "web04",
        { idleTimeoutMs: 600_000, listen: { host: "0.0.0.0", basePort: 62_600 } },
        { heartbeatMs: 300, lostAfterMs: 2_000 },
      );
      const client = await agent.connect();
      const hello = await client.call("Hello", {});
      await eventually("a heartbeat acknowledged", STEP_MS, () =>
        Promise.resolve(agent.received.some((m) => m.kind === "heartbeat")),
      );

      // The workstation dies; the SSH session stays, so only the missing answers can tell.
      client.socket.destroy();
      await agent.listener?.close();
      await eventually("the agent's process gone", 20_000, async () => !(await exists(`/proc/${hello.pid}`)));
      assert.equal(await exists(agent.bundle), false, "bundle removed");
      assert.equal(await exists(agent.stagingDir), false, "staging directory removed");
      const kept = await sh(t, `cat ${agent.logFile}`);
      assert.match(kept, /stopped: no sign of life from the workstation for \d+ ms/);
      assert.match(kept, /callback heartbeat not delivered/);
      agent.ssh.end();
    },
  );
});
