/**
 * NDR stubs of the svcctl requests the service control client sends (MS-SCMR 3.1.4, IDL in
 * MS-SCMR 6). Pure functions: arguments in, the request stub (the body of a DCE/RPC request PDU)
 * out. The opnum each goes with is in `ScmOpnum` (constants.ts).
 */
import {
  SERVICE_DEMAND_START,
  SERVICE_ERROR_IGNORE,
  SERVICE_WIN32_OWN_PROCESS,
  SERVICES_ACTIVE_DATABASE,
} from "./constants.ts";
import { NdrWriter } from "../rpc/ndr.ts";

/**
 * ROpenSCManagerW (MS-SCMR 3.1.4.15): lpMachineName and lpDatabaseName are [string, unique];
 * the server ignores the machine name and takes null for the active database.
 */
export function encodeOpenSCManager(args: {
  machineName: string | null;
  databaseName?: string | null;
  access: number;
}): Buffer {
  return new NdrWriter()
    .uniqueWstring(args.machineName ?? undefined)
    .uniqueWstring(
      args.databaseName === undefined ? SERVICES_ACTIVE_DATABASE : (args.databaseName ?? undefined),
    )
    .u32(args.access)
    .toBuffer();
}

/** What sumac creates a service with; the rest of RCreateServiceW's arguments are fixed. */
export interface CreateServiceArgs {
  scmHandle: Buffer;
  name: string;
  displayName: string | null;
  access: number;
  binaryPath: string;
}

/**
 * RCreateServiceW (MS-SCMR 3.1.4.12) for a demand-start service in its own process, run as
 * LocalSystem (lpServiceStartName null), with no load order group, tag, dependencies or password.
 */
export function encodeCreateService(args: CreateServiceArgs): Buffer {
  return new NdrWriter()
    .contextHandle(args.scmHandle)
    .wstring(args.name)
    .uniqueWstring(args.displayName ?? undefined)
    .u32(args.access)
    .u32(SERVICE_WIN32_OWN_PROCESS)
    .u32(SERVICE_DEMAND_START)
    .u32(SERVICE_ERROR_IGNORE)
    .wstring(args.binaryPath)
    .pointer(false) // lpLoadOrderGroup
    .pointer(false) // lpdwTagId
    .pointer(false) // lpDependencies
    .u32(0) // dwDependSize
    .pointer(false) // lpServiceStartName
    .pointer(false) // lpPassword
    .u32(0) // dwPwSize
    .toBuffer();
}

/** ROpenServiceW (MS-SCMR 3.1.4.16). */
export function encodeOpenService(args: { scmHandle: Buffer; name: string; access: number }): Buffer {
  return new NdrWriter().contextHandle(args.scmHandle).wstring(args.name).u32(args.access).toBuffer();
}

/** RStartServiceW (MS-SCMR 3.1.4.19) with no arguments: argc 0, argv null. */
export function encodeStartService(handle: Buffer): Buffer {
  return new NdrWriter().contextHandle(handle).u32(0).pointer(false).toBuffer();
}

/** RControlService (MS-SCMR 3.1.4.2). */
export function encodeControlService(handle: Buffer, control: number): Buffer {
  return new NdrWriter().contextHandle(handle).u32(control).toBuffer();
}

/**
 * The requests whose stub is the handle alone (MS-SCMR 3.1.4): RQueryServiceStatus,
 * RDeleteService and RCloseServiceHandle.
 */
export function encodeHandleOnly(handle: Buffer): Buffer {
  return new NdrWriter().contextHandle(handle).toBuffer();
}

/** REnumServicesStatusW's [in] parameters (MS-SCMR 3.1.4.14). */
export interface EnumServicesArgs {
  scmHandle: Buffer;
  /** dwServiceType: a combination of `ServiceType` bits (constants.ts). */
  serviceType: number;
  /** dwServiceState: one of `EnumServiceState` (constants.ts). */
  serviceState: number;
  /** cbBufSize: the bytes of lpBuffer the server may fill, at most MAX_ENUM_BUFFER_SIZE. */
  bufferSize: number;
  /**
   * lpResumeIndex, `[in, out, unique]`: where to go on from (0 the first time), or null to
   * enumerate without resuming (the server then answers ERROR_MORE_DATA with nothing to resume).
   */
  resumeIndex: number | null;
}

/**
 * REnumServicesStatusW (MS-SCMR 3.1.4.14): handle, type, state, cbBufSize, then the top-level
 * unique pointer to the resume index with its DWORD at once (C706 14.3.12.1). lpBuffer and the
 * two counts are [out] only, so they take no room here.
 */
export function encodeEnumServicesStatus(args: EnumServicesArgs): Buffer {
  return new NdrWriter()
    .contextHandle(args.scmHandle)
    .u32(args.serviceType)
    .u32(args.serviceState)
    .u32(args.bufferSize)
    .uniqueU32(args.resumeIndex ?? undefined)
    .toBuffer();
}

/**
 * RQueryServiceConfigW (MS-SCMR 3.1.4.17): the service's handle and cbBufSize; the
 * QUERY_SERVICE_CONFIGW is [out] only.
 */
export function encodeQueryServiceConfig(handle: Buffer, bufferSize: number): Buffer {
  return new NdrWriter().contextHandle(handle).u32(bufferSize).toBuffer();
}
