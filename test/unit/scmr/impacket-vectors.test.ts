/**
 * The request stubs against impacket's (test/fixtures/scmr/requests.json, printed by
 * test/fixtures/scmr/capture.py with fixed arguments, handles and referent ids), and the
 * REnumServicesStatusW and RQueryServiceConfigW response stubs both ways: sumac decodes impacket's
 * and encodes the same bytes. impacket fills alignment gaps with marker bytes (0xbf, 0xab and
 * others) where sumac writes zeros, as C706 14.2.2 leaves their content unspecified; every other
 * byte must be equal.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { ScmOpnum, SERVICE_CONTROL_STOP } from "../../../actors/scmr/constants.ts";
import {
  encodeControlService,
  encodeCreateService,
  encodeEnumServicesStatus,
  encodeHandleOnly,
  encodeOpenSCManager,
  encodeOpenService,
  encodeQueryServiceConfig,
  encodeStartService,
} from "../../../actors/scmr/requests.ts";
import {
  decodeEnumServicesResponse,
  encodeEnumServicesResponse,
  type EnumServicesResponse,
} from "../../../actors/scmr/enum-services.ts";
import type { ServiceStatus } from "../../../actors/scmr/responses.ts";
import {
  decodeQueryServiceConfigResponse,
  encodeQueryServiceConfigResponse,
  type ServiceConfig,
} from "../../../actors/scmr/service-config.ts";

interface Vector {
  opnum: number;
  stub: string;
  handle?: string;
  scmHandle?: string;
  name?: string;
  displayName?: string;
  binaryPath?: string;
  machineName?: string | null;
  databaseName?: string | null;
  access?: number;
  control?: number;
  serviceType?: number;
  serviceState?: number;
  bufferSize?: number;
  resumeIndex?: number | null;
}

interface ResponseVectors {
  enumServicesStatus: {
    services: { name: string; displayName: string; status: number[] }[];
    bufferSize: number;
    bytesNeeded: number;
    resumeIndex: number | null;
    returnValue: number;
    stub: string;
  };
  queryServiceConfig: { config: ServiceConfig; bytesNeeded: number; returnValue: number; stub: string };
  queryServiceConfigInsufficient: { bytesNeeded: number; returnValue: number; stub: string };
}

const vectors = JSON.parse(
  readFileSync(new URL("../../fixtures/scmr/requests.json", import.meta.url), "utf8"),
) as Record<string, Vector>;

const responses = (vectors as unknown as { responses: ResponseVectors }).responses;

function vector(name: string): Vector {
  const v = vectors[name];
  assert.ok(v, `requests.json has ${name}`);
  return v;
}

/** Equal but for alignment gaps: runs of under 4 bytes ending on a multiple of 4, zero in ours. */
function assertSameStub(ours: Buffer, theirs: Buffer): void {
  assert.equal(ours.length, theirs.length, "stub lengths");
  let i = 0;
  while (i < ours.length) {
    if (ours[i] === theirs[i]) {
      i++;
      continue;
    }
    let end = i;
    while (end < ours.length && ours[end] !== theirs[end]) end++;
    const gap = ours.subarray(i, end);
    assert.ok(
      end - i < 4 && end % 4 === 0 && gap.every((b) => b === 0),
      `bytes ${i}..${end} differ outside an alignment gap: ours ${gap.toString("hex")}, impacket ${theirs.subarray(i, end).toString("hex")}`,
    );
    i = end;
  }
}

const h = (s: string | undefined): Buffer => Buffer.from(s ?? "", "hex");

/** A SERVICE_STATUS from its seven DWORDs in wire order, as capture.py lists them. */
function statusOf(dwords: number[]): ServiceStatus {
  const [
    serviceType,
    currentState,
    controlsAccepted,
    win32ExitCode,
    serviceSpecificExitCode,
    checkPoint,
    waitHint,
  ] = dwords;
  assert.ok(waitHint !== undefined && dwords.length === 7, "seven DWORDs");
  return {
    serviceType: serviceType ?? -1,
    currentState: currentState ?? -1,
    controlsAccepted: controlsAccepted ?? -1,
    win32ExitCode: win32ExitCode ?? -1,
    serviceSpecificExitCode: serviceSpecificExitCode ?? -1,
    checkPoint: checkPoint ?? -1,
    waitHint,
  };
}

describe("scmr impacket vectors", () => {
  it("scmr impacket vectors - ROpenSCManagerW with both strings", () => {
    const v = vector("openSCManager");
    assert.equal(v.opnum, ScmOpnum.ROpenSCManagerW);
    const ours = encodeOpenSCManager({
      machineName: v.machineName ?? null,
      databaseName: v.databaseName ?? null,
      access: v.access ?? -1,
    });
    assertSameStub(ours, h(v.stub));
  });

  it("scmr impacket vectors - ROpenSCManagerW with both strings NULL", () => {
    const v = vector("openSCManagerNulls");
    const ours = encodeOpenSCManager({ machineName: null, databaseName: null, access: v.access ?? -1 });
    assert.deepEqual(ours, h(v.stub));
  });

  it("scmr impacket vectors - RCreateServiceW", () => {
    const v = vector("createService");
    assert.equal(v.opnum, ScmOpnum.RCreateServiceW);
    const ours = encodeCreateService({
      scmHandle: h(v.scmHandle),
      name: v.name ?? "",
      displayName: v.displayName ?? null,
      access: v.access ?? -1,
      binaryPath: v.binaryPath ?? "",
    });
    assertSameStub(ours, h(v.stub));
  });

  it("scmr impacket vectors - ROpenServiceW", () => {
    const v = vector("openService");
    assert.equal(v.opnum, ScmOpnum.ROpenServiceW);
    const ours = encodeOpenService({ scmHandle: h(v.scmHandle), name: v.name ?? "", access: v.access ?? -1 });
    assertSameStub(ours, h(v.stub));
  });

  it("scmr impacket vectors - RStartServiceW, RControlService and the handle-only calls", () => {
    const start = vector("startService");
    assert.equal(start.opnum, ScmOpnum.RStartServiceW);
    assert.deepEqual(encodeStartService(h(start.handle)), h(start.stub));
    const control = vector("controlService");
    assert.equal(control.opnum, ScmOpnum.RControlService);
    assert.equal(control.control, SERVICE_CONTROL_STOP);
    assert.deepEqual(encodeControlService(h(control.handle), SERVICE_CONTROL_STOP), h(control.stub));
    for (const [name, opnum] of [
      ["queryServiceStatus", ScmOpnum.RQueryServiceStatus],
      ["deleteService", ScmOpnum.RDeleteService],
      ["closeServiceHandle", ScmOpnum.RCloseServiceHandle],
    ] as const) {
      const v = vector(name);
      assert.equal(v.opnum, opnum, name);
      assert.deepEqual(encodeHandleOnly(h(v.handle)), h(v.stub), name);
    }
  });

  it("scmr impacket vectors - REnumServicesStatusW with a resume index and without", () => {
    for (const name of ["enumServicesStatus", "enumServicesStatusNoResume"]) {
      const v = vector(name);
      assert.equal(v.opnum, ScmOpnum.REnumServicesStatusW, name);
      const ours = encodeEnumServicesStatus({
        scmHandle: h(v.scmHandle),
        serviceType: v.serviceType ?? -1,
        serviceState: v.serviceState ?? -1,
        bufferSize: v.bufferSize ?? -1,
        resumeIndex: v.resumeIndex ?? null,
      });
      assert.deepEqual(ours, h(v.stub), name);
    }
  });

  it("scmr impacket vectors - RQueryServiceConfigW", () => {
    const v = vector("queryServiceConfig");
    assert.equal(v.opnum, ScmOpnum.RQueryServiceConfigW);
    assert.deepEqual(encodeQueryServiceConfig(h(v.handle), v.bufferSize ?? -1), h(v.stub));
  });

  it("scmr impacket vectors - REnumServicesStatusW response: decoded, and encoded to the same bytes", () => {
    const v = responses.enumServicesStatus;
    const expected: EnumServicesResponse = {
      services: v.services.map((s) => ({
        name: s.name,
        displayName: s.displayName,
        status: statusOf(s.status),
      })),
      bufferSize: v.bufferSize,
      bytesNeeded: v.bytesNeeded,
      resumeIndex: v.resumeIndex,
      returnValue: v.returnValue,
    };
    assert.equal(expected.services.length, 2);
    assert.deepEqual(decodeEnumServicesResponse(h(v.stub)), expected);
    assertSameStub(encodeEnumServicesResponse(expected), h(v.stub));
  });

  it("scmr impacket vectors - RQueryServiceConfigW response: decoded, and encoded to the same bytes", () => {
    const v = responses.queryServiceConfig;
    const expected = { config: v.config, bytesNeeded: v.bytesNeeded, returnValue: v.returnValue };
    assert.deepEqual(decodeQueryServiceConfigResponse(h(v.stub)), expected);
    assertSameStub(encodeQueryServiceConfigResponse(expected), h(v.stub));
  });

  it("scmr impacket vectors - RQueryServiceConfigW's ERROR_INSUFFICIENT_BUFFER answer with every pointer NULL", () => {
    const v = responses.queryServiceConfigInsufficient;
    assert.deepEqual(decodeQueryServiceConfigResponse(h(v.stub)), {
      config: {
        serviceType: 0,
        startType: 0,
        errorControl: 0,
        binaryPath: null,
        loadOrderGroup: null,
        tagId: 0,
        dependencies: [],
        serviceStartName: null,
        displayName: null,
      },
      bytesNeeded: 236,
      returnValue: 122,
    });
  });
});
