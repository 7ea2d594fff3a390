/**
 * The svcctl request stubs against byte vectors assembled by hand from the IDL (MS-SCMR 6) and the
 * NDR rules (C706 14: DWORDs aligned to 4; a [string] wchar_t* as max_count, offset 0,
 * actual_count, UTF-16LE with its NUL; a top-level unique pointer's referent id, 0x00020000
 * first, then its referent at once; a context handle as 20 bytes).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  EnumServiceState,
  ScManagerAccess,
  SERVICE_CONTROL_STOP,
  ServiceAccess,
  ServiceType,
} from "../../../actors/scmr/constants.ts";
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

const SCM = Buffer.from("0102030405060708090a0b0c0d0e0f1011121314", "hex");
const SVC = Buffer.from("a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4", "hex");

const hex = (...parts: string[]): Buffer => Buffer.from(parts.join("").replace(/\s+/g, ""), "hex");
const u32 = (v: number): string => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(v);
  return b.toString("hex");
};
/** A [string] wchar_t* body with its counts; zero padding to 4 after it when `pad`. */
const wstr = (text: string): string => {
  const units = text.length + 1;
  const body = Buffer.from(`${text}\0`, "utf16le").toString("hex");
  const pad = "00".repeat((4 - ((units * 2) % 4)) % 4);
  return u32(units) + u32(0) + u32(units) + body + pad;
};

describe("scmr requests", () => {
  it("scmr requests - ROpenSCManagerW: null machine name, ServicesActive behind referent 0x00020000", () => {
    const stub = encodeOpenSCManager({
      machineName: null,
      access: ScManagerAccess.CONNECT | ScManagerAccess.CREATE_SERVICE,
    });
    assert.deepEqual(
      stub,
      hex(
        "00000000", // lpMachineName: NULL
        "00000200", // lpDatabaseName referent
        "0f000000 00000000 0f000000", // 15 units with the NUL
        "5300650072007600690063006500730041006300740069007600650000 00", // "ServicesActive\0"
        "0000", // pad to 4
        "03000000", // SC_MANAGER_CONNECT | SC_MANAGER_CREATE_SERVICE
      ),
    );
  });

  it("scmr requests - ROpenSCManagerW: both strings null", () => {
    assert.deepEqual(
      encodeOpenSCManager({ machineName: null, databaseName: null, access: 1 }),
      hex("00000000 00000000 01000000"),
    );
  });

  it("scmr requests - RCreateServiceW: demand start, own process, error ignore, every optional NULL", () => {
    const stub = encodeCreateService({
      scmHandle: SCM,
      name: "svc",
      displayName: "d",
      access: ServiceAccess.ALL_ACCESS,
      binaryPath: "C:\\a.exe",
    });
    assert.deepEqual(
      stub,
      hex(
        SCM.toString("hex"),
        "04000000 00000000 04000000 7300760063000000", // "svc\0", 8 bytes, aligned
        "00000200", // lpDisplayName referent
        "02000000 00000000 02000000 64000000", // "d\0"
        "ff010f00", // SERVICE_ALL_ACCESS
        "10000000", // SERVICE_WIN32_OWN_PROCESS
        "03000000", // SERVICE_DEMAND_START
        "00000000", // SERVICE_ERROR_IGNORE
        "09000000 00000000 09000000", // "C:\a.exe\0": 9 units
        "43003a005c0061002e00650078006500 0000",
        "0000", // pad to 4
        "00000000", // lpLoadOrderGroup
        "00000000", // lpdwTagId
        "00000000", // lpDependencies
        "00000000", // dwDependSize
        "00000000", // lpServiceStartName
        "00000000", // lpPassword
        "00000000", // dwPwSize
      ),
    );
  });

  it("scmr requests - RCreateServiceW: a null display name takes no referent", () => {
    const stub = encodeCreateService({
      scmHandle: SCM,
      name: "ab",
      displayName: null,
      access: 0x10,
      binaryPath: "x",
    });
    assert.deepEqual(
      stub,
      hex(
        SCM.toString("hex"),
        wstr("ab"),
        "00000000",
        "10000000 10000000 03000000 00000000",
        wstr("x"),
        "00000000".repeat(7),
      ),
    );
  });

  it("scmr requests - ROpenServiceW: handle, [string] name, access", () => {
    assert.deepEqual(
      encodeOpenService({ scmHandle: SCM, name: "sumac-x", access: 0x10034 }),
      hex(SCM.toString("hex"), wstr("sumac-x"), "34000100"),
    );
  });

  it("scmr requests - RStartServiceW: handle, argc 0, argv NULL", () => {
    assert.deepEqual(encodeStartService(SVC), hex(SVC.toString("hex"), "00000000 00000000"));
  });

  it("scmr requests - RControlService: handle and SERVICE_CONTROL_STOP", () => {
    assert.deepEqual(encodeControlService(SVC, SERVICE_CONTROL_STOP), hex(SVC.toString("hex"), "01000000"));
  });

  it("scmr requests - RQueryServiceStatus, RDeleteService, RCloseServiceHandle: the handle alone", () => {
    assert.deepEqual(encodeHandleOnly(SVC), SVC);
  });

  it("scmr requests - a handle of the wrong size is refused", () => {
    assert.throws(() => encodeHandleOnly(Buffer.alloc(16)), { code: "MALFORMED_PACKET" });
  });

  it("scmr requests - REnumServicesStatusW: handle, type, state, cbBufSize, resume index behind referent 0x00020000", () => {
    const stub = encodeEnumServicesStatus({
      scmHandle: SCM,
      serviceType: ServiceType.WIN32,
      serviceState: EnumServiceState.ALL,
      bufferSize: 0x1234,
      resumeIndex: 0,
    });
    assert.deepEqual(
      stub,
      hex(
        SCM.toString("hex"),
        "30000000", // SERVICE_WIN32
        "03000000", // SERVICE_STATE_ALL
        "34120000", // cbBufSize
        "00000200 00000000", // lpResumeIndex: referent, then 0 at once (a top-level pointer)
      ),
    );
  });

  it("scmr requests - REnumServicesStatusW: a null resume index is a NULL pointer alone", () => {
    assert.deepEqual(
      encodeEnumServicesStatus({
        scmHandle: SCM,
        serviceType: ServiceType.DRIVER,
        serviceState: EnumServiceState.ACTIVE,
        bufferSize: 0,
        resumeIndex: null,
      }),
      hex(SCM.toString("hex"), "0b000000 01000000 00000000 00000000"),
    );
  });

  it("scmr requests - RQueryServiceConfigW: handle and cbBufSize", () => {
    assert.deepEqual(encodeQueryServiceConfig(SVC, 8192), hex(SVC.toString("hex"), "00200000"));
  });
});
