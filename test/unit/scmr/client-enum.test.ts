/**
 * ScmClient.enumServices against a fake svcctl binding: the ERROR_MORE_DATA retry with the size
 * the server asked for, the resume index followed over 256 KiB calls, a server without resume
 * indices, the caps (4 MiB asked for, the number of calls, no progress), typed errors, and the
 * access rights open and openService ask for.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ScmClient, type ScmCallOptions } from "../../../actors/scmr/client.ts";
import {
  EnumServiceState,
  MAX_ENUM_BUFFER_SIZE,
  MAX_ENUM_CALLS,
  ScManagerAccess,
  ScmOpnum,
  ServiceAccess,
  ServiceType,
} from "../../../actors/scmr/constants.ts";
import {
  encodeEnumServicesResponse,
  ENUM_SERVICE_STATUSW_SIZE,
  type EnumServiceStatus,
  type EnumServicesResponse,
} from "../../../actors/scmr/enum-services.ts";
import { encodeHandleResponse } from "../../../actors/scmr/responses.ts";
import { ScmConfigError } from "../../../actors/scmr/service-names.ts";
import { ScmError, Win32Error } from "../../../actors/scmr/win32-errors.ts";
import { NdrReader } from "../../../actors/rpc/ndr.ts";
import { FAKE_SCM_HANDLE, FakeRpc } from "./fake-rpc.ts";

const SVC = Buffer.alloc(20, 0x22);
const o: ScmCallOptions = { timeoutMs: 1_000 };
const { ERROR_MORE_DATA, ERROR_ACCESS_DENIED } = Win32Error;

interface EnumRequest {
  handle: Buffer;
  serviceType: number;
  serviceState: number;
  bufferSize: number;
  resumeIndex: number | null;
}

function parseEnumRequest(stub: Buffer): EnumRequest {
  const r = new NdrReader(stub, "REnumServicesStatusW request");
  const handle = r.contextHandle();
  const serviceType = r.u32();
  const serviceState = r.u32();
  const bufferSize = r.u32();
  const resumeIndex = r.uniqueU32() ?? null;
  assert.equal(r.remaining, 0);
  return { handle, serviceType, serviceState, bufferSize, resumeIndex };
}

const service = (i: number, nameLength = 8, displayLength = 12): EnumServiceStatus => ({
  name: `s${i}`.padEnd(nameLength, "n"),
  displayName: `S ${i}`.padEnd(displayLength, "d"),
  status: {
    serviceType: 0x10,
    currentState: 1 + (i % 7),
    controlsAccepted: 0,
    win32ExitCode: 0,
    serviceSpecificExitCode: 0,
    checkPoint: 0,
    waitHint: 0,
  },
});

const recordBytes = (s: EnumServiceStatus): number =>
  ENUM_SERVICE_STATUSW_SIZE + (s.name.length + 1) * 2 + (s.displayName.length + 1) * 2;

/**
 * Answers REnumServicesStatusW as Windows does: from the resume index, as many records as fit in
 * cbBufSize; ERROR_MORE_DATA with the bytes the rest need and the index to go on from when not
 * all fit. Refuses a cbBufSize over the IDL's bound as Windows' RPC stub would (here by throwing).
 */
function windowsLikeEnum(services: EnumServiceStatus[], requests: EnumRequest[] = []) {
  return (stub: Buffer): Buffer => {
    const req = parseEnumRequest(stub);
    requests.push(req);
    assert.ok(req.bufferSize <= MAX_ENUM_BUFFER_SIZE, `cbBufSize ${req.bufferSize} over the IDL's range`);
    const from = req.resumeIndex ?? 0;
    let used = 0;
    let to = from;
    while (to < services.length && used + recordBytes(services[to] as EnumServiceStatus) <= req.bufferSize) {
      used += recordBytes(services[to] as EnumServiceStatus);
      to++;
    }
    const rest = services.slice(to).reduce((n, s) => n + recordBytes(s), 0);
    return encodeEnumServicesResponse({
      services: services.slice(from, to),
      bufferSize: req.bufferSize,
      bytesNeeded: rest,
      resumeIndex: req.resumeIndex === null ? null : to < services.length ? to : 0,
      returnValue: to < services.length ? ERROR_MORE_DATA : 0,
    });
  };
}

/** An answer to any REnumServicesStatusW call, its lpBuffer as large as the call asked. */
const answer = (r: Omit<EnumServicesResponse, "bufferSize">) => (stub: Buffer) =>
  encodeEnumServicesResponse({ ...r, bufferSize: parseEnumRequest(stub).bufferSize });

const isMalformed = (pattern: RegExp) => (err: unknown) =>
  err instanceof Error && (err as { code?: string }).code === "MALFORMED_PACKET" && pattern.test(err.message);

describe("scmr client enumServices", () => {
  it("scmr client enumServices - asks with 0, then with the size the server asked for, and lists every service", async () => {
    const rpc = new FakeRpc();
    const services = Array.from({ length: 5 }, (_, i) => service(i));
    const requests: EnumRequest[] = [];
    rpc.answers.set(ScmOpnum.REnumServicesStatusW, windowsLikeEnum(services, requests));
    const scm = await ScmClient.open(rpc, o);
    assert.deepEqual(await scm.enumServices({}, o), services);
    const needed = services.reduce((n, s) => n + recordBytes(s), 0);
    assert.deepEqual(
      requests.map((r) => [r.bufferSize, r.resumeIndex]),
      [
        [0, 0],
        [needed, 0],
      ],
    );
    for (const r of requests) {
      assert.deepEqual(r.handle, FAKE_SCM_HANDLE);
      assert.equal(r.serviceType, ServiceType.WIN32);
      assert.equal(r.serviceState, EnumServiceState.ALL);
    }
  });

  it("scmr client enumServices - over 256 KiB: calls of 256 KiB following the resume index, nothing twice", async () => {
    const rpc = new FakeRpc();
    const services = Array.from({ length: 1000 }, (_, i) => service(i, 100, 200));
    const requests: EnumRequest[] = [];
    rpc.answers.set(ScmOpnum.REnumServicesStatusW, windowsLikeEnum(services, requests));
    const scm = await ScmClient.open(rpc, o);
    const listed = await scm.enumServices(
      { type: ServiceType.WIN32_OWN_PROCESS, state: EnumServiceState.ACTIVE },
      o,
    );
    assert.equal(listed.length, 1000);
    assert.deepEqual(listed, services);
    assert.deepEqual(
      requests.map((r) => r.bufferSize),
      [0, MAX_ENUM_BUFFER_SIZE, MAX_ENUM_BUFFER_SIZE, MAX_ENUM_BUFFER_SIZE],
    );
    const perCall = Math.floor(MAX_ENUM_BUFFER_SIZE / recordBytes(service(0, 100, 200)));
    assert.deepEqual(
      requests.map((r) => r.resumeIndex),
      [0, 0, perCall, 2 * perCall],
    );
    assert.ok(requests.every((r) => r.serviceType === 0x10 && r.serviceState === 1));
  });

  it("scmr client enumServices - a server without resume indices is asked again from the start", async () => {
    const rpc = new FakeRpc();
    const services = Array.from({ length: 3 }, (_, i) => service(i));
    const requests: EnumRequest[] = [];
    rpc.answers.set(ScmOpnum.REnumServicesStatusW, (stub) => {
      requests.push(parseEnumRequest(stub));
      // Nothing to 0 bytes, one service to 200 (a partial answer with nothing to resume from), then all.
      const round = requests.length;
      return answer({
        services: round === 1 ? [] : round === 2 ? services.slice(0, 1) : services,
        bytesNeeded: round === 1 ? 200 : round === 2 ? 2_000 : 0,
        resumeIndex: null,
        returnValue: round < 3 ? ERROR_MORE_DATA : 0,
      })(stub);
    });
    const scm = await ScmClient.open(rpc, o);
    assert.deepEqual(await scm.enumServices({}, o), services, "the partial answer is not kept twice");
    assert.deepEqual(
      requests.map((r) => [r.bufferSize, r.resumeIndex]),
      [
        [0, 0],
        [200, 0],
        [2_000, 0],
      ],
    );
  });

  it("scmr client enumServices - pcbBytesNeeded over 4 MiB is MALFORMED_PACKET after one call", async () => {
    const rpc = new FakeRpc();
    rpc.answers.set(
      ScmOpnum.REnumServicesStatusW,
      answer({
        services: [],
        bytesNeeded: 4 * 1024 * 1024 + 1,
        resumeIndex: 0,
        returnValue: ERROR_MORE_DATA,
      }),
    );
    const scm = await ScmClient.open(rpc, o);
    await assert.rejects(scm.enumServices({}, o), isMalformed(/over 4 MiB/));
    assert.equal(rpc.callsOf(ScmOpnum.REnumServicesStatusW).length, 1);
  });

  it("scmr client enumServices - 4 MiB asked for is followed 256 KiB at a time", async () => {
    const rpc = new FakeRpc();
    const requests: EnumRequest[] = [];
    let next = 0;
    rpc.answers.set(ScmOpnum.REnumServicesStatusW, (stub) => {
      requests.push(parseEnumRequest(stub));
      const last = requests.length === 3;
      return answer({
        services: requests.length === 1 ? [] : [service(next++)],
        bytesNeeded: last ? 0 : 4 * 1024 * 1024,
        resumeIndex: next,
        returnValue: last ? 0 : ERROR_MORE_DATA,
      })(stub);
    });
    const scm = await ScmClient.open(rpc, o);
    assert.deepEqual(await scm.enumServices({}, o), [service(0), service(1)]);
    assert.deepEqual(
      requests.map((r) => r.bufferSize),
      [0, MAX_ENUM_BUFFER_SIZE, MAX_ENUM_BUFFER_SIZE],
    );
  });

  it("scmr client enumServices - a server that never stops saying ERROR_MORE_DATA is cut at the cap of calls", async () => {
    const rpc = new FakeRpc();
    let next = 0;
    rpc.answers.set(ScmOpnum.REnumServicesStatusW, (stub) => {
      const first = parseEnumRequest(stub).bufferSize === 0;
      return answer({
        services: first ? [] : [service(next++)],
        bytesNeeded: 100,
        resumeIndex: next,
        returnValue: ERROR_MORE_DATA,
      })(stub);
    });
    const scm = await ScmClient.open(rpc, o);
    await assert.rejects(scm.enumServices({}, o), isMalformed(/still ERROR_MORE_DATA after 20 calls/));
    assert.equal(rpc.callsOf(ScmOpnum.REnumServicesStatusW).length, MAX_ENUM_CALLS);
  });

  it("scmr client enumServices - ERROR_MORE_DATA with nothing returned and no larger size asked is refused", async () => {
    const rpc = new FakeRpc();
    rpc.answers.set(
      ScmOpnum.REnumServicesStatusW,
      answer({ services: [], bytesNeeded: 100, resumeIndex: 0, returnValue: ERROR_MORE_DATA }),
    );
    const scm = await ScmClient.open(rpc, o);
    await assert.rejects(scm.enumServices({}, o), isMalformed(/no service in 100 bytes/));
    assert.equal(rpc.callsOf(ScmOpnum.REnumServicesStatusW).length, 2);
  });

  it("scmr client enumServices - an lpBuffer larger than cbBufSize is refused", async () => {
    const rpc = new FakeRpc();
    rpc.answers.set(ScmOpnum.REnumServicesStatusW, () =>
      encodeEnumServicesResponse({
        services: [],
        bufferSize: 8,
        bytesNeeded: 0,
        resumeIndex: 0,
        returnValue: 0,
      }),
    );
    const scm = await ScmClient.open(rpc, o);
    await assert.rejects(scm.enumServices({}, o), isMalformed(/over the cap of 0/));
  });

  it("scmr client enumServices - other errors, first call or later, are ScmErrors with their names", async () => {
    const rpc = new FakeRpc();
    rpc.answers.set(
      ScmOpnum.REnumServicesStatusW,
      answer({ services: [], bytesNeeded: 0, resumeIndex: 0, returnValue: ERROR_ACCESS_DENIED }),
    );
    const scm = await ScmClient.open(rpc, o);
    const accessDenied = (err: unknown) =>
      err instanceof ScmError &&
      err.code === "SCM_ERROR" &&
      err.win32Error === 5 &&
      err.win32ErrorName === "ERROR_ACCESS_DENIED" &&
      err.message.includes("REnumServicesStatusW");
    await assert.rejects(scm.enumServices({}, o), accessDenied);
    let calls = 0;
    rpc.answers.set(ScmOpnum.REnumServicesStatusW, (stub) =>
      answer({
        services: [],
        bytesNeeded: 100,
        resumeIndex: 0,
        returnValue: ++calls === 1 ? ERROR_MORE_DATA : ERROR_ACCESS_DENIED,
      })(stub),
    );
    await assert.rejects(scm.enumServices({}, o), accessDenied);
    assert.equal(calls, 2);
  });

  it("scmr client enumServices - a bad filter is refused before anything is sent", async () => {
    const rpc = new FakeRpc();
    const scm = await ScmClient.open(rpc, o);
    for (const filter of [
      { type: 0 },
      { type: -1 },
      { type: 2 ** 32 },
      { type: 1.5 },
      { state: 0 },
      { state: 4 },
    ]) {
      await assert.rejects(scm.enumServices(filter, o), ScmConfigError, JSON.stringify(filter));
    }
    assert.equal(rpc.callsOf(ScmOpnum.REnumServicesStatusW).length, 0);
  });

  it("scmr client enumServices - open asks for SC_MANAGER_ENUMERATE_SERVICE, openService for SERVICE_QUERY_CONFIG", async () => {
    const rpc = new FakeRpc();
    rpc.answers.set(ScmOpnum.ROpenServiceW, () => encodeHandleResponse({ handle: SVC, returnValue: 0 }));
    const scm = await ScmClient.open(rpc, o);
    await scm.openService("sumac-x", o);
    const access = (stub: Buffer | undefined): number => stub?.readUInt32LE(stub.length - 4) ?? -1;
    const scmAccess = access(rpc.callsOf(ScmOpnum.ROpenSCManagerW)[0]?.stub);
    assert.equal(scmAccess & ScManagerAccess.ENUMERATE_SERVICE, ScManagerAccess.ENUMERATE_SERVICE);
    assert.equal(scmAccess & ScManagerAccess.CREATE_SERVICE, ScManagerAccess.CREATE_SERVICE);
    const serviceAccess = access(rpc.callsOf(ScmOpnum.ROpenServiceW)[0]?.stub);
    assert.equal(serviceAccess & ServiceAccess.QUERY_CONFIG, ServiceAccess.QUERY_CONFIG);
    assert.equal(serviceAccess & ServiceAccess.DELETE, ServiceAccess.DELETE);
  });
});
