/**
 * NDR stubs of the svcctl responses (MS-SCMR 3.1.4, IDL in MS-SCMR 6): decoders for the client
 * and encoders for fake servers and property tests. A decoder reads the [out] parameters and the
 * DWORD return value and throws only MalformedPacketError; whether the return value is an error
 * is {@link expectSuccess}'s business, as a server fills the [out] parameters in either case.
 */
import { check, decoding } from "../wire/bytes.ts";
import { NdrReader, NdrWriter } from "../rpc/ndr.ts";
import { ScmError } from "./win32-errors.ts";

/** SERVICE_STATUS (MS-SCMR 2.2.47): seven DWORDs. */
export interface ServiceStatus {
  serviceType: number;
  currentState: number;
  controlsAccepted: number;
  win32ExitCode: number;
  serviceSpecificExitCode: number;
  checkPoint: number;
  waitHint: number;
}

/** A response carrying a context handle: ROpenSCManagerW, ROpenServiceW, RCloseServiceHandle. */
export interface HandleResponse {
  handle: Buffer;
  /** The method's return value, a Win32 error code (0 for success). */
  returnValue: number;
}

/** RCreateServiceW's [out] parameters (MS-SCMR 3.1.4.12). */
export interface CreateServiceResponse extends HandleResponse {
  /** lpdwTagId: null unless a tag was asked for, which sumac never does. */
  tagId: number | null;
}

/** A response carrying a SERVICE_STATUS: RQueryServiceStatus, RControlService. */
export interface StatusResponse {
  status: ServiceStatus;
  returnValue: number;
}

/** A response with the return value alone: RStartServiceW, RDeleteService. */
export interface ReturnOnlyResponse {
  returnValue: number;
}

/**
 * Throws {@link ScmError} naming `call` when a response's return value is not ERROR_SUCCESS;
 * returns the response otherwise.
 */
export function expectSuccess<R extends { returnValue: number }>(call: string, response: R): R {
  if (response.returnValue !== 0) throw new ScmError(call, response.returnValue);
  return response;
}

/** Throws unless the stub ends here: bytes after the last [out] parameter mean it is not the answer it was taken for. */
export function expectEnd(r: NdrReader, what: string): void {
  check(r.remaining === 0, `${what}: ${r.remaining} bytes after the return value`);
}

/** Reads a SERVICE_STATUS (MS-SCMR 2.2.47), also the tail of an ENUM_SERVICE_STATUSW record. */
export function readServiceStatus(r: NdrReader): ServiceStatus {
  return {
    serviceType: r.u32(),
    currentState: r.u32(),
    controlsAccepted: r.u32(),
    win32ExitCode: r.u32(),
    serviceSpecificExitCode: r.u32(),
    checkPoint: r.u32(),
    waitHint: r.u32(),
  };
}

/** Writes a SERVICE_STATUS (MS-SCMR 2.2.47), the inverse of {@link readServiceStatus}. */
export function writeServiceStatus(w: NdrWriter, s: ServiceStatus): NdrWriter {
  return w
    .u32(s.serviceType)
    .u32(s.currentState)
    .u32(s.controlsAccepted)
    .u32(s.win32ExitCode)
    .u32(s.serviceSpecificExitCode)
    .u32(s.checkPoint)
    .u32(s.waitHint);
}

/** Decodes a handle and return value (ROpenSCManagerW, ROpenServiceW, RCloseServiceHandle). */
export function decodeHandleResponse(stub: Buffer, what = "svcctl handle response"): HandleResponse {
  return decoding(what, () => {
    const r = new NdrReader(stub, what);
    const handle = r.contextHandle();
    const returnValue = r.u32();
    expectEnd(r, what);
    return { handle, returnValue };
  });
}

export function encodeHandleResponse(response: HandleResponse): Buffer {
  return new NdrWriter().contextHandle(response.handle).u32(response.returnValue).toBuffer();
}

/** Decodes RCreateServiceW's response: lpdwTagId ([unique] DWORD*), the handle, the return value. */
export function decodeCreateServiceResponse(stub: Buffer): CreateServiceResponse {
  const what = "RCreateServiceW response";
  return decoding(what, () => {
    const r = new NdrReader(stub, what);
    const tagId = r.uniqueU32() ?? null;
    const handle = r.contextHandle();
    const returnValue = r.u32();
    expectEnd(r, what);
    return { tagId, handle, returnValue };
  });
}

export function encodeCreateServiceResponse(response: CreateServiceResponse): Buffer {
  return new NdrWriter()
    .uniqueU32(response.tagId ?? undefined)
    .contextHandle(response.handle)
    .u32(response.returnValue)
    .toBuffer();
}

/** Decodes a SERVICE_STATUS and return value (RQueryServiceStatus, RControlService). */
export function decodeStatusResponse(stub: Buffer, what = "svcctl status response"): StatusResponse {
  return decoding(what, () => {
    const r = new NdrReader(stub, what);
    const status = readServiceStatus(r);
    const returnValue = r.u32();
    expectEnd(r, what);
    return { status, returnValue };
  });
}

export function encodeStatusResponse(response: StatusResponse): Buffer {
  return writeServiceStatus(new NdrWriter(), response.status).u32(response.returnValue).toBuffer();
}

/** Decodes a bare return value (RStartServiceW, RDeleteService). */
export function decodeReturnOnlyResponse(stub: Buffer, what = "svcctl response"): ReturnOnlyResponse {
  return decoding(what, () => {
    const r = new NdrReader(stub, what);
    const returnValue = r.u32();
    expectEnd(r, what);
    return { returnValue };
  });
}

export function encodeReturnOnlyResponse(response: ReturnOnlyResponse): Buffer {
  return new NdrWriter().u32(response.returnValue).toBuffer();
}
