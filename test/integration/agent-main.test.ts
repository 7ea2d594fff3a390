import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtemp, mkdir, rm, access, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { createServer, type Server } from "node:net";
import { describe, it } from "node:test";
import { AgentClient } from "../../agent/client.ts";
import { createRunCa, issueLeaf } from "../../agent/credentials.ts";

describe("agent main", () => {
  it("agent main - start-up dialogue on stdin/stdout, then serves and exits 0 after Shutdown", async () => {
    const root = await mkdtemp(join(tmpdir(), "sumac-main-"));
    const stagingDir = join(root, "staging");
    await mkdir(stagingDir);
    const ca = createRunCa({ runId: "run-main", validForMs: 3_600_000 });
    const workstation = issueLeaf(ca, { commonName: "workstation", subjectAltNames: [], usage: "client" });
    const child = spawn(process.execPath, [new URL("../../agent/main.ts", import.meta.url).pathname], {
      stdio: ["pipe", "pipe", "inherit"],
    });
    const exited = new Promise<number | null>((resolve) => child.on("exit", resolve));
    const kill = setTimeout(() => child.kill("SIGKILL"), 30_000);
    try {
      const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
      const next = async () => JSON.parse((await lines.next()).value ?? "null") as Record<string, unknown>;
      child.stdin.write(
        `${JSON.stringify({
          runId: "run-main",
          targetId: "t1",
          caCertPem: ca.certPem,
          stagingDir,
          programFiles: [],
          logDir: join(root, "log"),
          idleTimeoutMs: 20_000,
          listen: { host: "127.0.0.1", port: 0 },
        })}\n`,
      );
      const key = await next();
      assert.equal(key.event, "publicKey");
      const cert = issueLeaf(ca, {
        commonName: "agent-t1",
        subjectAltNames: ["127.0.0.1"],
        usage: "server",
        publicKey: key.publicKeyPem as string,
      });
      child.stdin.write(`${JSON.stringify({ certPem: cert.certPem })}\n`);
      const listening = await next();
      assert.equal(listening.event, "listening");
      assert.equal(listening.fingerprint256, cert.fingerprint256);

      const client = await AgentClient.connect({
        host: "127.0.0.1",
        port: listening.port as number,
        caCertPem: ca.certPem,
        certPem: workstation.certPem,
        keyPem: workstation.keyPem,
        agentFingerprint256: cert.fingerprint256,
        runId: "run-main",
        targetId: "t1",
        callTimeoutMs: 10_000,
      });
      const hello = await client.call("Hello", {});
      assert.equal(hello.pid, child.pid);
      await client.call("Shutdown", { reason: "test done" });
      client.close();
      assert.equal(await exited, 0);
      await assert.rejects(access(stagingDir));
    } finally {
      clearTimeout(kill);
      child.kill("SIGKILL");
      await rm(root, { recursive: true, force: true });
    }
  });

  it("agent main - with its base and the next port taken, it binds the one after and says which were busy", async () => {
    const { base, holders } = await occupyTwo();
    const root = await mkdtemp(join(tmpdir(), "sumac-main-ports-"));
    const ca = createRunCa({ runId: "run-ports", validForMs: 3_600_000 });
    const child = spawn(process.execPath, [new URL("../../agent/main.ts", import.meta.url).pathname], {
      stdio: ["pipe", "pipe", "inherit"],
    });
    const exited = new Promise<number | null>((resolve) => child.on("exit", resolve));
    const kill = setTimeout(() => child.kill("SIGKILL"), 30_000);
    try {
      const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
      const next = async () => JSON.parse((await lines.next()).value ?? "null") as Record<string, unknown>;
      child.stdin.write(
        `${JSON.stringify({
          runId: "run-ports",
          targetId: "t2",
          caCertPem: ca.certPem,
          stagingDir: join(root, "staging"),
          logDir: join(root, "log"),
          idleTimeoutMs: 300,
          listen: { host: "127.0.0.1", basePort: base },
          workstationAddress: "127.0.0.1",
          firewall: "none",
        })}\n`,
      );
      const key = await next();
      const cert = issueLeaf(ca, {
        commonName: "agent-t2",
        subjectAltNames: ["127.0.0.1"],
        usage: "server",
        publicKey: key.publicKeyPem as string,
      });
      child.stdin.write(`${JSON.stringify({ certPem: cert.certPem })}\n`);
      const listening = await next();
      assert.deepEqual([listening.port, listening.busy], [base + 2, [base, base + 1]]);
      // No workstation ever calls: the idle deadline stops it.
      assert.equal(await exited, 0);
      const log = await readFile(join(root, "log", "t2.log"), "utf8");
      assert.match(log, new RegExp(`ports found busy: ${base}, ${base + 1}`));
      assert.match(log, /firewall: not asked to register the port/);
    } finally {
      clearTimeout(kill);
      child.kill("SIGKILL");
      for (const h of holders) h.close();
      await rm(root, { recursive: true, force: true });
    }
  });
});

/** Two servers on two consecutive free ports of a high range; the agent's base is the first. */
async function occupyTwo(): Promise<{ base: number; holders: Server[] }> {
  for (let base = 47_000 + (process.pid % 1_000) * 3; base < 60_000; base += 3) {
    const holders: Server[] = [];
    for (const port of [base, base + 1]) {
      const server = createServer();
      const ok = await new Promise<boolean>((resolve) => {
        server.once("error", () => resolve(false));
        server.listen({ host: "127.0.0.1", port, exclusive: true }, () => resolve(true));
      });
      if (ok) holders.push(server);
    }
    // The port after them must be free too, or the test would prove nothing.
    const probe = createServer();
    const thirdFree = await new Promise<boolean>((resolve) => {
      probe.once("error", () => resolve(false));
      probe.listen({ host: "127.0.0.1", port: base + 2, exclusive: true }, () =>
        probe.close(() => resolve(true)),
      );
    });
    if (holders.length === 2 && thirdFree) return { base, holders };
    for (const h of holders) h.close();
  }
  throw new Error("no three consecutive free ports found between 47000 and 60000");
}
