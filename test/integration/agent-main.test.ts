import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { access, mkdir, mkdtemp, readFile, rm } from "node:fs/promises";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { after, describe, it } from "node:test";
import { AgentClient } from "../../agent/client/client.ts";
import {
  createRunCa,
  issueLeaf,
  type IssuedLeafWithKey,
  type RunCa,
} from "../../agent/client/credentials.ts";

interface MainAgent {
  child: ChildProcess;
  exited: Promise<number | null>;
  ca: RunCa;
  /** The workstation's client leaf, whose fingerprint the agent was given. */
  workstation: IssuedLeafWithKey;
  /** The agent's `listening` line. */
  listening: Record<string, unknown>;
  fingerprint256: string;
  root: string;
}

const running: { agent: MainAgent; kill: NodeJS.Timeout }[] = [];
after(async () => {
  for (const { agent, kill } of running) {
    clearTimeout(kill);
    agent.child.kill("SIGKILL");
    await rm(agent.root, { recursive: true, force: true });
  }
});

/**
 * Runs agent/server/main.ts as a child process and goes through its start-up dialogue as the workstation
 * would: config line, public key back, certificate issued on it, `listening` line.
 */
async function startMain(
  runId: string,
  targetId: string,
  config: Record<string, unknown> | ((root: string) => Record<string, unknown>),
): Promise<MainAgent> {
  const root = await mkdtemp(join(tmpdir(), "sumac-main-"));
  if (typeof config === "function") config = config(root);
  await mkdir(join(root, "staging"));
  const ca = createRunCa({ runId, validForMs: 3_600_000 });
  const workstation = issueLeaf(ca, { commonName: "workstation", subjectAltNames: [], usage: "client" });
  const child = spawn(process.execPath, [new URL("../../agent/server/main.ts", import.meta.url).pathname], {
    stdio: ["pipe", "pipe", "inherit"],
  });
  const exited = new Promise<number | null>((resolve) => child.on("exit", resolve));
  const partial = { child, exited, ca, workstation, root, listening: {}, fingerprint256: "" };
  running.push({ agent: partial, kill: setTimeout(() => child.kill("SIGKILL"), 30_000) });
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const next = async () => JSON.parse((await lines.next()).value ?? "null") as Record<string, unknown>;
  const base = {
    runId,
    targetId,
    caCertPem: ca.certPem,
    workstationFingerprint256: workstation.fingerprint256,
    stagingDir: join(root, "staging"),
  };
  child.stdin.write(`${JSON.stringify({ ...base, logDir: join(root, "log"), ...config })}\n`);
  const key = await next();
  assert.equal(key.event, "publicKey");
  const cert = issueLeaf(ca, {
    commonName: `agent-${targetId}`,
    subjectAltNames: ["127.0.0.1"],
    usage: "server",
    publicKey: key.publicKeyPem as string,
  });
  child.stdin.write(`${JSON.stringify({ certPem: cert.certPem })}\n`);
  const listening = await next();
  assert.equal(listening.event, "listening");
  return Object.assign(partial, { listening, fingerprint256: cert.fingerprint256 });
}

describe("agent main", () => {
  it("agent main - start-up dialogue on stdin/stdout, then serves and exits 0 after Shutdown", async () => {
    const agent = await startMain("run-main", "t1", {
      programFiles: [],
      idleTimeoutMs: 20_000,
      listen: { host: "127.0.0.1", port: 0 },
    });
    assert.equal(agent.listening.fingerprint256, agent.fingerprint256);
    const workstation = agent.workstation;
    const client = await AgentClient.connect({
      host: "127.0.0.1",
      port: agent.listening.port as number,
      caCertPem: agent.ca.certPem,
      certPem: workstation.certPem,
      keyPem: workstation.keyPem,
      agentFingerprint256: agent.fingerprint256,
      runId: "run-main",
      targetId: "t1",
      callTimeoutMs: 10_000,
    });
    const hello = await client.call("Hello", {});
    assert.equal(hello.pid, agent.child.pid);
    await client.call("Shutdown", { reason: "test done" });
    client.close();
    assert.equal(await agent.exited, 0);
    await assert.rejects(access(join(agent.root, "staging")));
  });

  it("agent main - a stop that leaves files behind exits 4, one that removes all exits 0", async () => {
    const listen = { host: "127.0.0.1", port: 0 };
    // Told to remove the directory that holds its log: it keeps it (the log is the run's record).
    const left = await startMain("run-left", "t1", (root) => ({
      programFiles: [root],
      idleTimeoutMs: 20_000,
      listen,
    }));
    left.child.kill("SIGTERM");
    assert.equal(await left.exited, 4);
    await access(join(left.root, "log"));
    const clean = await startMain("run-clean", "t2", (root) => ({
      programFiles: [join(root, "program")],
      idleTimeoutMs: 20_000,
      listen,
    }));
    clean.child.kill("SIGTERM");
    assert.equal(await clean.exited, 0);
    await assert.rejects(access(join(clean.root, "staging")));
  });

  it("agent main - with its base and the next port taken, it binds the one after and says which were busy", async () => {
    const { base, holders } = await occupyTwo();
    try {
      const agent = await startMain("run-ports", "t2", {
        idleTimeoutMs: 300,
        listen: { host: "127.0.0.1", basePort: base },
        workstationAddress: "127.0.0.1",
        firewall: "none",
      });
      assert.deepEqual([agent.listening.port, agent.listening.busy], [base + 2, [base, base + 1]]);
      // No workstation ever calls: the idle deadline stops it.
      assert.equal(await agent.exited, 0);
      const log = await readFile(join(agent.root, "log", "t2.log"), "utf8");
      assert.match(log, new RegExp(`ports found busy: ${base}, ${base + 1}`));
      assert.match(log, /firewall: not asked to register the port/);
    } finally {
      for (const h of holders) h.close();
    }
  });
});

describe("agent main - bad input", () => {
  it("agent main - more than 256 KiB on stdin during start-up fails the agent, with the reason", async () => {
    const child = spawn(process.execPath, [new URL("../../agent/server/main.ts", import.meta.url).pathname], {
      stdio: ["pipe", "pipe", "ignore"],
    });
    const kill = setTimeout(() => child.kill("SIGKILL"), 30_000);
    try {
      let out = "";
      child.stdout.on("data", (d: Buffer) => (out += d.toString()));
      const exited = new Promise<number | null>((resolve) => child.on("exit", resolve));
      child.stdin.on("error", () => undefined); // the agent may exit before reading it all
      child.stdin.end(Buffer.alloc(300 * 1024, "a"));
      assert.equal(await exited, 1);
      assert.deepEqual(JSON.parse(out.trim()), {
        event: "failed",
        message: "over 262144 bytes on stdin during start-up",
      });
    } finally {
      clearTimeout(kill);
      child.kill("SIGKILL");
    }
  });
});

function listens(server: Server, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    server.once("error", () => resolve(false));
    server.listen({ host: "127.0.0.1", port, exclusive: true }, () => resolve(true));
  });
}

/** Two servers on two consecutive free ports of a high range; the agent's base is the first. */
async function occupyTwo(): Promise<{ base: number; holders: Server[] }> {
  for (let base = 47_000 + (process.pid % 1_000) * 3; base < 60_000; base += 3) {
    const holders: Server[] = [];
    for (const port of [base, base + 1]) {
      const server = createServer();
      if (await listens(server, port)) holders.push(server);
    }
    // The port after them must be free too, or the test would prove nothing.
    const probe = createServer();
    const thirdFree = await listens(probe, base + 2);
    probe.close();
    if (holders.length === 2 && thirdFree) return { base, holders };
    for (const h of holders) h.close();
  }
  throw new Error("no three consecutive free ports found between 47000 and 60000");
}
