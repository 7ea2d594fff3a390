/**
 * The agent's start on a Windows target (actors/target/windows/agent-service.ts) against fakes:
 * files over SMB that play the agent's side of the files dialogue, and a service control manager
 * that records what it is asked. Each ending of the start (listening, the agent's failure, another
 * certificate, a refused launch, an abort) is checked for what it returns or throws, and for the
 * service being removed at its end.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { AgentStartError } from "../../../actors/target/errors.ts";
import {
  agentServiceCommand,
  agentServiceName,
  windowsPathOf,
} from "../../../actors/target/windows/commands.ts";
import { windowsAgentConfig, windowsAgentLauncher } from "../../../actors/target/windows/agent-service.ts";
import { linkWindows } from "../../../actors/target/windows/link.ts";
import type { Removal, ServiceControl } from "../../../actors/target/windows/service-control.ts";
import type {
  AgentStartRequest,
  RunningAgent,
  StartedAgent,
  TransportSession,
} from "../../../actors/target/transport.ts";
import type { AgentConfigDocument } from "../../../agent/protocol/start-up.ts";
import type { SmbFiles } from "../../../actors/smb/connect.ts";
import { SmbOutputTooLargeError } from "../../../actors/smb/client/errors.ts";
import { ServiceState } from "../../../actors/scmr/constants.ts";
import { ScmError, Win32Error } from "../../../actors/scmr/win32-errors.ts";

const RUN = "20250612-153012-042-3fa9c1";
const RUN_DIR = `/ADMIN$/Temp/sumac/${RUN}`;
const INDEX = 3;
const SERVICE = agentServiceName(RUN, INDEX);
const NODE_SHA = "ab".repeat(32);
const BUNDLE_SHA = "cd".repeat(32);
const MARKER = `sumac-run=${RUN}:win-1`;
const FINGERPRINT = "AA:BB:CC";

const CONFIG: AgentConfigDocument = {
  runId: RUN,
  targetId: "win-1",
  caCertPem: "CA PEM",
  workstationFingerprint256: "11:22",
  stagingDir: `/var/tmp/sumac/${RUN}/staging`,
  programFiles: [`/var/tmp/sumac/${RUN}/agent.js`, "/opt/sumac/node"],
  logDir: `/var/log/sumac/${RUN}`,
  idleTimeoutMs: 600_000,
  listen: { host: "0.0.0.0", basePort: 62286 },
  workstationAddress: "192.0.2.7",
  firewall: "nft",
};

/** What the fake agent does: its lines at once, and those it appends once its certificates came. */
interface AgentScript {
  readonly first: readonly object[];
  readonly afterCert: readonly object[];
  /** Reads that fail first with OUTPUT_TOO_LARGE (the agent appended during the read). */
  readonly tooLarge?: number;
}

const KEY_LINE = { event: "publicKey", publicKeyPem: "AGENT PUBLIC KEY", pid: 4242 };
const LISTENING = { event: "listening", port: 62290, busy: [62286, "x", 62287], fingerprint256: FINGERPRINT };

/**
 * The file channel with exactly what the launcher uses (`remove`, `put`, `read`), its files in a
 * map: the out file grows as the script says.
 */
function fakeFiles(script: AgentScript) {
  const stored = new Map<string, Buffer>();
  /** Every file put, as it was put (the agent deletes some of them). */
  const written = new Map<string, Buffer>();
  const calls: string[] = [];
  const out = `${RUN_DIR}/agent-out.jsonl`;
  const lines = (events: readonly object[]) => events.map((e) => `${JSON.stringify(e)}\n`).join("");
  let tooLarge = script.tooLarge ?? 0;
  const files = {
    runRoot: "/ADMIN$/Temp/sumac",
    remove(path: string) {
      calls.push(`remove ${path}`);
      stored.delete(path);
      return Promise.resolve();
    },
    put(source: string | Buffer, path: string, options: { mode: number; checkOnTarget?: boolean }) {
      assert.ok(Buffer.isBuffer(source));
      assert.equal(options.mode, 0o600);
      assert.equal(options.checkOnTarget, false);
      calls.push(`put ${path}`);
      stored.set(path, source);
      written.set(path, source);
      if (path === `${RUN_DIR}/agent-cert.json`) {
        // The agent reads and deletes the certificates, then says it listens.
        stored.delete(path);
        stored.set(
          out,
          Buffer.concat([stored.get(out) ?? Buffer.alloc(0), Buffer.from(lines(script.afterCert))]),
        );
      }
      return Promise.resolve({ bytes: source.length, sha256: "" });
    },
    read(path: string, options: { maxBytes: number }) {
      assert.equal(path, out);
      assert.ok(options.maxBytes > 0);
      calls.push(`read ${path}`);
      if (tooLarge > 0) {
        tooLarge--;
        return Promise.reject(new SmbOutputTooLargeError("the file grew"));
      }
      const data = stored.get(path);
      return Promise.resolve(data?.length ? data : undefined);
    },
  };
  /** The service ran cmd, which started the agent: its first lines appear. */
  const agentStarted = () => stored.set(out, Buffer.from(lines(script.first)));
  return { files: files as unknown as SmbFiles, calls, written, agentStarted };
}

/** The ServiceControl with exactly what the launcher uses: `remove`, `launch` and `state`. */
function fakeControl(launched: () => void, launchError?: Error) {
  const calls: Array<[string, unknown]> = [];
  const control = {
    remove(name: string): Promise<Removal> {
      calls.push(["remove", name]);
      return Promise.resolve("deleted");
    },
    launch(service: { name: string; displayName: string; binaryPath: string }): Promise<void> {
      calls.push(["launch", service]);
      if (launchError !== undefined) return Promise.reject(launchError);
      launched();
      return Promise.resolve();
    },
    state(name: string): Promise<number> {
      calls.push(["state", name]);
      return Promise.resolve(ServiceState.RUNNING);
    },
  };
  return { control: control as unknown as ServiceControl, calls };
}

interface Started {
  readonly result: Promise<StartedAgent>;
  readonly files: ReturnType<typeof fakeFiles>;
  readonly scm: ReturnType<typeof fakeControl>;
  readonly issued: string[];
  readonly running: RunningAgent[];
  readonly logs: string[];
  readonly abort: AbortController;
}

/** Starts the launcher on a session whose link holds the fakes. */
function start(script: AgentScript, launchError?: Error): Started {
  const files = fakeFiles(script);
  const scm = fakeControl(files.agentStarted, launchError);
  // The link is the session's, found by its file channel; its SCM is the fake (never opened).
  const link = linkWindows(files.files, INDEX);
  link.scm = () => Promise.resolve(scm.control);
  const session: TransportSession = {
    targetId: "win-1",
    shell: {
      exec: () => Promise.reject(new Error("no shell")),
      spawn: () => Promise.reject(new Error("no shell")),
      close: () => Promise.resolve(),
    },
    files: files.files,
    remoteAddress: "192.0.2.10",
    localAddress: "192.0.2.7",
    local: false,
    description: "fake",
    pushed: {
      runDir: RUN_DIR,
      bundlePath: `${RUN_DIR}/agent.js`,
      bundleSha256: BUNDLE_SHA,
      nodePath: `${RUN_DIR}/node.exe`,
      runtimePushed: true,
      stagingDir: `${RUN_DIR}/staging`,
      logDir: `/ADMIN$/Temp/sumac/logs/${RUN}`,
      extraPaths: [],
      runtimeSha256: NODE_SHA,
    },
  };
  const issued: string[] = [];
  const running: RunningAgent[] = [];
  const request: AgentStartRequest = {
    config: CONFIG,
    marker: MARKER,
    issue(publicKeyPem) {
      issued.push(publicKeyPem);
      return { certPem: "LEAF PEM", fingerprint256: FINGERPRINT, callbackCertPem: "CALLBACK PEM" };
    },
    running(agent) {
      running.push(agent);
    },
  };
  const logs: string[] = [];
  const launcher = windowsAgentLauncher((target, level, line) => logs.push(`${target} ${level} ${line}`));
  const abort = new AbortController();
  const result = launcher.start(session, request, abort.signal);
  return { result, files, scm, issued, running, logs, abort };
}

/** The SCM's calls: the name removed before the launch, the launch, the name removed at the end. */
function assertServiceRemovedAtEnd(s: Started): void {
  const names = s.scm.calls
    .filter(([op]) => op !== "state")
    .map(([op, arg]) => (op === "launch" ? op : `${op} ${String(arg)}`));
  assert.deepEqual(names, [`remove ${SERVICE}`, "launch", `remove ${SERVICE}`]);
  assert.ok(s.logs.includes(`win-1 debug service ${SERVICE}: deleted`), s.logs.join("\n"));
}

function startError(what: RegExp) {
  return (error: unknown) => {
    assert.ok(error instanceof AgentStartError, String(error));
    assert.match(error.message, what);
    return true;
  };
}

/** Each start here takes well under a second; a hang fails in seconds, not on the 120 s deadline. */
const QUICK = { timeout: 10_000 };

describe("windows agent service", () => {
  it("agent config - places become relative to the bundle, the firewall netsh", () => {
    const before = structuredClone(CONFIG);
    assert.deepEqual(windowsAgentConfig(CONFIG), {
      ...CONFIG,
      stagingDir: "staging",
      logDir: `../logs/${RUN}`,
      programFiles: ["agent.cjs", "node.tgz"],
      firewall: "netsh",
    });
    assert.deepEqual(CONFIG, before, "the input is not changed");
    const { firewall: _, ...noFirewall } = CONFIG;
    assert.equal(windowsAgentConfig(noFirewall).firewall, "netsh");
    assert.equal(windowsAgentConfig({ ...CONFIG, firewall: "netsh" }).firewall, "netsh");
  });

  it("agent config - no firewall stays none", () => {
    assert.equal(windowsAgentConfig({ ...CONFIG, firewall: "none" }).firewall, "none");
  });

  it(
    "agent start - key, certificates, listening: the agent's port, busy ports and fingerprint, the service removed",
    QUICK,
    async () => {
      const s = start({ first: [KEY_LINE], afterCert: [LISTENING] });
      const agent = await s.result;
      assert.equal(agent.port, 62290);
      assert.deepEqual(agent.busy, [62286, 62287]);
      assert.equal(agent.fingerprint256, FINGERPRINT);
      assert.equal((agent as StartedAgent & { pid?: number }).pid, 4242);
      assert.deepEqual(s.running, [agent]);
      assert.deepEqual(s.issued, ["AGENT PUBLIC KEY"]);

      // What an earlier attempt left goes first, then the configuration, then the certificates.
      const fileOps = s.files.calls.filter((c) => !c.startsWith("read"));
      assert.deepEqual(fileOps, [
        `remove ${RUN_DIR}/agent-out.jsonl`,
        `remove ${RUN_DIR}/agent-cert.json`,
        `remove ${RUN_DIR}/agent-stop`,
        `put ${RUN_DIR}/agent-config.json`,
        `put ${RUN_DIR}/agent-cert.json`,
      ]);
      assert.equal(
        s.files.written.get(`${RUN_DIR}/agent-config.json`)?.toString(),
        `${JSON.stringify(windowsAgentConfig(CONFIG))}\n`,
      );
      assert.deepEqual(JSON.parse(s.files.written.get(`${RUN_DIR}/agent-cert.json`)?.toString() ?? ""), {
        certPem: "LEAF PEM",
        callbackCertPem: "CALLBACK PEM",
      });

      const launch = s.scm.calls.find(([op]) => op === "launch")?.[1];
      assert.deepEqual(launch, {
        name: SERVICE,
        displayName: `sumac agent ${RUN} win-1`,
        binaryPath: agentServiceCommand({
          runDir: windowsPathOf(RUN_DIR),
          nodeSha256: NODE_SHA,
          bundleSha256: BUNDLE_SHA,
          marker: MARKER,
        }),
      });
      assertServiceRemovedAtEnd(s);
    },
  );

  it("agent start - lines read again when the out file grew during the read", QUICK, async () => {
    const s = start({ first: [KEY_LINE], afterCert: [LISTENING], tooLarge: 2 });
    assert.equal((await s.result).port, 62290);
    assertServiceRemovedAtEnd(s);
  });

  it("agent start - the agent's failed line is the start's error, with its message", QUICK, async () => {
    const failed = { event: "failed", message: "no free port in 62286..63285\nsee the log" };
    const s = start({ first: [KEY_LINE], afterCert: [failed] });
    // The agent's text on one line, its control characters shown escaped.
    await assert.rejects(
      s.result,
      startError(/^win-1: the agent failed to start: no free port in 62286\.\.63285\\x0asee the log$/),
    );
    assertServiceRemovedAtEnd(s);
  });

  it("agent start - a long failure message is cut to 500 characters", QUICK, async () => {
    const s = start({ first: [KEY_LINE, { event: "failed", message: "x".repeat(2000) }], afterCert: [] });
    await assert.rejects(s.result, startError(new RegExp(`to start: x{500}…\\[1500 more\\]$`)));
    assertServiceRemovedAtEnd(s);
  });

  it("agent start - a failed line before the key ends the start too", QUICK, async () => {
    const s = start({ first: [{ event: "failed", message: "agent-config.json: bad JSON" }], afterCert: [] });
    await assert.rejects(s.result, startError(/the agent failed to start: agent-config\.json: bad JSON$/));
    assert.deepEqual(s.issued, []);
    assertServiceRemovedAtEnd(s);
  });

  it("agent start - a listening line with another certificate's fingerprint is refused", QUICK, async () => {
    const s = start({ first: [KEY_LINE], afterCert: [{ ...LISTENING, fingerprint256: "FF:FF:FF" }] });
    await assert.rejects(s.result, startError(/listens with another certificate than the one issued/));
    assertServiceRemovedAtEnd(s);
  });

  it(
    "agent start - a launch refused with ERROR_ACCESS_DENIED fails fast, naming the service",
    QUICK,
    async () => {
      const denied = new ScmError("RCreateServiceW", Win32Error.ERROR_ACCESS_DENIED);
      const t0 = performance.now();
      const s = start({ first: [], afterCert: [] }, denied);
      await assert.rejects(s.result, (error: unknown) => {
        assert.ok(error instanceof AgentStartError, String(error));
        assert.match(
          error.message,
          new RegExp(`^win-1: the service ${SERVICE} did not start: .*ERROR_ACCESS_DENIED`),
        );
        assert.equal(error.cause, denied);
        return true;
      });
      const ms = performance.now() - t0;
      assert.ok(ms < 2_000, `took ${Math.round(ms)} ms`);
      assert.deepEqual(s.issued, []);
      assertServiceRemovedAtEnd(s);
    },
  );

  it(
    "agent start - an abort while the key is awaited ends the start, the service removed",
    QUICK,
    async () => {
      const s = start({ first: [], afterCert: [] });
      const reason = new Error("the run stopped");
      setTimeout(() => s.abort.abort(reason), 400);
      // The reason itself, or the AbortError of the pause it cut short, which carries it.
      await assert.rejects(
        s.result,
        (error: unknown) => error === reason || (error as Error).cause === reason,
      );
      assertServiceRemovedAtEnd(s);
      // The launcher asked whether the service had stopped while no line came.
      assert.ok(s.scm.calls.some(([op, name]) => op === "state" && name === SERVICE));
    },
  );

  it(
    "agent start - a session that is not a Windows one is refused before anything is done",
    QUICK,
    async () => {
      const launcher = windowsAgentLauncher(() => undefined);
      const files = fakeFiles({ first: [], afterCert: [] });
      const session = {
        targetId: "x",
        files: files.files,
        pushed: { runtimeSha256: NODE_SHA },
      } as unknown as TransportSession;
      await assert.rejects(
        launcher.start(session, {} as AgentStartRequest, new AbortController().signal),
        startError(/^x: not a Windows session$/),
      );
      assert.deepEqual(files.calls, []);
    },
  );
});
