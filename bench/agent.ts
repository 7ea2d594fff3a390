/**
 * The agent: median milliseconds of a key pair plus a certificate issued on
 * it, median milliseconds of a TLS handshake plus Hello on a new connection to an in-process agent,
 * Hello calls per second on one kept-alive connection, and the agent bundle's size (raw, gzipped).
 *
 * Run: node bench/agent.ts
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { buildAgent } from "../agent/build.ts";
import { createRunCa, issueLeaf } from "../agent/client/credentials.ts";
import { createKeyPair } from "../agent/protocol/key-pair.ts";
import { startAgentFixture } from "../test/support/agent.ts";
import { median, quantile } from "./stats.ts";

const ISSUE_SAMPLES = 200;
const HANDSHAKE_SAMPLES = 50;
const KEPT_ALIVE_CALLS = 2_000;
const KEPT_ALIVE_BUDGET_MS = 10_000;

const ms = (n: number) => n.toFixed(3);
const figures = (samples: readonly number[]) =>
  `median ${ms(median(samples))} ms, p90 ${ms(quantile(samples, 0.9))} ms (${samples.length} samples)`;

function issuance(): number[] {
  const ca = createRunCa({ runId: "bench-agent", validForMs: 3_600_000 });
  const samples: number[] = [];
  for (let i = 0; i < ISSUE_SAMPLES + 10; i++) {
    const t0 = performance.now();
    const keys = createKeyPair();
    issueLeaf(ca, {
      commonName: `agent-${i}`,
      subjectAltNames: ["127.0.0.1", "web01.example"],
      usage: "server",
      publicKey: keys.publicKeyPem,
    });
    const elapsed = performance.now() - t0;
    if (i >= 10) samples.push(elapsed); // the first ones warm up the JIT
  }
  return samples;
}

async function agentCalls(): Promise<{ handshake: number[]; calls: number; seconds: number }> {
  const fixture = await startAgentFixture({ idleTimeoutMs: 600_000 });
  try {
    const handshake: number[] = [];
    for (let i = 0; i < HANDSHAKE_SAMPLES + 3; i++) {
      const t0 = performance.now();
      const client = await fixture.connect({ connectTimeoutMs: 5_000, callTimeoutMs: 5_000 });
      await client.call("Hello", {});
      const elapsed = performance.now() - t0;
      client.close();
      if (i >= 3) handshake.push(elapsed);
    }

    const client = await fixture.connect({ connectTimeoutMs: 5_000, callTimeoutMs: 5_000 });
    try {
      for (let i = 0; i < 20; i++) await client.call("Hello", {});
      const t0 = performance.now();
      let calls = 0;
      while (calls < KEPT_ALIVE_CALLS && performance.now() - t0 < KEPT_ALIVE_BUDGET_MS) {
        await client.call("Hello", {});
        calls++;
      }
      return { handshake, calls, seconds: (performance.now() - t0) / 1000 };
    } finally {
      client.close();
    }
  } finally {
    await fixture.cleanup();
  }
}

async function bundleSize(): Promise<{ bytes: number; gzipped: number; name: string }> {
  const outDir = await mkdtemp(join(tmpdir(), "sumac-bench-agent-"));
  try {
    const built = await buildAgent({ outDir });
    const bytes = await readFile(built.path);
    return {
      bytes: built.bytes,
      gzipped: gzipSync(bytes, { level: 9 }).byteLength,
      name: built.path.slice(outDir.length + 1),
    };
  } finally {
    await rm(outDir, { recursive: true, force: true });
  }
}

console.log(`node ${process.version}, ${process.platform}/${process.arch}`);
console.log(`key pair + certificate (node:crypto P-256 + issueLeaf): ${figures(issuance())}`);
const { handshake, calls, seconds } = await agentCalls();
console.log(`TLS handshake + Hello, new connection each: ${figures(handshake)}`);
console.log(
  `Hello on one kept-alive connection: ${(calls / seconds).toFixed(0)} calls/s (${calls} calls in ${seconds.toFixed(2)} s)`,
);
const bundle = await bundleSize();
console.log(
  `agent bundle (agent/server/main.ts): ${bundle.bytes} bytes, ${bundle.gzipped} bytes gzipped (${bundle.name})`,
);
