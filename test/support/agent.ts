/**
 * An agent running in-process for integration tests: a fresh run CA, the agent's own key with its
 * two leaves issued on its public key (as on a real target: a server leaf for its listener, a
 * client leaf for its callbacks), a workstation client leaf whose fingerprint the agent pins, and
 * temporary staging, program and log directories. Real TLS on 127.0.0.1, real child processes.
 */
import { mkdtemp, mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  createRunCa,
  issueLeaf,
  type IssuedLeafWithKey,
  type RunCa,
} from "../../agent/client/credentials.ts";
import { createKeyPair } from "../../agent/protocol/key-pair.ts";
import { AgentClient, type AgentClientOptions } from "../../agent/client/client.ts";
import { listenOn } from "../../agent/server/listen.ts";
import { type AgentServer, type AgentServerOptions, createAgentServer } from "../../agent/server/server.ts";

export interface AgentFixture {
  readonly ca: RunCa;
  readonly agent: AgentServer;
  /** The agent's key and its two leaves: what a thief with root on its target would have. */
  readonly agentCredentials: {
    readonly keyPem: string;
    readonly certPem: string;
    readonly callbackCertPem: string;
    readonly callbackFingerprint256: string;
  };
  /** The workstation's client leaf, the one the agent answers. */
  readonly workstation: IssuedLeafWithKey;
  readonly port: number;
  readonly root: string;
  readonly stagingDir: string;
  readonly programDir: string;
  readonly logDir: string;
  readonly runId: string;
  readonly targetId: string;
  /** Options for a workstation client with a valid certificate. */
  readonly clientOptions: AgentClientOptions;
  connect(overrides?: Partial<AgentClientOptions>): Promise<AgentClient>;
  /** The log file's text. */
  logText(): Promise<string>;
  /** Waits (polling, bounded) until the log has a line matching `pattern`; returns that line. */
  waitForLog(pattern: RegExp, timeoutMs?: number): Promise<string>;
  cleanup(): Promise<void>;
}

/** How the fixture's credentials are made, when a test needs them shared or different. */
export interface AgentFixtureSetup {
  /** Use this run CA (e.g. one a callback listener already trusts) instead of a fresh one. */
  readonly ca?: RunCa;
  /** Use this workstation leaf (of `ca`) instead of a fresh one. */
  readonly workstation?: IssuedLeafWithKey;
  /** Default `target-1`. */
  readonly targetId?: string;
  /** When the leaves are issued (ms since the epoch); default now. */
  readonly issuedAt?: number;
}

/** Starts an agent; `cleanup` stops it (if still running) and removes every temporary file. */
export async function startAgentFixture(
  overrides: Partial<AgentServerOptions> = {},
  setup: AgentFixtureSetup = {},
): Promise<AgentFixture> {
  const root = await mkdtemp(join(tmpdir(), "sumac-agent-"));
  const runId = "run-test";
  const targetId = setup.targetId ?? "target-1";
  const stagingDir = join(root, "staging");
  const programDir = join(root, "program");
  const logDir = join(root, "log", runId);
  await mkdir(stagingDir, { recursive: true });
  await mkdir(programDir, { recursive: true });
  await writeFile(join(programDir, "agent.mjs"), "// the agent bundle would be here\n");

  const ca = setup.ca ?? createRunCa({ runId, validForMs: 3_600_000 });
  const agentKeys = createKeyPair();
  const issuedAt = setup.issuedAt === undefined ? {} : { now: setup.issuedAt };
  const agentCert = issueLeaf(ca, {
    commonName: `agent-${targetId}`,
    subjectAltNames: ["127.0.0.1", "localhost"],
    usage: "server",
    publicKey: agentKeys.publicKeyPem,
    ...issuedAt,
  });
  const callbackCert = issueLeaf(ca, {
    commonName: `agent-callback-${targetId}`,
    subjectAltNames: [],
    usage: "client",
    publicKey: agentKeys.publicKeyPem,
    ...issuedAt,
  });
  const workstation =
    setup.workstation ??
    issueLeaf(ca, { commonName: "workstation", subjectAltNames: [], usage: "client", ...issuedAt });

  const agent = await createAgentServer({
    runId,
    targetId,
    caCertPem: ca.certPem,
    workstationFingerprint256: workstation.fingerprint256,
    keyPem: agentKeys.privateKeyPem,
    certPem: agentCert.certPem,
    callbackCertPem: callbackCert.certPem,
    stagingDir,
    programFiles: [programDir],
    logDir,
    idleTimeoutMs: 60_000,
    ...overrides,
  });
  const port = await agent.start(listenOn({ host: "127.0.0.1", port: 0 }));
  const clientOptions: AgentClientOptions = {
    host: "127.0.0.1",
    port,
    caCertPem: ca.certPem,
    certPem: workstation.certPem,
    keyPem: workstation.keyPem,
    agentFingerprint256: agentCert.fingerprint256,
    runId,
    targetId,
    connectTimeoutMs: 10_000,
    callTimeoutMs: 30_000,
  };
  const clients: AgentClient[] = [];

  const logText = () => readFile(agent.log.path, "utf8");
  return {
    ca,
    agent,
    agentCredentials: {
      keyPem: agentKeys.privateKeyPem,
      certPem: agentCert.certPem,
      callbackCertPem: callbackCert.certPem,
      callbackFingerprint256: callbackCert.fingerprint256,
    },
    workstation,
    port,
    root,
    stagingDir,
    programDir,
    logDir,
    runId,
    targetId,
    clientOptions,
    async connect(more = {}) {
      const client = await AgentClient.connect({ ...clientOptions, ...more });
      clients.push(client);
      return client;
    },
    logText,
    async waitForLog(pattern, timeoutMs = 10_000) {
      const until = Date.now() + timeoutMs;
      for (;;) {
        const line = (await logText()).split("\n").find((l) => pattern.test(l));
        if (line !== undefined) return line;
        if (Date.now() > until)
          throw new Error(`no log line matches ${pattern} within ${timeoutMs} ms:\n${await logText()}`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    },
    async cleanup() {
      for (const client of clients) client.close();
      await agent.stop("test cleanup");
      await rm(root, { recursive: true, force: true });
    },
  };
}
