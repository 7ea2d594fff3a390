/**
 * RQueryServiceConfigW's answer (MS-SCMR 3.1.4.17): a QUERY_SERVICE_CONFIGW (MS-SCMR 2.2.15),
 * pcbBytesNeeded and the return value. Decoder for the client, encoder for fake servers and
 * property tests.
 *
 * lpServiceConfig is a top-level [out] pointer, so a reference pointer: the structure is inline,
 * with no referent id of its own (C706 14.3.11.1). Its five LPWSTR members are embedded unique
 * pointers (the IDL's pointer_default(unique)): the structure carries their referent ids and
 * their strings follow it, in the members' order (C706 14.3.12.3).
 */
import { expectEnd } from "./responses.ts";
import { NdrReader, NdrWriter } from "../rpc/ndr.ts";
import { check, decoding } from "../wire/bytes.ts";

/** A service's configuration (QUERY_SERVICE_CONFIGW, MS-SCMR 2.2.15). */
export interface ServiceConfig {
  /** dwServiceType (MS-SCMR 2.2.47: `ServiceType` bits). */
  serviceType: number;
  /** dwStartType: 0 boot, 1 system, 2 auto, 3 demand, 4 disabled. */
  startType: number;
  /** dwErrorControl: 0 ignore, 1 normal, 2 severe, 3 critical. */
  errorControl: number;
  /** lpBinaryPathName: the command line the SCM runs; null when the server sent a NULL pointer. */
  binaryPath: string | null;
  loadOrderGroup: string | null;
  /** dwTagId, a plain DWORD (0 when the service has no tag). */
  tagId: number;
  /**
   * lpDependencies as names (services, or groups prefixed with `+`). The IDL makes it a [string],
   * which cannot hold the NUL-separated list of the Win32 API, so the list travels with `/`
   * between names; this splits on `/` and on NUL, whichever the server used, and drops empty names.
   */
  dependencies: string[];
  /** lpServiceStartName: the account the service runs as (e.g. `LocalSystem`). */
  serviceStartName: string | null;
  displayName: string | null;
}

/** RQueryServiceConfigW's [out] parameters and return value. */
export interface QueryServiceConfigResponse {
  /** All zeros and NULLs when the call failed (ERROR_INSUFFICIENT_BUFFER among others). */
  config: ServiceConfig;
  /** pcbBytesNeeded: with ERROR_INSUFFICIENT_BUFFER, the cbBufSize to ask for. */
  bytesNeeded: number;
  returnValue: number;
}

/** Caps of the strings in UTF-16 units with the NUL: the IDL's `range` (MS-SCMR 2.2.15). */
export const QueryConfigStringCap = {
  binaryPath: 8 * 1024,
  loadOrderGroup: 8 * 1024,
  dependencies: 8 * 1024,
  serviceStartName: 1024,
  displayName: 1024,
} as const;

const WHAT = "RQueryServiceConfigW response";

/** Decodes RQueryServiceConfigW's response stub (MS-SCMR 3.1.4.17). */
export function decodeQueryServiceConfigResponse(stub: Buffer): QueryServiceConfigResponse {
  return decoding(WHAT, () => {
    const r = new NdrReader(stub, WHAT);
    const serviceType = r.u32();
    const startType = r.u32();
    const errorControl = r.u32();
    const binaryPathRef = r.pointer();
    const loadOrderGroupRef = r.pointer();
    const tagId = r.u32();
    const dependenciesRef = r.pointer();
    const serviceStartNameRef = r.pointer();
    const displayNameRef = r.pointer();
    const deferred = (ref: number, field: keyof typeof QueryConfigStringCap): string | null =>
      ref === 0 ? null : r.wstring(QueryConfigStringCap[field], field);
    const binaryPath = deferred(binaryPathRef, "binaryPath");
    const loadOrderGroup = deferred(loadOrderGroupRef, "loadOrderGroup");
    const dependencyList = deferred(dependenciesRef, "dependencies");
    const serviceStartName = deferred(serviceStartNameRef, "serviceStartName");
    const displayName = deferred(displayNameRef, "displayName");
    const bytesNeeded = r.u32();
    const returnValue = r.u32();
    expectEnd(r, WHAT);
    const dependencies = (dependencyList ?? "").split(/[/\0]/).filter((name) => name.length > 0);
    return {
      config: {
        serviceType,
        startType,
        errorControl,
        binaryPath,
        loadOrderGroup,
        tagId,
        dependencies,
        serviceStartName,
        displayName,
      },
      bytesNeeded,
      returnValue,
    };
  });
}

/**
 * The inverse of {@link decodeQueryServiceConfigResponse}. Dependencies go as one string with `/`
 * between names (an empty string for none), so a name must be non-empty, without `/` or NUL.
 */
export function encodeQueryServiceConfigResponse(response: QueryServiceConfigResponse): Buffer {
  const c = response.config;
  for (const name of c.dependencies) {
    check(
      name.length > 0 && !/[/\0]/.test(name),
      `${WHAT}: dependency ${JSON.stringify(name)} cannot be sent`,
    );
  }
  const strings: [string | null, keyof typeof QueryConfigStringCap][] = [
    [c.binaryPath, "binaryPath"],
    [c.loadOrderGroup, "loadOrderGroup"],
    [c.dependencies.join("/"), "dependencies"],
    [c.serviceStartName, "serviceStartName"],
    [c.displayName, "displayName"],
  ];
  for (const [text, field] of strings) {
    check(
      text === null || text.length < QueryConfigStringCap[field],
      `${WHAT}: ${field} over ${QueryConfigStringCap[field] - 1} units`,
    );
  }
  const w = new NdrWriter()
    .u32(c.serviceType)
    .u32(c.startType)
    .u32(c.errorControl)
    .pointer(c.binaryPath !== null)
    .pointer(c.loadOrderGroup !== null)
    .u32(c.tagId)
    .pointer(true) // lpDependencies: never NULL, an empty string for none
    .pointer(c.serviceStartName !== null)
    .pointer(c.displayName !== null);
  for (const [text] of strings) if (text !== null) w.wstring(text);
  return w.u32(response.bytesNeeded).u32(response.returnValue).toBuffer();
}
