import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { containerSkipReason } from "../support/engine.ts";
import { waitUntil } from "../support/container.ts";
import {
  runScmClient,
  scmClientSkipReason,
  ServiceState,
  startScmPeer,
  type ScmClientResult,
  type ScmPeer,
  type ScmStep,
} from "../support/scm-peer.ts";

// Win32 error codes (MS-ERREF 2.2) and NTSTATUS values (MS-ERREF 2.3) asserted below.
const ERROR_INVALID_HANDLE = 6;
const ERROR_SERVICE_ALREADY_RUNNING = 1056;
const ERROR_SERVICE_DOES_NOT_EXIST = 1060;
const ERROR_SERVICE_NOT_ACTIVE = 1062;
const ERROR_SERVICE_SPECIFIC_ERROR = 1066;
const ERROR_SERVICE_MARKED_FOR_DELETE = 1072;
const ERROR_SERVICE_EXISTS = 1073;
const ERROR_SERVICE_NEVER_STARTED = 1077;
const STATUS_LOGON_FAILURE = 0xc000006d;
const STATUS_ACCESS_DENIED = 0xc0000022;
const SERVICE_ACCEPT_STOP = 1;

/** Starts a sleeping child, records "pid child-pid marker" in the file named by $1, and waits. */
const PROBE = '#!/bin/sh\nsleep 300 &\necho "$$ $! $2" > "$1"\nwait\n';
/** Exits at once with the status given as $1. */
const EXITER = "#!/bin/sh\nexit $1\n";

const b64 = (s: string): string => Buffer.from(s).toString("base64");

/** Runs a client script and checks that it logged in and ran every step without breaking. */
async function scm(peer: ScmPeer, steps: ScmStep[]): Promise<ScmClientResult> {
  const r = await runScmClient(peer, steps, { timeoutMs: 30_000 });
  assert.equal(r.login.ok, true, `login: ${JSON.stringify(r.login)}`);
  assert.equal(r.error, undefined, `client error: ${r.error}`);
  assert.equal(r.steps.length, steps.length, `steps: ${JSON.stringify(r.steps)}`);
  return r;
}

/** The error codes of a run's steps, in order. */
const codes = (r: ScmClientResult): (number | undefined)[] => r.steps.map((s) => s.error_code);

const skip = (await containerSkipReason()) ?? (await scmClientSkipReason());
describe("scm-peer - fixture", { skip }, () => {
  let peer: ScmPeer;
  let probe: { pid: number; child: number };
  before(async () => {
    peer = await startScmPeer();
  });
  after(async () => {
    await peer?.stop();
  });

  it("scm-peer - answers an authenticated SMB 2.0.2 session and a svcctl bind", async () => {
    const r = await scm(peer, [
      { op: "open_scm", as: "scm" },
      { op: "close", handle: "scm" },
    ]);
    assert.deepEqual(r.login, { ok: true, dialect: 0x0202 });
    assert.deepEqual(codes(r), [0, 0]);
    assert.match(peer.address, /^\d+\.\d+\.\d+\.\d+$/);
    const left = await peer.exec("ls -A /run/scm-peer");
    assert.equal(left.exitCode, 0, left.stderr);
    assert.equal(left.stdout, "", "the credentials file is gone once the server has read it");
  });

  it("scm-peer - a started service really runs the uploaded program inside the container", async () => {
    const r = await scm(peer, [
      { op: "upload", path: "sumac\\probe.sh", content_b64: b64(PROBE) },
      { op: "open_scm", as: "scm" },
      {
        op: "create",
        scm: "scm",
        name: "sumac-probe",
        binary_path: "%SystemRoot%\\sumac\\probe.sh /tmp/probe.txt started-by-scm",
        as: "svc",
      },
      { op: "query", handle: "svc" },
      { op: "start", handle: "svc" },
      { op: "query", handle: "svc" },
    ]);
    assert.deepEqual(codes(r), [0, 0, 0, 0, 0, 0]);
    assert.equal(r.steps[3]?.status?.state, ServiceState.STOPPED);
    assert.equal(r.steps[3]?.status?.win32_exit_code, ERROR_SERVICE_NEVER_STARTED);
    assert.equal(r.steps[5]?.status?.state, ServiceState.RUNNING);
    assert.equal(r.steps[5]?.status?.controls_accepted, SERVICE_ACCEPT_STOP);

    const stat = await peer.exec(`stat -c %s ${peer.adminDir}/sumac/probe.sh`);
    assert.equal(Number(stat.stdout.trim()), PROBE.length, "the upload landed under ADMIN$");
    let line = "";
    await waitUntil("the probe's marker file", async () => {
      const out = await peer.exec("cat /tmp/probe.txt");
      if (out.exitCode !== 0 || !out.stdout.includes("started-by-scm")) throw new Error(out.stderr);
      line = out.stdout.trim();
    });
    const [pid, child, marker] = line.split(" ");
    assert.equal(marker, "started-by-scm");
    probe = { pid: Number(pid), child: Number(child) };
    const ps = await peer.exec(`ps -o pgid=,args= -p ${probe.pid},${probe.child}`);
    assert.equal(ps.exitCode, 0, "both processes are alive");
    const rows = ps.stdout.trim().split("\n");
    assert.equal(rows.length, 2);
    assert.ok(
      rows.every((row) => row.trim().startsWith(`${probe.pid} `)),
      `one process group: ${ps.stdout}`,
    );
    assert.match(ps.stdout, /probe\.sh \/tmp\/probe\.txt started-by-scm/);
  });

  it("scm-peer - stopping the service kills its process group and query says STOPPED", async () => {
    assert.ok(probe, "needs the running probe of the previous test");
    const r = await scm(peer, [
      { op: "open_scm", as: "scm" },
      { op: "open", scm: "scm", name: "SUMAC-PROBE", as: "svc" },
      { op: "start", handle: "svc" },
      { op: "stop", handle: "svc" },
      { op: "query", handle: "svc" },
      { op: "stop", handle: "svc" },
    ]);
    assert.deepEqual(codes(r), [0, 0, ERROR_SERVICE_ALREADY_RUNNING, 0, 0, ERROR_SERVICE_NOT_ACTIVE]);
    assert.equal(r.steps[3]?.status?.state, ServiceState.STOPPED);
    assert.equal(r.steps[4]?.status?.state, ServiceState.STOPPED);
    assert.equal(r.steps[4]?.status?.win32_exit_code, 0);
    assert.equal(r.steps[5]?.status?.state, ServiceState.STOPPED, "the status comes with the error");
    const ps = await peer.exec(`ps -o pid= -p ${probe.pid},${probe.child}`);
    assert.equal(ps.stdout.trim(), "", `no process left: ${ps.stdout}`);
  });

  it("scm-peer - a deleted service cannot be opened again (1060)", async () => {
    const r = await scm(peer, [
      { op: "open_scm", as: "scm" },
      { op: "open", scm: "scm", name: "sumac-probe", as: "svc" },
      { op: "delete", handle: "svc" },
      { op: "close", handle: "svc" },
      { op: "open", scm: "scm", name: "sumac-probe", as: "again" },
    ]);
    assert.deepEqual(codes(r), [0, 0, 0, 0, ERROR_SERVICE_DOES_NOT_EXIST]);
  });

  it("scm-peer - creating the same service name twice gives 1073", async () => {
    const create = (as: string): ScmStep => ({
      op: "create",
      scm: "scm",
      name: "sumac-twice",
      binary_path: "C:\\Windows\\sumac\\probe.sh",
      as,
    });
    const r = await scm(peer, [
      { op: "open_scm", as: "scm" },
      create("first"),
      create("second"),
      { op: "delete", handle: "first" },
      { op: "close", handle: "first" },
    ]);
    assert.deepEqual(codes(r), [0, 0, ERROR_SERVICE_EXISTS, 0, 0]);
  });

  it("scm-peer - a service deleted while a handle is open is marked for delete (1072)", async () => {
    const r = await scm(peer, [
      { op: "open_scm", as: "scm" },
      {
        op: "create",
        scm: "scm",
        name: "sumac-marked",
        binary_path: "C:\\Windows\\sumac\\probe.sh",
        as: "svc",
      },
      { op: "delete", handle: "svc" },
      { op: "delete", handle: "svc" },
      { op: "start", handle: "svc" },
      { op: "create", scm: "scm", name: "sumac-marked", binary_path: "C:\\Windows\\x.exe", as: "other" },
      { op: "close", handle: "svc" },
      { op: "open", scm: "scm", name: "sumac-marked", as: "gone" },
    ]);
    const marked = ERROR_SERVICE_MARKED_FOR_DELETE;
    assert.deepEqual(codes(r), [0, 0, 0, marked, marked, marked, 0, ERROR_SERVICE_DOES_NOT_EXIST]);
  });

  it("scm-peer - a program that exits by itself leaves the service STOPPED with its exit code", async () => {
    const r = await scm(peer, [
      { op: "upload", path: "sumac\\exiter.sh", content_b64: b64(EXITER) },
      { op: "open_scm", as: "scm" },
      {
        op: "create",
        scm: "scm",
        name: "sumac-exiter",
        binary_path: "C:\\Windows\\sumac\\exiter.sh 3",
        as: "svc",
      },
      { op: "start", handle: "svc" },
      { op: "wait", handle: "svc", state: ServiceState.STOPPED, timeout_ms: 10_000 },
      { op: "delete", handle: "svc" },
      { op: "close", handle: "svc" },
    ]);
    assert.deepEqual(codes(r), [0, 0, 0, 0, 0, 0, 0]);
    const status = r.steps[4]?.status;
    assert.equal(r.steps[4]?.timed_out, undefined);
    assert.equal(status?.state, ServiceState.STOPPED);
    assert.equal(status?.win32_exit_code, ERROR_SERVICE_SPECIFIC_ERROR);
    assert.equal(status?.service_exit_code, 3);
  });

  it("scm-peer - a wrong password is refused, and that session reaches no share", async () => {
    const r = await runScmClient(peer, [{ op: "open_scm", as: "scm" }], {
      password: `${peer.password}x`,
      shareAfterFailedLogin: true,
      timeoutMs: 30_000,
    });
    assert.deepEqual(r.login, {
      ok: false,
      status: STATUS_LOGON_FAILURE,
      status_name: "STATUS_LOGON_FAILURE",
    });
    assert.deepEqual(r.steps, []);
    assert.deepEqual(r.share_after_failed_login, { ok: false, status: STATUS_ACCESS_DENIED });
  });

  it("scm-peer - an unknown or closed handle gives ERROR_INVALID_HANDLE (6)", async () => {
    const r = await scm(peer, [
      { op: "handle", as: "bogus", hex: "00000000" + "5a".repeat(16) },
      { op: "query", handle: "bogus" },
      { op: "open_scm", as: "scm" },
      { op: "start", handle: "scm" },
      { op: "close", handle: "scm" },
      { op: "close", handle: "scm" },
    ]);
    assert.deepEqual(codes(r), [0, ERROR_INVALID_HANDLE, 0, ERROR_INVALID_HANDLE, 0, ERROR_INVALID_HANDLE]);
  });

  it("scm-peer - every RPC call is logged to stdout", async () => {
    const logs = await peer.logs(10_000);
    for (const call of [
      "ROpenSCManagerW(",
      "RCreateServiceW(name='sumac-probe'",
      "RStartServiceW(name='sumac-probe'",
      "RQueryServiceStatus(name='sumac-probe'",
      "RControlService(control=1, name='sumac-probe'",
      "RDeleteService(name='sumac-probe'",
      "RCloseServiceHandle(",
      "-> 1073 ERROR_SERVICE_EXISTS",
      "-> 6 ERROR_INVALID_HANDLE",
    ]) {
      assert.ok(logs.includes(call), `the log has ${call}`);
    }
    assert.ok(!logs.includes(peer.password), "the password is not logged");
    assert.doesNotMatch(logs, /^\S+ \S+ \S+ [^\s:]*::[^\s:]*:/m, "no NTLM response is logged");
  });
});
