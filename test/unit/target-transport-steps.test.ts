/**
 * connect, disconnect, pushAgent and removeFiles in local mode (real processes and files in a
 * temporary directory; a small file stands in for the agent bundle), and how connect reports
 * what it cannot do: an SMB target, an unknown target, a secret that cannot be read (before any
 * connection), with stable codes and the retryable flag.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import type { BuiltAgent } from "../../agent/build.ts";
import type { JobTarget } from "../../run/job/types.ts";
import { connectError, createConnectSteps } from "../../actors/target/connect-steps.ts";
import { createFileSteps } from "../../actors/target/file-steps.ts";
import { SessionRegistry } from "../../actors/target/session.ts";
import { localTransport } from "../../actors/target/transports/local.ts";
import { sshTransport } from "../../actors/target/transports/ssh.ts";
import { SecretUnavailableError } from "../../run/job/secret.ts";
import { targetAccess } from "../../run/target-access.ts";
import type { CleanupInput } from "../../machines/target/step-io.ts";

const never = new AbortController().signal;
const localTarget: JobTarget = { id: "here", transport: "local", host: "local", os: "linux", tags: [] };
const sshTarget: JobTarget = {
  id: "web-1",
  transport: "ssh",
  host: "192.0.2.10",
  port: 22,
  os: "linux",
  user: "deploy",
  auth: { method: "key", key: { kind: "env", name: "SUMAC_TEST_NO_SUCH_KEY" } },
  tags: [],
};
const smbTarget: JobTarget = {
  id: "win-1",
  transport: "smb",
  host: "192.0.2.11",
  port: 445,
  os: "windows",
  user: "Administrator",
  domain: "",
  auth: { method: "password", password: { kind: "env", name: "X" } },
  tags: [],
};
const ref = (t: JobTarget) => ({
  id: t.id,
  host: t.host,
  os: t.transport === "local" ? ("local" as const) : t.os,
});

let tmp: string;
let runRoot: string;
let logRoot: string;
let bundle: BuiltAgent;

before(async () => {
  tmp = await mkdtemp(join(tmpdir(), "sumac-steps-"));
  runRoot = join(tmp, "targets");
  logRoot = join(tmp, "target-logs");
  const content = "console.log('agent');\n";
  const sha256 = createHash("sha256").update(content).digest("hex");
  const path = join(tmp, `sumac-agent-${sha256.slice(0, 16)}.cjs`);
  await writeFile(path, content);
  bundle = { path, sha256, bytes: content.length };
});
after(() => rm(tmp, { recursive: true, force: true }));

function steps(agentCache: boolean, root = runRoot) {
  const sessions = new SessionRegistry();
  const lines: string[] = [];
  const log = (_: string, __: string, line: string) => void lines.push(line);
  let runtimeCalls = 0;
  const agentFiles = {
    agentCache,
    bundle: () => Promise.resolve(bundle),
    runtime: () => {
      runtimeCalls++;
      return Promise.reject(new Error("no runtime in this test"));
    },
    log,
    localLogRoot: logRoot,
  };
  const connect = createConnectSteps({
    targets: new Map([localTarget, sshTarget, smbTarget].map((t) => [t.id, targetAccess(t, {})])),
    transports: {
      ssh: sshTransport({
        hostKeyPolicy: "strict",
        knownHostsPath: join(tmp, "known_hosts"),
        env: {},
        agentFiles,
        log,
      }),
      local: localTransport({ runRoot: root, agentFiles, log }),
    },
    sessions,
    log,
  });
  const files = createFileSteps({ sessions });
  return { sessions, lines, ...connect, ...files, runtimeCalls: () => runtimeCalls };
}

const cleanup = (runId: string, sessionId: string | null): CleanupInput => ({
  runId,
  target: ref(localTarget),
  attempt: 0,
  sessionId,
  agentDir: null,
  leases: null,
  agentPort: null,
});

describe("target transport steps - connect", () => {
  it("target transport steps - local connect records a local session with numeric addresses", async () => {
    const s = steps(false);
    const { sessionId } = await s.connect({ runId: "r1", target: ref(localTarget), attempt: 0 }, never);
    const session = s.sessions.get(sessionId, "here");
    assert.equal(session.local, true);
    assert.equal(session.remoteAddress, "127.0.0.1");
    assert.equal(session.localAddress, "127.0.0.1");
    assert.equal(session.files.runRoot, runRoot);
    assert.equal((await session.shell.exec("echo hi", { timeoutMs: 5_000 })).stdout, "hi\n");
  });

  it("target transport steps - connecting again replaces the stale session", async () => {
    const s = steps(false);
    const first = await s.connect({ runId: "r1", target: ref(localTarget), attempt: 0 }, never);
    const old = s.sessions.get(first.sessionId, "here");
    const second = await s.connect({ runId: "r1", target: ref(localTarget), attempt: 1 }, never);
    assert.notEqual(first.sessionId, second.sessionId);
    assert.equal(s.sessions.size, 1);
    assert.equal(s.sessions.find("here")?.sessionId, second.sessionId, "the first session is forgotten");
    await assert.rejects(old.shell.exec("true", { timeoutMs: 1_000 }), { code: "COMMAND_FAILED" });
  });

  it("target transport steps - disconnect forgets the session and never throws for a gone one", async () => {
    const s = steps(false);
    const { sessionId } = await s.connect({ runId: "r1", target: ref(localTarget), attempt: 0 }, never);
    await s.disconnect(cleanup("r1", sessionId), never);
    assert.equal(s.sessions.size, 0);
    await s.disconnect(cleanup("r1", sessionId), never);
    await s.disconnect(cleanup("r1", null), never);
  });

  it("target transport steps - a kind of target the run has no transport for is refused, not retryable", async () => {
    const s = steps(false);
    await assert.rejects(s.connect({ runId: "r1", target: ref(smbTarget), attempt: 0 }, never), {
      code: "TRANSPORT_UNSUPPORTED",
      retryable: false,
      message: /win-1: no transport for smb targets in this run/,
    });
    await assert.rejects(
      s.connect({ runId: "r1", target: { id: "ghost", host: "x", os: "linux" }, attempt: 0 }, never),
      { code: "UNKNOWN_TARGET", retryable: false },
    );
  });

  it("target transport steps - an unreadable key fails before any connection, naming the target", async () => {
    const s = steps(false);
    // 192.0.2.10 (TEST-NET-1) answers nothing: reaching it would be unreachable after 30 s, not this.
    await assert.rejects(s.connect({ runId: "r1", target: ref(sshTarget), attempt: 0 }, never), {
      name: "TargetSecretError",
      code: "SECRET_UNAVAILABLE",
      retryable: false,
      message: /web-1: environment variable SUMAC_TEST_NO_SUCH_KEY is not set/,
    });
  });

  it("target transport steps - transport errors keep their code and retryable flag", () => {
    const transport = Object.assign(new Error("cannot reach 192.0.2.10:22"), {
      code: "UNREACHABLE",
      retryable: true,
    });
    assert.equal(connectError(sshTarget.id, transport), transport);
    const wrapped = connectError(
      sshTarget.id,
      new SecretUnavailableError("secret file /k cannot be read (ENOENT)"),
    );
    assert.ok(wrapped instanceof Error);
    assert.equal((wrapped as Error & { code: string }).code, "SECRET_UNAVAILABLE");
    assert.ok(wrapped.cause instanceof SecretUnavailableError);
  });
});

describe("target transport steps - push and remove", () => {
  it("target transport steps - push uses this machine's Node and the bundle lands checked", async () => {
    const s = steps(false);
    const { sessionId } = await s.connect({ runId: "run-a", target: ref(localTarget), attempt: 0 }, never);
    const { agentDir } = await s.pushAgent(
      { runId: "run-a", target: ref(localTarget), attempt: 0, sessionId },
      never,
    );
    assert.equal(agentDir, join(runRoot, "run-a"));
    const pushed = s.sessions.get(sessionId, "here").pushed;
    assert.ok(pushed !== undefined);
    assert.equal(pushed.runtimePushed, false);
    assert.equal(pushed.nodePath, process.execPath);
    assert.equal(s.runtimeCalls(), 0);
    assert.equal(pushed.bundlePath, join(agentDir, basename(bundle.path)));
    assert.equal(await readFile(pushed.bundlePath, "utf8"), await readFile(bundle.path, "utf8"));
    assert.equal(pushed.stagingDir, join(agentDir, "staging"));
    assert.ok((await stat(pushed.stagingDir)).isDirectory());
    assert.equal(pushed.logDir, join(logRoot, "run-a"));
  });

  it("target transport steps - removeFiles leaves nothing of the run but the log, and again", async () => {
    const s = steps(false);
    const { sessionId } = await s.connect({ runId: "run-b", target: ref(localTarget), attempt: 0 }, never);
    await s.pushAgent({ runId: "run-b", target: ref(localTarget), attempt: 0, sessionId }, never);
    const logDir = join(logRoot, "run-b");
    await mkdir(logDir, { recursive: true });
    await writeFile(join(logDir, "here.log"), "log line\n");
    await s.removeFiles(cleanup("run-b", sessionId), never);
    await assert.rejects(stat(join(runRoot, "run-b")), { code: "ENOENT" });
    assert.equal(await readFile(join(logDir, "here.log"), "utf8"), "log line\n");
    assert.equal(s.sessions.get(sessionId, "here").pushed, undefined);
    await s.removeFiles(cleanup("run-b", sessionId), never);
    assert.ok(!(await readdir(runRoot)).includes("cache"));
  });

  it("target transport steps - removeFiles runs nothing when the agent removed the run itself, unless extra paths remain", async () => {
    const s = steps(false);
    const { sessionId } = await s.connect({ runId: "run-e", target: ref(localTarget), attempt: 0 }, never);
    await s.pushAgent({ runId: "run-e", target: ref(localTarget), attempt: 0, sessionId }, never);
    const session = s.sessions.get(sessionId, "here");
    const removed: string[] = [];
    const remove = session.files.remove.bind(session.files);
    session.files.remove = (path, options) => (removed.push(path), remove(path, options));
    // As stopAgent records it when the agent exited 0 (it removed its run directory itself).
    session.agentRemovedFiles = true;
    await s.removeFiles(cleanup("run-e", sessionId), never);
    assert.deepEqual(removed, []);
    assert.equal(session.pushed, undefined);

    await s.pushAgent({ runId: "run-e", target: ref(localTarget), attempt: 0, sessionId }, never);
    const extra = join(runRoot, "run-e-extra");
    await mkdir(extra);
    session.pushed = { ...session.pushed!, extraPaths: [extra] };
    await s.removeFiles(cleanup("run-e", sessionId), never);
    assert.deepEqual(removed, [join(runRoot, "run-e"), extra]);
    await assert.rejects(stat(extra), { code: "ENOENT" });
  });

  it("target transport steps - removeFiles works when push never finished or never connected", async () => {
    const s = steps(false);
    const { sessionId } = await s.connect({ runId: "run-c", target: ref(localTarget), attempt: 0 }, never);
    const session = s.sessions.get(sessionId, "here");
    await session.files.createRunDir("run-c");
    await session.files.put(Buffer.from("half"), join(runRoot, "run-c", "partial"), { mode: 0o600 });
    await s.removeFiles(cleanup("run-c", sessionId), never);
    await assert.rejects(stat(join(runRoot, "run-c")), { code: "ENOENT" });
    await s.removeFiles(cleanup("run-c", null), never);
  });

  it("target transport steps - with the cache the bundle is kept by hash and reused", async () => {
    const cacheRoot = join(tmp, "cached-targets");
    const s = steps(true, cacheRoot);
    const { sessionId } = await s.connect({ runId: "run-d", target: ref(localTarget), attempt: 0 }, never);
    await s.pushAgent({ runId: "run-d", target: ref(localTarget), attempt: 0, sessionId }, never);
    const cached = s.sessions.get(sessionId, "here").pushed?.bundlePath;
    assert.equal(cached, join(cacheRoot, "cache", bundle.sha256, basename(bundle.path)));
    const first = await stat(cached);
    await s.removeFiles(cleanup("run-d", sessionId), never);
    const again = await s.pushAgent(
      { runId: "run-e", target: ref(localTarget), attempt: 0, sessionId },
      never,
    );
    const second = await stat(cached);
    assert.equal(second.ino, first.ino, "the cached bundle was written again");
    assert.equal(second.mtimeMs, first.mtimeMs);
    assert.ok(s.lines.some((l) => /reused from the cache/.test(l)));
    await s.removeFiles({ ...cleanup("run-e", sessionId), agentDir: again.agentDir }, never);
    assert.deepEqual((await readdir(cacheRoot)).sort(), ["cache"]);
  });

  it("target transport steps - pushing on a session that is gone is SESSION_LOST", async () => {
    const s = steps(false);
    await assert.rejects(
      s.pushAgent({ runId: "run-f", target: ref(localTarget), attempt: 0, sessionId: "nope" }, never),
      { code: "SESSION_LOST" },
    );
  });
});
