/**
 * The sweep of services an earlier run left (actors/target/windows/sweep.ts), against a fake
 * service control manager that holds a list of services and records every call: what is removed,
 * what is left and why, that every handle opened is closed, and the log lines that say so.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  agentServiceCommand,
  agentServiceName,
  killServiceCommand,
  killServiceName,
} from "../../../actors/target/windows/commands.ts";
import type { Removal, ServiceControl } from "../../../actors/target/windows/service-control.ts";
import { describeSweep, sweepServices, type SweptService } from "../../../actors/target/windows/sweep.ts";
import { ruleComment } from "../../../agent/protocol/firewall-rule.ts";
import { ServiceState } from "../../../actors/scmr/constants.ts";
import { ScmError, Win32Error } from "../../../actors/scmr/win32-errors.ts";

const CURRENT = "20250612-153012-042-3fa9c1";
const OLD = "20250101-000000-000-abcdef";
const OTHER = "20250301-101010-500-123456";
const CALL = { timeoutMs: 1000 };

interface FakeService {
  readonly name: string;
  readonly state: number;
  readonly binaryPath: string | null;
  /** What queryConfig does for it instead of answering. */
  readonly configError?: Error;
  /** Listed, but deleted (another workstation's start ending) before it is opened. */
  readonly gone?: boolean;
}

/** The agent's binary path for `run`, as the launcher writes it. */
function agentPath(run: string): string {
  return agentServiceCommand({
    runDir: `%SystemRoot%\\Temp\\sumac\\${run}`,
    nodeSha256: "ab".repeat(32),
    bundleSha256: "cd".repeat(32),
    marker: `sumac-run=${run}:win-1`,
  });
}

/**
 * A ServiceControl with exactly what the sweep uses: `scm.enumServices`, `scm.openService`,
 * `scm.queryConfig`, `scm.closeHandle` and `remove`.
 */
function fakeControl(services: readonly FakeService[], removal: Removal = "deleted") {
  const opened = new Map<string, string>();
  const closed: string[] = [];
  const removed: string[] = [];
  const queried: string[] = [];
  let next = 0;
  const scm = {
    enumServices(filter: object, options: { timeoutMs: number }) {
      assert.deepEqual(filter, {});
      assert.equal(options, CALL);
      return Promise.resolve(
        services.map((s) => ({
          name: s.name,
          displayName: s.name,
          status: {
            serviceType: 0x10,
            currentState: s.state,
            controlsAccepted: 0,
            win32ExitCode: 0,
            serviceSpecificExitCode: 0,
            checkPoint: 0,
            waitHint: 0,
          },
        })),
      );
    },
    openService(name: string) {
      if (!services.some((s) => s.name === name && s.gone !== true))
        return Promise.reject(new ScmError("ROpenServiceW", Win32Error.ERROR_SERVICE_DOES_NOT_EXIST));
      const handle = Buffer.alloc(20, ++next);
      opened.set(handle.toString("hex"), name);
      return Promise.resolve(handle);
    },
    queryConfig(handle: Buffer) {
      const name = opened.get(handle.toString("hex"));
      assert.ok(name !== undefined, "queryConfig on a handle not opened");
      assert.ok(!closed.includes(handle.toString("hex")), "queryConfig on a closed handle");
      queried.push(name);
      const service = services.find((s) => s.name === name);
      if (service?.configError !== undefined) return Promise.reject(service.configError);
      return Promise.resolve({ binaryPath: service?.binaryPath ?? null });
    },
    closeHandle(handle: Buffer) {
      closed.push(handle.toString("hex"));
      return Promise.resolve();
    },
  };
  const control = {
    scm,
    remove(name: string) {
      removed.push(name);
      return Promise.resolve(removal);
    },
  };
  return {
    control: control as unknown as ServiceControl,
    removed,
    queried,
    /** Names of the services whose handle was opened and not closed. */
    leaked: () => [...opened].filter(([h]) => !closed.includes(h)).map(([, n]) => n),
  };
}

const stopped = ServiceState.STOPPED;
const running = ServiceState.RUNNING;

describe("windows service sweep", () => {
  it("sweep - a stopped service of an earlier run carrying its marker is removed, others left with their reason", async () => {
    const oldName = agentServiceName(OLD, 3);
    const fake = fakeControl([
      { name: "Spooler", state: running, binaryPath: "C:\\Windows\\System32\\spoolsv.exe" },
      { name: oldName, state: stopped, binaryPath: agentPath(OLD) },
      { name: agentServiceName(CURRENT, 3), state: stopped, binaryPath: agentPath(CURRENT) },
      { name: agentServiceName(OTHER, 1), state: ServiceState.START_PENDING, binaryPath: agentPath(OTHER) },
      { name: "sumac-foo", state: stopped, binaryPath: agentPath(OLD) },
      { name: agentServiceName(OLD, 4), state: stopped, binaryPath: "C:\\Program Files\\Other\\svc.exe" },
      { name: agentServiceName(OLD, 5), state: stopped, binaryPath: null },
      // Another run's marker in an old run's name is not that run's.
      { name: agentServiceName(OLD, 6), state: stopped, binaryPath: agentPath(OTHER) },
    ]);
    const swept = await sweepServices(fake.control, CURRENT, CALL);
    assert.deepEqual(swept, [
      { name: oldName, run: OLD, outcome: "deleted" },
      { name: agentServiceName(CURRENT, 3), run: CURRENT, outcome: "current-run" },
      { name: agentServiceName(OTHER, 1), run: OTHER, outcome: "running" },
      { name: "sumac-foo", run: undefined, outcome: "not-sumac" },
      { name: agentServiceName(OLD, 4), run: OLD, outcome: "not-sumac" },
      { name: agentServiceName(OLD, 5), run: OLD, outcome: "not-sumac" },
      { name: agentServiceName(OLD, 6), run: OLD, outcome: "not-sumac" },
    ] satisfies SweptService[]);
    assert.deepEqual(fake.removed, [oldName]);
    // Neither the current run's nor a name that is no run id is even opened.
    assert.deepEqual(fake.queried, [
      oldName,
      agentServiceName(OTHER, 1),
      agentServiceName(OLD, 4),
      agentServiceName(OLD, 5),
      agentServiceName(OLD, 6),
    ]);
    assert.deepEqual(fake.leaked(), []);
  });

  it("sweep - the run directory alone in the binary path is the run's mark too", async () => {
    const name = agentServiceName(OLD, 2);
    const binaryPath = `%SystemRoot%\\System32\\cmd.exe /d /q /s /c "cd /d "C:\\sumac\\${OLD}" && start node.exe"`;
    const fake = fakeControl([{ name, state: stopped, binaryPath }]);
    assert.deepEqual(await sweepServices(fake.control, CURRENT, CALL), [
      { name, run: OLD, outcome: "deleted" },
    ]);
    assert.deepEqual(fake.removed, [name]);
  });

  it("sweep - a running service with the marker is never removed", async () => {
    for (const state of [running, ServiceState.START_PENDING, ServiceState.STOP_PENDING]) {
      const name = agentServiceName(OLD, 1);
      const fake = fakeControl([{ name, state, binaryPath: agentPath(OLD) }]);
      assert.deepEqual(await sweepServices(fake.control, CURRENT, CALL), [
        { name, run: OLD, outcome: "running" },
      ]);
      assert.deepEqual(fake.removed, [], `state ${state}`);
    }
  });

  it("sweep - without a current run every run's stopped service goes", async () => {
    const fake = fakeControl([
      { name: agentServiceName(CURRENT, 0), state: stopped, binaryPath: agentPath(CURRENT) },
      { name: agentServiceName(OLD, 1), state: stopped, binaryPath: agentPath(OLD) },
    ]);
    const swept = await sweepServices(fake.control, undefined, CALL);
    assert.deepEqual(
      swept.map((s) => s.outcome),
      ["deleted", "deleted"],
    );
    assert.deepEqual(fake.removed, [agentServiceName(CURRENT, 0), agentServiceName(OLD, 1)]);
  });

  it("sweep - a service marked for deletion is reported so, one already gone not at all", async () => {
    const name = agentServiceName(OLD, 1);
    const marked = fakeControl([{ name, state: stopped, binaryPath: agentPath(OLD) }], "marked");
    assert.deepEqual(await sweepServices(marked.control, CURRENT, CALL), [
      { name, run: OLD, outcome: "marked" },
    ]);
    const absent = fakeControl([{ name, state: stopped, binaryPath: agentPath(OLD) }], "absent");
    assert.deepEqual(await sweepServices(absent.control, CURRENT, CALL), []);
    assert.deepEqual(absent.removed, [name]);
  });

  it("sweep - the handle is closed when the configuration cannot be read, and the error is the caller's", async () => {
    const denied = new ScmError("RQueryServiceConfigW", Win32Error.ERROR_ACCESS_DENIED);
    const name = agentServiceName(OLD, 1);
    const fake = fakeControl([
      { name, state: stopped, binaryPath: agentPath(OLD), configError: denied },
      { name: agentServiceName(OLD, 2), state: stopped, binaryPath: agentPath(OLD) },
    ]);
    await assert.rejects(sweepServices(fake.control, CURRENT, CALL), (e) => e === denied);
    assert.deepEqual(fake.queried, [name]);
    assert.deepEqual(fake.leaked(), []);
    assert.deepEqual(fake.removed, []);
  });

  // KNOWN BUG (reported, left failing on purpose): the kill service's binary path names its run
  // only in the firewall rule's name (`sumac run=<run> target=...`), which carriesMarker does not
  // look for, so a `sumac-<run>-<n>-kill` that a dying workstation left is "not-sumac" forever.
  it("sweep - a stopped kill service left by an earlier run is removed", async () => {
    const name = killServiceName(OLD, 2);
    const binaryPath = killServiceCommand(4242, ruleComment({ runId: OLD, targetId: "win-1", port: 62286 }));
    const fake = fakeControl([{ name, state: stopped, binaryPath }]);
    assert.deepEqual(await sweepServices(fake.control, CURRENT, CALL), [
      { name, run: OLD, outcome: "deleted" },
    ]);
    assert.deepEqual(fake.removed, [name]);
  });

  // KNOWN BUG (reported, left failing on purpose): a service deleted between the listing and its
  // open (another workstation's agent service lives only seconds) makes openService fail with
  // ERROR_SERVICE_DOES_NOT_EXIST, which ends the whole sweep: the old run's service after it stays.
  it("sweep - a service gone between the listing and its open is skipped, the rest swept", async () => {
    const old = agentServiceName(OLD, 1);
    const fake = fakeControl([
      { name: agentServiceName(OTHER, 1), state: running, binaryPath: agentPath(OTHER), gone: true },
      { name: old, state: stopped, binaryPath: agentPath(OLD) },
    ]);
    const swept = await sweepServices(fake.control, CURRENT, CALL);
    assert.deepEqual(swept, [{ name: old, run: OLD, outcome: "deleted" }]);
    assert.deepEqual(fake.removed, [old]);
  });

  it("sweep - describeSweep says what was swept and what was left, and nothing of the current run", () => {
    const swept: SweptService[] = [
      { name: "sumac-a-1", run: OLD, outcome: "deleted" },
      { name: "sumac-b-1", run: OLD, outcome: "marked" },
      { name: "sumac-c-1", run: OTHER, outcome: "running" },
      { name: "sumac-foo", run: undefined, outcome: "not-sumac" },
      { name: "sumac-d-1", run: CURRENT, outcome: "current-run" },
      { name: "sumac-e-1", run: undefined, outcome: "running" },
    ];
    assert.deepEqual(describeSweep(swept), [
      {
        level: "warn",
        line: `swept service sumac-a-1, left by run ${OLD} (a workstation that stopped during its agent's start): deleted`,
      },
      {
        level: "warn",
        line: `swept service sumac-b-1, left by run ${OLD} (a workstation that stopped during its agent's start): marked`,
      },
      {
        level: "warn",
        line: `service sumac-c-1 of run ${OTHER} is starting (another workstation's run?): left alone`,
      },
      {
        level: "info",
        line: "service sumac-foo is named like sumac's but its binary path is not a sumac agent's: left alone",
      },
      {
        level: "warn",
        line: "service sumac-e-1 of run ? is starting (another workstation's run?): left alone",
      },
    ]);
    assert.deepEqual(describeSweep([]), []);
  });
});
