/**
 * connect, pushAgent, removeFiles and disconnect against real linux-target containers (one with
 * Debian's Node, one with none): the target's own Node is used where there is one; elsewhere this
 * workstation's Node is pushed (gzip'd) and runs the bundle; removeFiles leaves nothing in the run
 * root but keeps the agent's log; the agent cache skips the second upload; a wrong host key is
 * refused before any file is touched.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import ssh2 from "ssh2";
import { agentBundleOnce } from "../../actors/target/agent-bundle.ts";
import { agentMarker } from "../../actors/target/agent-steps.ts";
import { createConnectSteps } from "../../actors/target/connect-steps.ts";
import { createFileSteps } from "../../actors/target/file-steps.ts";
import { startAgentCommand, stopAgentCommand } from "../../actors/target/posix/agent-process.ts";
import { LineReader } from "../../actors/target/posix/line-reader.ts";
import { runtimeOnce, type RuntimeArtifact } from "../../actors/target/posix/runtime.ts";
import { SessionRegistry, type TargetSession } from "../../actors/target/session.ts";
import { sshTransport } from "../../actors/target/transports/ssh.ts";
import type { SshTarget } from "../../run/job/types.ts";
import { targetAccess } from "../../run/target-access.ts";
import type { CleanupInput } from "../../machines/target/step-io.ts";
import type { TargetRef } from "../../machines/target/types.ts";
import { containerSkipReason } from "../support/engine.ts";
import { fingerprintOf, startLinuxTarget, type LinuxTarget } from "../support/linux-target.ts";

const skip = await containerSkipReason();
const never = new AbortController().signal;

describe("target push - against linux-target containers", { skip }, () => {
  let withNode: LinuxTarget;
  let plain: LinuxTarget;
  let tmp: string;
  let bundle: ReturnType<typeof agentBundleOnce>;
  let runtime: ReturnType<typeof runtimeOnce>;
  const env: NodeJS.ProcessEnv = {};

  before(async () => {
    [withNode, plain] = await Promise.all([startLinuxTarget({ withNode: true }), startLinuxTarget()]);
    tmp = await mkdtemp(join(tmpdir(), "sumac-push-"));
    bundle = agentBundleOnce({ outDir: join(tmp, "agent") });
    runtime = runtimeOnce(join(tmp, "runtime"));
    for (const [name, t] of [
      ["NODE", withNode],
      ["PLAIN", plain],
    ] as const) {
      env[`KEY_${name}_ROOT`] = t.users.root.privateKey;
      env[`KEY_${name}_DEPLOY`] = t.users.deploy.privateKey;
      env[`KEY_${name}_OPERATOR`] = t.users.operator.privateKey;
      env[`SUDO_${name}_OPERATOR`] = t.users.operator.password;
    }
  });
  after(async () => {
    await Promise.all([withNode?.stop(), plain?.stop()]);
    await rm(tmp, { recursive: true, force: true });
  });

  function jobTarget(
    t: LinuxTarget,
    user: "root" | "deploy" | "operator",
    hostKey = t.hostKeyFingerprint,
  ): SshTarget {
    const name = t === withNode ? "NODE" : "PLAIN";
    return {
      id: `${name.toLowerCase()}-${user}`,
      transport: "ssh",
      host: t.host,
      port: t.port,
      os: "linux",
      user,
      auth: { method: "key", key: { kind: "env", name: `KEY_${name}_${user.toUpperCase()}` } },
      ...(user === "root"
        ? {}
        : user === "deploy"
          ? { become: { method: "sudo" as const } }
          : {
              become: {
                method: "sudo" as const,
                password: { kind: "env" as const, name: `SUDO_${name}_OPERATOR` },
              },
            }),
      hostKey,
      tags: [],
    };
  }

  function steps(target: SshTarget, agentCache = false, pushed: typeof runtime = runtime) {
    const sessions = new SessionRegistry();
    const lines: string[] = [];
    const log = (_: string, __: string, line: string) => void lines.push(line);
    const ref: TargetRef = { id: target.id, host: target.host, os: "linux", port: target.port };
    const transport = sshTransport({
      hostKeyPolicy: "strict",
      knownHostsPath: join(tmp, "known_hosts"),
      env,
      connectTimeoutMs: 20_000,
      agentFiles: { agentCache, bundle, runtime: pushed, log },
      log,
    });
    const connect = createConnectSteps({
      targets: new Map([[target.id, targetAccess(target, env)]]),
      transports: { ssh: transport },
      sessions,
      log,
    });
    const push = createFileSteps({ sessions });
    const cleanup = (runId: string, sessionId: string | null): CleanupInput => ({
      runId,
      target: ref,
      attempt: 0,
      sessionId,
      agentDir: null,
      leases: null,
      agentPort: null,
    });
    return { ...connect, ...push, sessions, lines, ref, cleanup };
  }

  /** Runs a command over the session, as the agent would be run, and returns its stdout. */
  async function over(session: TargetSession, command: string): Promise<string> {
    const r = await session.shell.exec(command, { timeoutMs: 30_000, become: true });
    assert.equal(r.exitCode, 0, `${command}: ${r.stderr}`);
    return r.stdout;
  }

  const sh = async (t: LinuxTarget, cmd: string) => (await t.exec(cmd)).stdout.trim();

  it("target push - a wrong host key is refused with its code before any file is touched", async () => {
    const other = fingerprintOf(ssh2.utils.generateKeyPairSync("ed25519").public).fingerprint;
    const s = steps(jobTarget(withNode, "root", other));
    await assert.rejects(s.connect({ runId: "run-key", target: s.ref, attempt: 0 }, never), (e: Error) => {
      const err = e as Error & { code?: string; retryable?: boolean };
      assert.equal(err.code, "HOST_KEY_MISMATCH");
      assert.equal(err.retryable, false);
      assert.match(err.message, new RegExp(`${withNode.host}.*${withNode.port}|${withNode.port}`));
      return true;
    });
    assert.equal(s.sessions.size, 0);
    assert.equal(await sh(withNode, "test -e /var/tmp/sumac && echo there || echo absent"), "absent");
  });

  it("target push - a target with Node >= 18 runs the bundle with its own Node", async () => {
    const s = steps(jobTarget(withNode, "root"));
    const { sessionId } = await s.connect({ runId: "run-n", target: s.ref, attempt: 0 }, never);
    const session = s.sessions.get(sessionId, s.ref.id);
    assert.match(session.remoteAddress, /^\d+\.\d+\.\d+\.\d+$/);
    assert.match(session.localAddress, /^\d+\.\d+\.\d+\.\d+$/);
    const { agentDir } = await s.pushAgent({ runId: "run-n", target: s.ref, attempt: 0, sessionId }, never);
    assert.equal(agentDir, "/var/tmp/sumac/run-n");
    // Reached through the engine's published port on loopback (NAT): the target sees the bridge's
    // gateway, not this end's 127.0.0.1. Its firewall rule must admit what it sees.
    assert.equal(session.localAddress, "127.0.0.1");
    const gatewayHex = await sh(withNode, "awk '$2 == \"00000000\" { print $3; exit }' /proc/net/route");
    const gateway = [6, 4, 2, 0].map((i) => parseInt(gatewayHex.slice(i, i + 2), 16)).join(".");
    assert.equal(session.seenAs, gateway);
    const pushed = session.pushed;
    assert.ok(pushed);
    assert.equal(pushed.runtimePushed, false);
    assert.equal(pushed.nodePath, await sh(withNode, "command -v node"));
    const built = await bundle();
    assert.equal((await over(session, `sha256sum ${pushed.bundlePath}`)).split(" ")[0], built.sha256);
    await over(session, `${pushed.nodePath} --check ${pushed.bundlePath}`);

    await withNode.exec("mkdir -p /var/log/sumac/run-n && echo kept > /var/log/sumac/run-n/t.log");
    await s.removeFiles(s.cleanup("run-n", sessionId), never);
    assert.equal(await sh(withNode, "find /var/tmp/sumac -mindepth 1"), "");
    assert.equal(await sh(withNode, "cat /var/log/sumac/run-n/t.log"), "kept");
    await s.removeFiles(s.cleanup("run-n", sessionId), never);
    await s.disconnect(s.cleanup("run-n", sessionId), never);
    assert.equal(s.sessions.size, 0);
  });

  it("target push - without Node the workstation's Node is pushed and runs the bundle", async () => {
    const s = steps(jobTarget(plain, "deploy"));
    assert.equal(await sh(plain, "command -v node || echo none"), "none");
    const { sessionId } = await s.connect({ runId: "run-p", target: s.ref, attempt: 0 }, never);
    const session = s.sessions.get(sessionId, s.ref.id);
    await s.pushAgent({ runId: "run-p", target: s.ref, attempt: 0, sessionId }, never);
    const pushed = session.pushed;
    assert.ok(pushed);
    assert.equal(pushed.runtimePushed, true);
    assert.equal(pushed.nodePath, "/var/tmp/sumac/run-p/node");
    assert.equal((await over(session, `${pushed.nodePath} --version`)).trim(), process.version);
    await over(session, `${pushed.nodePath} --check ${pushed.bundlePath}`);
    assert.equal(await sh(plain, "ls /var/tmp/sumac/run-p | grep -c '\\.gz$' || true"), "0");
    // The agent (root) writes into staging; removal must still take everything.
    await over(session, `touch ${pushed.stagingDir}/written-by-root`);
    await s.removeFiles(s.cleanup("run-p", sessionId), never);
    assert.equal(await sh(plain, "find /var/tmp/sumac -mindepth 1"), "");
    await s.disconnect(s.cleanup("run-p", sessionId), never);
  });

  it("target push - a runtime that unpacks to other bytes, or does not run there, is refused with its own error", async () => {
    const real = await runtime();
    const cases: [string, RuntimeArtifact, Record<string, unknown>, RegExp][] = [
      [
        "run-h",
        { ...real, sha256: "0".repeat(64) },
        { code: "HASH_MISMATCH", retryable: true },
        /not the binary sent \(SHA-256 [0-9a-f]{64}, expected 0{64}\)/,
      ],
    ];
    // A "runtime" that is a script failing at once, with its own hash: it unpacks and is checked,
    // then cannot run.
    const script = Buffer.from('#!/bin/sh\necho "cannot run here: no libc" >&2\nexit 1\n');
    const gzPath = join(tmp, "broken-node.gz");
    await writeFile(gzPath, gzipSync(script));
    const digest = (b: Buffer) => createHash("sha256").update(b).digest("hex");
    cases.push([
      "run-b",
      {
        ...real,
        gzPath,
        gzSha256: digest(await readFile(gzPath)),
        sha256: digest(script),
        version: "v99.0.0",
      },
      { code: "NO_RUNTIME", retryable: false },
      /the pushed Node v99\.0\.0 does not run there \(cannot run here: no libc\)/,
    ]);
    for (const [runId, artifact, expected, message] of cases) {
      const s = steps(jobTarget(plain, "deploy"), false, () => Promise.resolve(artifact));
      const { sessionId } = await s.connect({ runId, target: s.ref, attempt: 0 }, never);
      try {
        await assert.rejects(
          s.pushAgent({ runId, target: s.ref, attempt: 0, sessionId }, never),
          (e: Error) => {
            assert.match(e.message, message);
            const err = e as Error & { code?: string; retryable?: boolean };
            assert.deepEqual({ code: err.code, retryable: err.retryable }, expected);
            return true;
          },
        );
        // Nothing unpacked is left beside the run's files: no .gz, no part, and no binary that failed its check.
        const left = await sh(plain, `ls /var/tmp/sumac/${runId}`);
        assert.doesNotMatch(left, /\.gz|\.part/, left);
        if (runId === "run-h") assert.doesNotMatch(left, /^node$/m, left);
      } finally {
        await s.removeFiles(s.cleanup(runId, sessionId), never);
        await s.disconnect(s.cleanup(runId, sessionId), never);
      }
    }
    assert.equal(await sh(plain, "find /var/tmp/sumac -mindepth 1"), "");
  });

  it("target push - an agent left by a closed channel keeps running; the stop command stops it", async () => {
    const s = steps(jobTarget(withNode, "root"));
    const { sessionId } = await s.connect({ runId: "run-k", target: s.ref, attempt: 0 }, never);
    const session = s.sessions.get(sessionId, s.ref.id);
    try {
      await s.pushAgent({ runId: "run-k", target: s.ref, attempt: 0, sessionId }, never);
      const pushed = session.pushed!;
      // Stands in for an agent past its start-up dialogue: it no longer reads stdin, and stops
      // on TERM. Started as startAgent starts the agent, with the run's marker.
      const stub = Buffer.from(
        'process.on("SIGTERM", () => process.exit(0)); console.log("serving"); setInterval(() => {}, 1000);',
      );
      const bundlePath = `${pushed.runDir}/serving-agent.js`;
      await session.files.put(stub, bundlePath, { mode: 0o644 });
      const agent = { ...pushed, bundlePath, bundleSha256: createHash("sha256").update(stub).digest("hex") };
      const marker = agentMarker("run-k", s.ref.id);
      const running = `ps -eo args | grep -F -- ${JSON.stringify(marker)} | grep -v grep || true`;
      const child = await session.shell.spawn(startAgentCommand(agent, marker), {
        startTimeoutMs: 20_000,
        become: true,
      });
      await new LineReader(child.stdout).next("serving", 20_000);
      // What the workstation did before: TERM through the channel, and the channel closed. For a
      // root login OpenSSH refuses the signal, and the process does not end with its channel.
      child.kill("TERM");
      await new Promise((r) => setTimeout(r, 1000));
      assert.match(await sh(withNode, running), /sumac-run=run-k/, "the agent outlived its channel");
      const stop = await session.shell.exec(stopAgentCommand(agent, marker), {
        timeoutMs: 30_000,
        become: true,
      });
      assert.equal(stop.stdout.trim(), "stopped", stop.stderr);
      assert.equal(await sh(withNode, running), "");
    } finally {
      await s.removeFiles(s.cleanup("run-k", sessionId), never);
      await s.disconnect(s.cleanup("run-k", sessionId), never);
    }
  });

  it("target push - with a sudo password: what root runs is root's own, checked there, and no login's Node runs as root", async () => {
    // The login holds a `node` of its own first on its PATH: it would run as root if chosen.
    const bashrc = "/home/operator/.bashrc";
    await withNode.exec(
      [
        `cp ${bashrc} ${bashrc}.orig`,
        "install -d -o operator -g operator /home/operator/bin",
        "printf '#!/bin/sh\\necho v99.0.0\\n' > /home/operator/bin/node",
        "chown operator:operator /home/operator/bin/node && chmod 755 /home/operator/bin/node",
        `{ echo 'export PATH=/home/operator/bin:$PATH'; cat ${bashrc}.orig; } > ${bashrc}`,
      ].join(" && "),
    );
    const s = steps(jobTarget(withNode, "operator"));
    const { sessionId } = await s.connect({ runId: "run-o", target: s.ref, attempt: 0 }, never);
    const session = s.sessions.get(sessionId, s.ref.id);
    try {
      assert.equal(
        (await session.shell.exec("command -v node", { timeoutMs: 30_000 })).stdout,
        "/home/operator/bin/node\n",
      );
      await s.pushAgent({ runId: "run-o", target: s.ref, attempt: 0, sessionId }, never);
      const pushed = session.pushed!;
      assert.equal(pushed.nodePath, "/usr/bin/node", "the login's own Node is passed over");
      const modes = await sh(
        withNode,
        `stat -c '%n %U %a' ${pushed.runDir} ${pushed.stagingDir} ${pushed.bundlePath} /var/tmp/sumac/.upload-run-o`,
      );
      assert.equal(
        modes,
        [
          `${pushed.runDir} root 700`,
          `${pushed.stagingDir} root 700`,
          `${pushed.bundlePath} root 644`,
          "/var/tmp/sumac/.upload-run-o operator 700",
        ].join("\n"),
      );
      assert.equal(
        await sh(withNode, "ls -A /var/tmp/sumac/.upload-run-o"),
        "",
        "uploads leave no copy behind",
      );
      const built = await bundle();
      assert.equal((await over(session, `sha256sum ${pushed.bundlePath}`)).split(" ")[0], built.sha256);
      for (const attempt of [
        `printf x >> ${pushed.bundlePath}`,
        `mv ${pushed.runDir} /var/tmp/sumac/x`,
        `rm -rf ${pushed.runDir}`,
      ]) {
        const r = await withNode.exec(`runuser -u operator -- sh -c '${attempt}' 2>&1`);
        assert.notEqual(r.exitCode, 0, `the login could: ${attempt}`);
      }

      // The start command, as root through sudo with the password, runs root's copy...
      const stub = Buffer.from(
        'console.log("serving as " + process.getuid()); process.stdin.resume(); process.stdin.on("end", () => process.exit(0));',
      );
      const bundlePath = `${pushed.runDir}/serving-agent.js`;
      await session.files.put(stub, bundlePath, { mode: 0o644, checkOnTarget: false });
      const agent = { ...pushed, bundlePath, bundleSha256: createHash("sha256").update(stub).digest("hex") };
      const marker = agentMarker("run-o", s.ref.id);
      const child = await session.shell.spawn(startAgentCommand(agent, marker, true), {
        startTimeoutMs: 20_000,
        become: true,
      });
      assert.equal(await new LineReader(child.stdout).next("serving", 20_000), "serving as 0");
      child.stdin.end();
      await child.exited;
      // ... and refuses a Node the login could replace, before anything runs.
      const refused = await session.shell.exec(
        startAgentCommand({ ...agent, nodePath: "/home/operator/bin/node" }, marker, true),
        { timeoutMs: 20_000, become: true },
      );
      assert.equal(refused.exitCode, 96);
      assert.match(refused.stderr, /\/home\/operator\/bin\/node is not root's own/);
    } finally {
      await withNode.exec(`mv ${bashrc}.orig ${bashrc}; rm -rf /home/operator/bin`);
      await s.removeFiles(s.cleanup("run-o", sessionId), never);
      await s.disconnect(s.cleanup("run-o", sessionId), never);
    }
    assert.equal(
      await sh(withNode, "find /var/tmp/sumac -mindepth 1"),
      "",
      "run directory and spool removed",
    );
  });

  it("target push - with the agent cache a second push uploads nothing", async () => {
    const s = steps(jobTarget(plain, "deploy"), true);
    const stats = (path: string) => sh(plain, `stat -c '%i %y' ${path}`);
    const { sessionId } = await s.connect({ runId: "run-c1", target: s.ref, attempt: 0 }, never);
    const session = s.sessions.get(sessionId, s.ref.id);
    await s.pushAgent({ runId: "run-c1", target: s.ref, attempt: 0, sessionId }, never);
    const first = session.pushed;
    assert.ok(first);
    assert.match(first.bundlePath, /^\/var\/tmp\/sumac\/cache\/[0-9a-f]{64}\/sumac-agent-/);
    assert.match(first.nodePath, /^\/var\/tmp\/sumac\/cache\/[0-9a-f]{64}\/node$/);
    const before = [await stats(first.bundlePath), await stats(first.nodePath)];
    await s.removeFiles(s.cleanup("run-c1", sessionId), never);

    await s.pushAgent({ runId: "run-c2", target: s.ref, attempt: 0, sessionId }, never);
    const second = session.pushed;
    assert.ok(second);
    assert.deepEqual([second.bundlePath, second.nodePath], [first.bundlePath, first.nodePath]);
    assert.deepEqual([await stats(second.bundlePath), await stats(second.nodePath)], before);
    assert.equal(s.lines.filter((l) => /reused from the cache/.test(l)).length, 2, s.lines.join("\n"));
    assert.equal((await over(session, `${second.nodePath} --version`)).trim(), process.version);
    await s.removeFiles(s.cleanup("run-c2", sessionId), never);
    assert.equal(await sh(plain, "ls /var/tmp/sumac"), "cache");
    await s.disconnect(s.cleanup("run-c2", sessionId), never);
    await plain.exec("rm -rf /var/tmp/sumac/cache");
  });
});
