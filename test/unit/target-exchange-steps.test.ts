/**
 * The exchange steps (hello, inventory, stage, install, logs) against a fake agent client: what
 * they send, what they make of the answers, the errors they fail with (the agent's faults keep
 * their code and retry flag), the workstation port conflicts hello rides out, and the machine
 * retrying a retryable fault with the real steps in place.
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readdir, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createActor } from "xstate";
import type { AgentClientOptions } from "../../agent/client/client.ts";
import { readResult, type ResultMap } from "../../agent/client/results.ts";
import type { XmlElement } from "../../agent/protocol/xml-tree.ts";
import { RunEmitter } from "../../run/events/emitter.ts";
import type { RunEvent } from "../../run/types.ts";
import { Warnings } from "../../run/warnings.ts";
import { AgentConnectionError, AgentFaultError } from "../../agent/protocol/errors.ts";
import { CALL_MARGIN_MS, callDeadline, INSTALL_ANSWER_MS } from "../../agent/protocol/deadlines.ts";
import type { OperationName } from "../../agent/protocol/wire.ts";
import type { Lease } from "../../bus/schemas/lease.ts";
import type { AgentCalls } from "../../actors/target/agent-session.ts";
import { createExchangeSteps, type ExchangeComponent } from "../../actors/target/exchange-steps.ts";
import type { TargetSession } from "../../actors/target/session.ts";
import { testSession } from "../support/target-session.ts";
import { provideSteps, type StepImpls } from "../../actors/target/steps.ts";
import { clockAt, input, OUTPUTS, pathOf, settle, TIMEOUT_MS } from "../support/target-harness.ts";

const never = new AbortController().signal;
const TARGET = { id: "t1", host: "10.0.0.5", os: "linux" as const };
const FINGERPRINT = "AB:".repeat(31) + "AB";

const tmp = await mkdtemp(join(tmpdir(), "sumac-exchange-"));
after(() => rm(tmp, { recursive: true, force: true }));

const components: ExchangeComponent[] = [
  {
    id: "fw",
    version: "2.1.0",
    files: [
      { source: "/pkg/fw.bin", name: "fw.bin" },
      { source: "/pkg/fw.sig", name: "fw.sig" },
    ],
    detect: "cat /etc/fw-version",
    absentExitCode: 3,
    install: "./flash fw.bin",
    reboot: false,
  },
  {
    id: "nic",
    version: "1.4",
    files: [],
    detect: "nic --version",
    absentExitCode: 1,
    install: "true",
    reboot: true,
    timeoutMs: 5_000,
  },
];

type Answer = { result: unknown } | { error: Error };

/** An agent session that answers each operation from a script, and records every call. */
class FakeAgent implements AgentCalls {
  readonly calls: { operation: OperationName; fields: unknown; timeoutMs: number | undefined }[] = [];
  readonly answers = new Map<OperationName, Answer[]>();
  closed = false;

  answer<Op extends OperationName>(operation: Op, ...answers: (ResultMap[Op] | Error)[]): this {
    this.answers.set(
      operation,
      answers.map((a) => (a instanceof Error ? { error: a } : { result: a })),
    );
    return this;
  }

  call<Op extends OperationName>(
    operation: Op,
    fields: object,
    options?: { timeoutMs?: number },
  ): Promise<ResultMap[Op]> {
    this.calls.push({ operation, fields, timeoutMs: options?.timeoutMs });
    const list = this.answers.get(operation) ?? [];
    const next = list.length > 1 ? list.shift() : list[0];
    if (next === undefined) return Promise.reject(new Error(`no answer scripted for ${operation}`));
    return "error" in next ? Promise.reject(next.error) : Promise.resolve(next.result as ResultMap[Op]);
  }

  close(): void {
    this.closed = true;
  }
}

const hello: ResultMap["Hello"] = {
  agentVersion: "0.1.0",
  hostname: "web-1",
  os: "linux",
  osRelease: "6.1",
  arch: "x64",
  nodeVersion: "v18.19.0",
  pid: 4242,
  sessionId: "s",
  port: 62286,
  stagingDir: "/var/tmp/sumac/r1/staging",
  runId: "r1",
  targetId: "t1",
};
const fault = (code: string, message = "from the agent") =>
  new AgentFaultError({ code, message, status: 500 });
const lease = (leaseId: string, port: number): Lease =>
  ({ leaseId, port, range: "workstation", holder: { run: "r1", target: "t1" } }) as unknown as Lease;

interface Setup {
  steps: ReturnType<typeof createExchangeSteps>;
  session: TargetSession;
  agent: FakeAgent;
  connects: AgentClientOptions[];
  conflicts: string[];
  uploads: string[];
  lines: string[];
  progress: string[];
  logDir: string;
}

/** The steps over one target's session, an agent that answers as scripted, files put nowhere. */
function setup(
  options: {
    connect?: (options: AgentClientOptions, attempt: number) => Promise<AgentCalls> | undefined;
    started?: boolean;
  } = {},
): Setup {
  const agent = new FakeAgent().answer("Hello", hello);
  const connects: AgentClientOptions[] = [];
  const conflicts: string[] = [];
  const uploads: string[] = [];
  const lines: string[] = [];
  const progress: string[] = [];
  const logDir = join(tmp, `logs-${Math.random().toString(36).slice(2)}`);
  const { session, sessions } = testSession({
    files: {
      put: (source: string | Buffer, path: string) => {
        uploads.push(`${String(source)} -> ${path}`);
        return Promise.resolve({ bytes: 10, sha256: `sha-of-${String(source)}` });
      },
    },
    pushed: { stagingDir: "/var/tmp/sumac/r1/staging" },
    ports: { workstationLease: lease("L-ws-1", 60000) },
    ...(options.started === false ? {} : { agentFingerprint: FINGERPRINT }),
  });
  let attempt = 0;
  const steps = createExchangeSteps({
    runId: "r1",
    sessions,
    ca: { certPem: "CA PEM" },
    client: { certPem: "WS PEM", keyPem: "WS KEY" },
    connectAgent: (o) => {
      connects.push(o);
      return options.connect?.(o, attempt++) ?? Promise.resolve(agent);
    },
    leases: {
      reportConflict: (leaseId: string) => {
        conflicts.push(leaseId);
        return Promise.resolve(lease(`L-ws-${conflicts.length + 1}`, 60000 + conflicts.length));
      },
    },
    components: new Map(components.map((c) => [c.id, c])),
    logDir: async () => {
      await import("node:fs/promises").then((fs) => fs.mkdir(logDir, { recursive: true }));
      return logDir;
    },
    log: (_target, level, line) => void lines.push(`${level} ${line}`),
    progress: (_target, component, percent) => void progress.push(`${component} ${percent}`),
  });
  return { steps, session, agent, connects, conflicts, uploads, lines, progress, logDir };
}

const eaddrinuse = () =>
  new AgentConnectionError("cannot connect to the agent", {
    cause: Object.assign(new Error("bind"), { code: "EADDRINUSE" }),
  });

describe("target exchange steps - hello", () => {
  it("target exchange steps - hello opens a pinned session from the leased port and says who answered", async () => {
    const s = setup();
    const old = new FakeAgent();
    s.session.client = old;
    assert.deepEqual(await s.steps.hello({ target: TARGET, agentPort: 62287 } as never, never), {
      agentVersion: "0.1.0",
    });
    assert.equal(old.closed, true, "an earlier session is closed first");
    assert.equal(s.connects.length, 1);
    const o = s.connects[0]!;
    assert.deepEqual(
      [
        o.host,
        o.port,
        o.localPort,
        o.agentFingerprint256,
        o.runId,
        o.targetId,
        o.caCertPem,
        o.certPem,
        o.keyPem,
      ],
      ["10.0.0.5", 62287, 60000, FINGERPRINT, "r1", "t1", "CA PEM", "WS PEM", "WS KEY"],
    );
    assert.equal(s.session.client, s.agent);
    assert.deepEqual(
      s.agent.calls.map((c) => c.operation),
      ["Hello"],
    );
    assert.ok(s.lines.includes("info agent 0.1.0 on web-1 (linux x64, Node v18.19.0)"));
  });

  it("target exchange steps - a Hello with 8 MiB of lines as hostname makes one short, escaped event", async () => {
    // As the client reads it off the wire: every field through the result's parser.
    const flood = "x\n".repeat(4 * 1024 * 1024);
    const field = (local: string, text: string): XmlElement => ({ uri: "", local, children: [], text });
    const element: XmlElement = {
      uri: "",
      local: "HelloResponse",
      text: "",
      children: Object.entries({ ...hello, hostname: flood, os: flood, pid: "1", port: "62286" }).map(
        ([k, v]) => field(k, String(v)),
      ),
    };
    const answered = readResult("Hello", element);
    assert.equal(answered.hostname, `${"x\n".repeat(128)}…[${flood.length - 256} more]`);
    const s = setup();
    s.agent.answer("Hello", answered);
    await s.steps.hello({ target: TARGET, agentPort: 62287 } as never, never);
    // Through the run's emitter, as compose.ts wires the steps' log.
    const events: RunEvent[] = [];
    const emitter = new RunEmitter(
      "r1",
      () => 0,
      (e) => events.push(e),
      new Warnings(),
    );
    for (const line of s.lines) emitter.log("t1", "info", line.slice(line.indexOf(" ") + 1));
    assert.equal(events.length, 1, `${events.length} events`);
    const message = events[0]?.type === "target.log" ? events[0].message : "";
    assert.ok(message.length < 3000, `${message.length} characters`);
    assert.match(
      message,
      /^agent 0\.1\.0 on (x\\x0a){128}…\[8388352 more\] \((x\\x0a){128}…\[8388352 more\] x64,/,
    );
    assert.doesNotMatch(message, /[\u0000-\u001f\u007f-\u009f]/);
  });

  it("target exchange steps - hello reports a taken workstation port and connects from the next one", async () => {
    const s = setup({ connect: (_, attempt) => (attempt < 2 ? Promise.reject(eaddrinuse()) : undefined) });
    await s.steps.hello({ target: TARGET, agentPort: 62286 } as never, never);
    assert.deepEqual(s.conflicts, ["L-ws-1", "L-ws-2"]);
    assert.deepEqual(
      s.connects.map((c) => c.localPort),
      [60000, 60001, 60002],
    );
    assert.deepEqual(s.session.ports.workstationLease?.leaseId, "L-ws-3");
    assert.equal(s.lines.filter((l) => /workstation port \d+ taken/.test(l)).length, 2);
  });

  it("target exchange steps - hello gives up after 16 taken ports in a row, with the connection's error", async () => {
    const s = setup({ connect: () => Promise.reject(eaddrinuse()) });
    await assert.rejects(s.steps.hello({ target: TARGET, agentPort: 62286 } as never, never), {
      code: "AGENT_CONNECTION",
      retryable: true,
    });
    assert.equal(s.conflicts.length, 16);
    assert.equal(s.connects.length, 17);
  });

  it("target exchange steps - any other connection failure is not a port conflict: it fails hello as it is", async () => {
    const refused = new AgentConnectionError("connect ECONNREFUSED 10.0.0.5:62286");
    const s = setup({ connect: () => Promise.reject(refused) });
    await assert.rejects(
      s.steps.hello({ target: TARGET, agentPort: 62286 } as never, never),
      (e) => e === refused,
    );
    assert.deepEqual(s.conflicts, []);
    const identity = setup({
      connect: () =>
        Promise.reject(Object.assign(new Error("pin"), { code: "AGENT_IDENTITY", retryable: false })),
    });
    await assert.rejects(identity.steps.hello({ target: TARGET, agentPort: 62286 } as never, never), {
      code: "AGENT_IDENTITY",
      retryable: false,
    });
  });

  it("target exchange steps - hello without a started agent, or a fault of Hello, fails with its code", async () => {
    const s = setup({ started: false });
    await assert.rejects(s.steps.hello({ target: TARGET, agentPort: 62286 } as never, never), {
      code: "AGENT_NOT_RUNNING",
      retryable: false,
    });
    assert.equal(s.connects.length, 0);
    const replayed = setup();
    replayed.agent.answer("Hello", fault("REPLAYED"));
    await assert.rejects(replayed.steps.hello({ target: TARGET, agentPort: 62286 } as never, never), {
      code: "REPLAYED",
      retryable: false,
    });
    const aborted = new AbortController();
    aborted.abort(new Error("cancelled"));
    await assert.rejects(
      setup().steps.hello({ target: TARGET, agentPort: 62286 } as never, aborted.signal),
      /cancelled/,
    );
  });
});

describe("target exchange steps - inventory, stage, install, logs", () => {
  async function connected(s: Setup): Promise<void> {
    await s.steps.hello({ target: TARGET, agentPort: 62286 } as never, never);
  }

  it("target exchange steps - inventory stages the files first, then reads each component's state", async () => {
    const s = setup();
    await connected(s);
    s.agent.answer("Inventory", {
      components: [
        { id: "fw", status: "installed", version: "2.0.0", exitCode: 0 },
        { id: "nic", status: "failed", version: "", exitCode: 7 },
      ],
    } as never);
    const result = await s.steps.inventory({ target: TARGET, componentIds: ["fw", "nic"] } as never, never);
    assert.deepEqual(result, { installed: { fw: "2.0.0", nic: null } });
    assert.deepEqual(s.uploads, [
      "/pkg/fw.bin -> /var/tmp/sumac/r1/staging/fw.bin",
      "/pkg/fw.sig -> /var/tmp/sumac/r1/staging/fw.sig",
    ]);
    const call = s.agent.calls.find((c) => c.operation === "Inventory");
    assert.deepEqual(call?.fields, {
      component: [
        { id: "fw", detectCommand: "cat /etc/fw-version", absentExitCode: 3 },
        { id: "nic", detectCommand: "nic --version", absentExitCode: 1 },
      ],
    });
    assert.ok(s.lines.includes("warn detect of nic exited 7: taken as not installed"));
  });

  it("target exchange steps - an inventory answering 10,000 components not asked about is heard on those asked only", async () => {
    const s = setup();
    await connected(s);
    s.agent.answer("Inventory", {
      components: [
        ...Array.from({ length: 10_000 }, (_, i) => ({
          id: `x${i}`,
          status: "failed",
          version: "",
          exitCode: 1,
        })),
        { id: "nic", status: "failed", version: "", exitCode: 7 },
        { id: "nic", status: "failed", version: "", exitCode: 7 },
      ],
    } as never);
    const before = s.lines.length;
    const result = await s.steps.inventory({ target: TARGET, componentIds: ["nic"] } as never, never);
    assert.deepEqual(result, { installed: { nic: null } });
    assert.deepEqual(s.lines.slice(before), ["warn detect of nic exited 7: taken as not installed"]);
  });

  it("target exchange steps - inventory passes the agent's fault on with its code and retry flag", async () => {
    const s = setup();
    await connected(s);
    s.agent.answer("Inventory", fault("DEADLINE_EXCEEDED", "Inventory did not finish within 300000 ms"));
    await assert.rejects(s.steps.inventory({ target: TARGET, componentIds: ["fw"] } as never, never), {
      name: "AgentFaultError",
      code: "DEADLINE_EXCEEDED",
      retryable: true,
      message: /Inventory did not finish/,
    });
    // A code no peer may send, or one of the workstation's own, is not believed.
    for (const code of ["NO_SUCH_CODE", "HOST_KEY_MISMATCH", "LEASE_EXHAUSTED", "TIMEOUT"]) {
      const hostile = setup();
      await connected(hostile);
      hostile.agent.answer("Inventory", fault(code));
      await assert.rejects(
        hostile.steps.inventory({ target: TARGET, componentIds: ["fw"] } as never, never),
        {
          code: "AGENT_RESPONSE",
          retryable: false,
          message: new RegExp(`agent fault ${code}`),
        },
      );
    }
  });

  it("target exchange steps - stage has the agent check what inventory put there, uploading nothing again", async () => {
    const s = setup();
    await connected(s);
    s.agent.answer("Inventory", { components: [] });
    await s.steps.inventory({ target: TARGET, componentIds: ["fw"] } as never, never);
    const uploaded = s.uploads.length;
    s.agent.answer("Stage", { name: "x", size: 10, sha256: "h" });
    const staged = await s.steps.stage(
      { target: TARGET, components: [{ id: "fw", version: "2.1.0" }] } as never,
      never,
    );
    assert.deepEqual(staged, { files: 2, bytes: 20 });
    assert.equal(s.uploads.length, uploaded, "nothing uploaded twice");
    assert.deepEqual(
      s.agent.calls.filter((c) => c.operation === "Stage").map((c) => c.fields),
      [
        { name: "fw.bin", size: 10, sha256: "sha-of-/pkg/fw.bin" },
        { name: "fw.sig", size: 10, sha256: "sha-of-/pkg/fw.sig" },
      ],
    );
  });

  it("target exchange steps - stage uploads what inventory did not, and a mismatch is worth another attempt", async () => {
    const s = setup();
    await connected(s);
    s.agent.answer("Stage", fault("STAGED_FILE_MISMATCH", "fw.bin: size 9, expected 10"));
    await assert.rejects(
      s.steps.stage({ target: TARGET, components: [{ id: "fw", version: "2.1.0" }] } as never, never),
      { code: "STAGED_FILE_MISMATCH", retryable: true },
    );
    assert.equal(s.uploads.length, 2, "uploaded by stage itself");
  });

  it("target exchange steps - install reports 0 and 100 around a good install, with the component's deadline", async () => {
    const s = setup();
    await connected(s);
    s.agent.answer("Install", { exitCode: 0, rebootRequired: false, durationMs: 5 } as never);
    assert.deepEqual(
      await s.steps.install({ target: TARGET, component: { id: "nic", version: "1.4" } } as never, never),
      {
        rebootNeeded: true,
      },
    );
    const call = s.agent.calls.find((c) => c.operation === "Install");
    assert.deepEqual(call?.fields, { componentId: "nic", command: "true", timeoutMs: 5_000 });
    assert.equal(call?.timeoutMs, undefined, "the client waits as the agent's table says");
    assert.equal(
      callDeadline("Install", { installTimeoutMs: 5_000 }),
      5_000 + INSTALL_ANSWER_MS + CALL_MARGIN_MS,
    );
    assert.deepEqual(s.progress, ["nic 0", "nic 100"]);
    assert.equal(s.session.installing, undefined);
  });

  it("target exchange steps - an install that exits non-zero is COMPONENT_FAILED, never retried", async () => {
    const s = setup();
    await connected(s);
    s.agent.answer("Install", { exitCode: 2, rebootRequired: false, durationMs: 5 } as never);
    await assert.rejects(
      s.steps.install({ target: TARGET, component: { id: "fw", version: "2.1.0" } } as never, never),
      {
        code: "COMPONENT_FAILED",
        retryable: false,
        message: "fw 2.1.0: the install command exited 2 (see the target's log)",
      },
    );
    assert.deepEqual(s.progress, ["fw 0"]);
    assert.equal(s.session.installing, undefined);
    assert.deepEqual(
      (s.agent.calls.find((c) => c.operation === "Install")?.fields as { timeoutMs: number }).timeoutMs,
      30 * 60_000,
    );
    s.agent.answer("Install", fault("INSTALL_IN_PROGRESS"));
    await assert.rejects(
      s.steps.install({ target: TARGET, component: { id: "fw", version: "2.1.0" } } as never, never),
      {
        code: "INSTALL_IN_PROGRESS",
        retryable: true,
      },
    );
  });

  it("target exchange steps - logs keeps only the file names the agent sends, inside the target's directory", async () => {
    const s = setup();
    await connected(s);
    s.agent.answer("Logs", {
      files: [
        { name: "t1.log", content: Buffer.from("line 1\n") },
        { name: "../../../etc/evil.log", content: Buffer.from("x") },
      ],
    } as never);
    const result = await s.steps.logs({ target: TARGET } as never, never);
    assert.deepEqual(result, { location: s.logDir, files: 2, bytes: 8 });
    assert.deepEqual((await readdir(s.logDir)).sort(), ["evil.log", "t1.log"]);
    assert.equal(await readFile(join(s.logDir, "t1.log"), "utf8"), "line 1\n");
    assert.equal((await stat(join(s.logDir, "t1.log"))).mode & 0o777, 0o600);
  });

  it("target exchange steps - every operation needs the session hello opened, and a component of the job", async () => {
    const s = setup();
    const notRunning = { code: "AGENT_NOT_RUNNING", retryable: false };
    await assert.rejects(
      s.steps.inventory({ target: TARGET, componentIds: ["fw"] } as never, never),
      notRunning,
    );
    await assert.rejects(s.steps.stage({ target: TARGET, components: [] } as never, never), notRunning);
    await assert.rejects(
      s.steps.install({ target: TARGET, component: { id: "fw", version: "1" } } as never, never),
      notRunning,
    );
    await assert.rejects(s.steps.logs({ target: TARGET } as never, never), notRunning);
    await connected(s);
    await assert.rejects(
      s.steps.install({ target: TARGET, component: { id: "bios", version: "1" } } as never, never),
      {
        ...notRunning,
        message: "no component bios in the job",
      },
    );
    await assert.rejects(s.steps.logs({ target: { ...TARGET, id: "t2" } } as never, never), {
      code: "SESSION_LOST",
      retryable: false,
    });
  });
});

describe("target exchange steps - a lost session", () => {
  const eaddrnotavail = () =>
    new AgentConnectionError("cannot connect to the agent", {
      cause: Object.assign(new Error("connect"), { code: "EADDRNOTAVAIL" }),
    });

  it("target exchange steps - a step that finds the session lost opens a new one from the leased port, and goes on", async () => {
    const second = new FakeAgent().answer("Stage", { name: "x", size: 10, sha256: "h" });
    const s = setup({ connect: (_, attempt) => (attempt === 0 ? undefined : Promise.resolve(second)) });
    await s.steps.hello({ target: TARGET, agentPort: 62287 } as never, never);
    s.agent.closed = true; // The agent's side closed it, or the network dropped it.
    const staged = await s.steps.stage(
      { target: TARGET, agentPort: 62287, components: [{ id: "fw", version: "2.1.0" }] } as never,
      never,
    );
    assert.deepEqual(staged, { files: 2, bytes: 20 });
    assert.deepEqual(
      s.connects.map((c) => [c.port, c.localPort, c.agentFingerprint256]),
      [
        [62287, 60000, FINGERPRINT],
        [62287, 60000, FINGERPRINT],
      ],
    );
    assert.equal(s.session.client, second);
    assert.deepEqual(
      second.calls.map((c) => c.operation),
      ["Stage", "Stage"],
    );
    assert.ok(s.lines.some((l) => /^info the session with the agent was lost: a new one is open/.test(l)));
  });

  it("target exchange steps - a new session whose port is still held by the last one takes the next lease", async () => {
    const second = new FakeAgent().answer("Logs", { files: [] });
    const s = setup({
      connect: (_, attempt) =>
        attempt === 0 ? undefined : attempt === 1 ? Promise.reject(eaddrnotavail()) : Promise.resolve(second),
    });
    await s.steps.hello({ target: TARGET, agentPort: 62286 } as never, never);
    s.agent.closed = true;
    await s.steps.logs({ target: TARGET, agentPort: 62286 } as never, never);
    assert.deepEqual(s.conflicts, ["L-ws-1"]);
    assert.deepEqual(
      s.connects.map((c) => c.localPort),
      [60000, 60000, 60001],
    );
    assert.ok(s.lines.some((l) => /workstation port 60000 not yet free again/.test(l)));
  });

  it("target exchange steps - every call carries the step's signal; an Install left unanswered is marked for stopAgent", async () => {
    const s = setup();
    await s.steps.hello({ target: TARGET, agentPort: 62286 } as never, never);
    const step = new AbortController();
    const signals: (AbortSignal | undefined)[] = [];
    s.agent.call = ((operation: OperationName, _fields: object, options?: { signal?: AbortSignal }) => {
      signals.push(options?.signal);
      if (operation === "Install") return Promise.reject(new AgentConnectionError("abandoned"));
      return Promise.resolve({ components: [] } as never);
    }) as FakeAgent["call"];
    await s.steps.inventory({ target: TARGET, componentIds: [] } as never, step.signal);
    await assert.rejects(
      s.steps.install({ target: TARGET, component: { id: "fw", version: "2.1.0" } } as never, step.signal),
      { code: "AGENT_CONNECTION" },
    );
    assert.deepEqual(signals, [step.signal, step.signal]);
    assert.equal(s.session.installAbandoned, "fw");
    // A fault is an answer: the agent runs nothing of it.
    const answered = setup();
    await answered.steps.hello({ target: TARGET, agentPort: 62286 } as never, never);
    answered.agent.answer("Install", fault("COMMAND_FAILED"));
    await assert.rejects(
      answered.steps.install({ target: TARGET, component: { id: "fw", version: "2.1.0" } } as never, never),
    );
    assert.equal(answered.session.installAbandoned, undefined);
  });

  it("target exchange steps - without hello nothing reconnects: AGENT_NOT_RUNNING", async () => {
    const s = setup();
    s.session.client = Object.assign(new FakeAgent(), { closed: true });
    await assert.rejects(s.steps.logs({ target: TARGET } as never, never), {
      code: "AGENT_NOT_RUNNING",
      retryable: false,
    });
    assert.equal(s.connects.length, 0);
  });
});

describe("target exchange steps - in the machine", () => {
  it("target exchange steps - a retryable fault is tried again by the machine, a non-retryable one fails the target", async () => {
    for (const [code, staged, status] of [
      ["STAGED_FILE_MISSING", ["fw.bin", "fw.bin", "fw.sig"], "succeeded"],
      ["PATH_ESCAPES_STAGING", ["fw.bin"], "failed"],
    ] as const) {
      const s = setup();
      s.agent
        .answer("Inventory", { components: [] })
        .answer("Stage", fault(code), { name: "x", size: 10, sha256: "h" })
        .answer("Install", { exitCode: 0, rebootRequired: false, durationMs: 1 } as never)
        .answer("Logs", { files: [] })
        .answer("Shutdown", {} as never);
      const done = <K extends keyof StepImpls>(step: K) =>
        (() => Promise.resolve(OUTPUTS[step])) as unknown as StepImpls[K];
      const impls: StepImpls = {
        connect: done("connect"),
        pushAgent: done("pushAgent"),
        allocatePorts: done("allocatePorts"),
        startAgent: done("startAgent"),
        ...s.steps,
        stopAgent: done("stopAgent"),
        removeFiles: done("removeFiles"),
        closeFirewall: done("closeFirewall"),
        releaseLeases: done("releaseLeases"),
        disconnect: done("disconnect"),
      };
      const clock = clockAt();
      const actor = createActor(provideSteps(impls), {
        clock,
        input: input({ components: [{ id: "fw", version: "2.1.0" }] }),
      });
      actor.start();
      actor.send({ type: "START" });
      // Simulated time moves only through a backoff: a step doing real I/O (the logs step makes a
      // directory) is never timed out by the test itself, however slow the machine.
      for (let i = 0; i < 2_000 && actor.getSnapshot().status !== "done"; i++) {
        await settle(actor);
        if (pathOf(actor.getSnapshot()).endsWith(".retrying")) clock.increment(TIMEOUT_MS / 2);
      }
      const snapshot = actor.getSnapshot();
      assert.equal(snapshot.status, "done", code);
      assert.equal(snapshot.output?.status, status, code);
      // The second attempt stages the component's files from the first again.
      assert.deepEqual(
        s.agent.calls.filter((c) => c.operation === "Stage").map((c) => (c.fields as { name: string }).name),
        staged,
        code,
      );
      if (status === "failed") {
        const failure = snapshot.output?.status === "failed" ? snapshot.output.failure : undefined;
        assert.deepEqual([failure?.step, failure?.code, failure?.attempts], ["stage", code, 1]);
      }
    }
  });
});
