/**
 * ScmClient against a fake RPC binding that answers each opnum with a canned stub: the calls it
 * makes, the handles it passes on, typed ScmErrors for refused calls, the name checks done before
 * sending, and waitForState's polling and deadline.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ScmClient, ScmTimeoutError, type ScmCallOptions } from "../../../actors/scmr/client.ts";
import { ScmOpnum, ServiceState } from "../../../actors/scmr/constants.ts";
import {
  encodeCreateServiceResponse,
  encodeHandleResponse,
  encodeReturnOnlyResponse,
  encodeStatusResponse,
  type ServiceStatus,
} from "../../../actors/scmr/responses.ts";
import { ScmConfigError } from "../../../actors/scmr/service-names.ts";
import { ScmError, Win32Error } from "../../../actors/scmr/win32-errors.ts";
import { FAKE_SCM_HANDLE, FakeRpc } from "./fake-rpc.ts";

const SCM = FAKE_SCM_HANDLE;
const SVC = Buffer.alloc(20, 0x22);
const o: ScmCallOptions = { timeoutMs: 1_000 };

const statusOf = (currentState: number): ServiceStatus => ({
  serviceType: 0x10,
  currentState,
  controlsAccepted: 1,
  win32ExitCode: 0,
  serviceSpecificExitCode: 0,
  checkPoint: 0,
  waitHint: 0,
});

describe("scmr client", () => {
  it("scmr client - create, start, query, stop, delete and close pass the handles they got", async () => {
    const rpc = new FakeRpc();
    rpc.answers.set(ScmOpnum.RCreateServiceW, () =>
      encodeCreateServiceResponse({ tagId: null, handle: SVC, returnValue: 0 }),
    );
    rpc.answers.set(ScmOpnum.RStartServiceW, () => encodeReturnOnlyResponse({ returnValue: 0 }));
    rpc.answers.set(ScmOpnum.RQueryServiceStatus, () =>
      encodeStatusResponse({ status: statusOf(ServiceState.RUNNING), returnValue: 0 }),
    );
    rpc.answers.set(ScmOpnum.RControlService, () =>
      encodeStatusResponse({ status: statusOf(ServiceState.STOP_PENDING), returnValue: 0 }),
    );
    rpc.answers.set(ScmOpnum.RDeleteService, () => encodeReturnOnlyResponse({ returnValue: 0 }));
    rpc.answers.set(ScmOpnum.RCloseServiceHandle, () =>
      encodeHandleResponse({ handle: Buffer.alloc(20), returnValue: 0 }),
    );
    const scm = await ScmClient.open(rpc, o);
    assert.deepEqual(scm.scmHandle, SCM);
    const h = await scm.createService(
      { name: "sumac-agent", displayName: "sumac agent", binaryPath: "a.exe" },
      o,
    );
    assert.deepEqual(h, SVC);
    await scm.start(h, o);
    assert.equal((await scm.queryStatus(h, o)).currentState, ServiceState.RUNNING);
    assert.equal((await scm.stop(h, o)).currentState, ServiceState.STOP_PENDING);
    await scm.delete(h, o);
    await scm.closeHandle(h, o);
    await scm.close(o);
    assert.deepEqual(
      rpc.calls.map((c) => c.opnum),
      [15, 12, 19, 6, 1, 2, 0, 0],
    );
    assert.deepEqual(rpc.calls[1]?.stub.subarray(0, 20), SCM, "RCreateServiceW names the SCM's handle");
    for (const c of rpc.calls.slice(2, 7)) assert.deepEqual(c.stub.subarray(0, 20), SVC);
    assert.deepEqual(rpc.calls[7]?.stub, SCM, "close closes the SCM's handle");
  });

  it("scmr client - ERROR_SERVICE_EXISTS on create is a typed ScmError with its name", async () => {
    const rpc = new FakeRpc();
    rpc.answers.set(ScmOpnum.RCreateServiceW, () =>
      encodeCreateServiceResponse({
        tagId: null,
        handle: Buffer.alloc(20),
        returnValue: Win32Error.ERROR_SERVICE_EXISTS,
      }),
    );
    const scm = await ScmClient.open(rpc, o);
    await assert.rejects(
      scm.createService({ name: "sumac-agent", displayName: null, binaryPath: "a.exe" }, o),
      (err: unknown) =>
        err instanceof ScmError &&
        err.code === "SCM_ERROR" &&
        err.win32Error === 1073 &&
        err.win32ErrorName === "ERROR_SERVICE_EXISTS",
    );
  });

  it("scmr client - ERROR_ACCESS_DENIED on open is a typed ScmError with its name", async () => {
    const rpc = new FakeRpc();
    rpc.answers.set(ScmOpnum.ROpenSCManagerW, () =>
      encodeHandleResponse({ handle: Buffer.alloc(20), returnValue: Win32Error.ERROR_ACCESS_DENIED }),
    );
    await assert.rejects(
      ScmClient.open(rpc, o),
      (err: unknown) =>
        err instanceof ScmError && err.win32Error === 5 && err.win32ErrorName === "ERROR_ACCESS_DENIED",
    );
  });

  it("scmr client - bad service names are refused before anything is sent", async () => {
    const rpc = new FakeRpc();
    const scm = await ScmClient.open(rpc, o);
    const sent = rpc.calls.length;
    for (const name of ["", "a/b", "a\\b", "a\u0000b", "a\nb", "a\u007fb", "x".repeat(257)]) {
      await assert.rejects(scm.openService(name, o), ScmConfigError, JSON.stringify(name));
      await assert.rejects(
        scm.createService({ name, displayName: null, binaryPath: "a.exe" }, o),
        (err: unknown) => err instanceof ScmConfigError && err.code === "CONFIG_INVALID",
      );
    }
    await assert.rejects(
      scm.createService({ name: "ok", displayName: null, binaryPath: "a\u0000.exe" }, o),
      ScmConfigError,
    );
    assert.equal(rpc.calls.length, sent);
    rpc.answers.set(ScmOpnum.ROpenServiceW, () => encodeHandleResponse({ handle: SVC, returnValue: 0 }));
    assert.deepEqual(await scm.openService("x".repeat(256), o), SVC);
  });

  it("scmr client - waitForState polls until the state is reached", async () => {
    const rpc = new FakeRpc();
    const states = [ServiceState.START_PENDING, ServiceState.START_PENDING, ServiceState.RUNNING];
    rpc.answers.set(ScmOpnum.RQueryServiceStatus, () =>
      encodeStatusResponse({ status: statusOf(states.shift() ?? ServiceState.RUNNING), returnValue: 0 }),
    );
    const scm = await ScmClient.open(rpc, o);
    const s = await scm.waitForState(SVC, ServiceState.RUNNING, { timeoutMs: 2_000, intervalMs: 5 });
    assert.equal(s.currentState, ServiceState.RUNNING);
    assert.equal(rpc.calls.filter((c) => c.opnum === ScmOpnum.RQueryServiceStatus).length, 3);
  });

  it("scmr client - waitForState gives ScmTimeoutError naming the last state seen", async () => {
    const rpc = new FakeRpc();
    rpc.answers.set(ScmOpnum.RQueryServiceStatus, () =>
      encodeStatusResponse({ status: statusOf(ServiceState.START_PENDING), returnValue: 0 }),
    );
    const scm = await ScmClient.open(rpc, o);
    const t0 = performance.now();
    await assert.rejects(
      scm.waitForState(SVC, ServiceState.RUNNING, { timeoutMs: 100, intervalMs: 10 }),
      (err: unknown) =>
        err instanceof ScmTimeoutError && err.code === "TIMEOUT" && /last seen 2/.test(err.message),
    );
    assert.ok(performance.now() - t0 < 1_000);
  });

  it("scmr client - waitForState stops when its signal aborts", async () => {
    const rpc = new FakeRpc();
    rpc.answers.set(ScmOpnum.RQueryServiceStatus, () =>
      encodeStatusResponse({ status: statusOf(ServiceState.STOPPED), returnValue: 0 }),
    );
    const scm = await ScmClient.open(rpc, o);
    await assert.rejects(
      scm.waitForState(SVC, ServiceState.RUNNING, {
        timeoutMs: 10_000,
        intervalMs: 10,
        signal: AbortSignal.timeout(50),
      }),
      // AbortSignal.timeout aborts with a DOMException named TimeoutError: the signal's reason, not
      // the client's ScmTimeoutError (whose deadline is 10 s away).
      (err: unknown) =>
        err instanceof Error && err.name === "TimeoutError" && !(err instanceof ScmTimeoutError),
    );
  });
});
