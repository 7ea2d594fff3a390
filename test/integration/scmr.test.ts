/**
 * sumac's service control client end to end against the scm-peer container: SmbClient → IPC$ →
 * \PIPE\svcctl → RpcClient bound to svcctl → ScmClient. A service whose binary is a script
 * uploaded to ADMIN$ is created, started (RUNNING, and the script really ran), stopped, deleted
 * and then not found; creating a name twice is ERROR_SERVICE_EXISTS as a typed ScmError.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { RpcClient } from "../../actors/rpc/client.ts";
import { ScmClient, type ScmCallOptions } from "../../actors/scmr/client.ts";
import { SVCCTL_INTERFACE, ServiceState } from "../../actors/scmr/constants.ts";
import { ScmError, Win32Error } from "../../actors/scmr/win32-errors.ts";
import { SmbClient, type SmbPipe, type SmbTree } from "../../actors/smb/client/client.ts";
import { waitUntil } from "../support/container.ts";
import { containerSkipReason } from "../support/engine.ts";
import { scmClientSkipReason, startScmPeer, type ScmPeer } from "../support/scm-peer.ts";

/** Writes "pid marker" to the file named by $1, then sleeps until stopped. */
const PROBE = '#!/bin/sh\necho "$$ $2" > "$1"\nexec sleep 300\n';
const o: ScmCallOptions = { timeoutMs: 10_000 };

// Outside CI a missing engine or impacket (which the fixture's readiness probe uses) skips; in CI
// both helpers throw, so the file fails.
const skip = (await containerSkipReason()) ?? (await scmClientSkipReason());

describe("scmr - against scm-peer", { skip }, () => {
  let peer: ScmPeer;
  let smb: SmbClient;
  let ipc: SmbTree;
  let pipe: SmbPipe;
  let scm: ScmClient;

  before(async () => {
    peer = await startScmPeer();
    // scm-peer is impacket's SMB 2.0.2 server, which does not sign.
    smb = await SmbClient.connect({
      host: peer.host,
      port: peer.port,
      credentials: { user: peer.user, domain: peer.domain, password: peer.password },
      requireSigning: false,
      timeoutMs: 15_000,
    });
    const admin = await smb.treeConnect("ADMIN$", o);
    await admin.mkdirp("sumac", o);
    await admin.writeFile("sumac/probe.sh", Buffer.from(PROBE), o);
    ipc = await smb.treeConnect("IPC$", o);
    pipe = await ipc.openPipe("svcctl", o);
    const rpc = await RpcClient.bind(pipe, { abstractSyntax: SVCCTL_INTERFACE, timeoutMs: 10_000 });
    scm = await ScmClient.open(rpc, o);
  });

  after(async () => {
    await scm?.close(o).catch(() => {});
    await smb?.close({ timeoutMs: 5_000 }).catch(() => {});
    await peer?.stop();
  });

  it("scmr - creates, starts (RUNNING), stops, deletes a service, which is then gone", async () => {
    const h = await scm.createService(
      {
        name: "sumac-scmr-probe",
        displayName: "sumac scmr probe",
        binaryPath: "%SystemRoot%\\sumac\\probe.sh /tmp/scmr-probe.txt started-by-sumac",
      },
      o,
    );
    assert.equal((await scm.queryStatus(h, o)).currentState, ServiceState.STOPPED);
    await scm.start(h, o);
    const running = await scm.waitForState(h, ServiceState.RUNNING, { timeoutMs: 10_000, intervalMs: 100 });
    assert.equal(running.serviceType, 0x10);
    let pid = "";
    await waitUntil("the probe's marker file", async () => {
      const out = await peer.exec("cat /tmp/scmr-probe.txt");
      if (!out.stdout.includes("started-by-sumac")) throw new Error(out.stderr || "no marker yet");
      pid = out.stdout.trim().split(" ")[0] ?? "";
    });
    assert.match(pid, /^\d+$/);
    assert.equal((await peer.exec(`kill -0 ${pid}`)).exitCode, 0, "the service's program runs");

    await scm.stop(h, o);
    const stopped = await scm.waitForState(h, ServiceState.STOPPED, { timeoutMs: 10_000, intervalMs: 100 });
    assert.equal(stopped.currentState, ServiceState.STOPPED);
    assert.notEqual((await peer.exec(`kill -0 ${pid}`)).exitCode, 0, "the program is gone after the stop");

    await scm.delete(h, o);
    await scm.closeHandle(h, o);
    await assert.rejects(
      scm.openService("sumac-scmr-probe", o),
      (err: unknown) =>
        err instanceof ScmError &&
        err.win32Error === Win32Error.ERROR_SERVICE_DOES_NOT_EXIST &&
        err.win32ErrorName === "ERROR_SERVICE_DOES_NOT_EXIST",
    );
  });

  it("scmr - creating a name twice is ERROR_SERVICE_EXISTS as a typed ScmError", async () => {
    const service = {
      name: "sumac-scmr-twice",
      displayName: null,
      binaryPath: "C:\\Windows\\sumac\\probe.sh",
    };
    const h = await scm.createService(service, o);
    try {
      await assert.rejects(
        scm.createService(service, o),
        (err: unknown) =>
          err instanceof ScmError &&
          err.code === "SCM_ERROR" &&
          err.win32Error === Win32Error.ERROR_SERVICE_EXISTS &&
          err.win32ErrorName === "ERROR_SERVICE_EXISTS",
      );
    } finally {
      await scm.delete(h, o);
      await scm.closeHandle(h, o);
    }
    await assert.rejects(scm.openService(service.name, o), {
      win32ErrorName: "ERROR_SERVICE_DOES_NOT_EXIST",
    });
  });
});
