import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtemp, mkdir, rm, access } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
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
});
