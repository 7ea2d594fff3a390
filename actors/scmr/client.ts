/**
 * A service control client over svcctl (MS-SCMR): opens the SCM, creates, opens, starts, watches,
 * stops and deletes services, lists them and reads their configuration, each call with a deadline
 * and an AbortSignal. It speaks through the
 * small {@link RpcCaller} interface, which actors/rpc's RpcClient bound to svcctl implements and
 * tests fake with canned stubs.
 *
 * @example
 * const rpc = await RpcClient.bind(pipe, { abstractSyntax: SVCCTL_INTERFACE, timeoutMs, signal });
 * const scm = await ScmClient.open(rpc, { timeoutMs, signal });
 * const svc = await scm.createService({ name: "sumac-agent", displayName: null, binaryPath }, o);
 * await scm.start(svc, o);
 * await scm.waitForState(svc, ServiceState.RUNNING, { timeoutMs: 30_000, signal });
 */
import { setTimeout as sleep } from "node:timers/promises";
import { withDeadline } from "../../base/deadline.ts";
import { errorClass } from "../../base/errors.ts";
import { check, MalformedPacketError } from "../wire/bytes.ts";
import {
  EnumServiceState,
  MAX_ENUM_BUFFER_SIZE,
  MAX_ENUM_BYTES_NEEDED,
  MAX_ENUM_CALLS,
  MAX_QUERY_CONFIG_BUFFER_SIZE,
  SC_MANAGER_ACCESS_FOR_DEPLOY,
  SERVICE_ACCESS_FOR_DEPLOY,
  SERVICE_CONTROL_STOP,
  ScmOpnum,
  ServiceType,
} from "./constants.ts";
import { decodeEnumServicesResponse, type EnumServiceStatus } from "./enum-services.ts";
import {
  encodeControlService,
  encodeCreateService,
  encodeEnumServicesStatus,
  encodeHandleOnly,
  encodeOpenSCManager,
  encodeOpenService,
  encodeQueryServiceConfig,
  encodeStartService,
} from "./requests.ts";
import {
  decodeCreateServiceResponse,
  decodeHandleResponse,
  decodeReturnOnlyResponse,
  decodeStatusResponse,
  expectSuccess,
  type ServiceStatus,
} from "./responses.ts";
import { decodeQueryServiceConfigResponse, type ServiceConfig } from "./service-config.ts";
import {
  checkBinaryPath,
  checkConfigBufferSize,
  checkDisplayName,
  checkEnumFilter,
  checkServiceName,
} from "./service-names.ts";
import { Win32Error } from "./win32-errors.ts";

/** A service did not reach the state waited for within the deadline. */
export class ScmTimeoutError extends errorClass("TIMEOUT") {}

/** Deadline and cancellation of one call. */
export interface ScmCallOptions {
  timeoutMs: number;
  signal?: AbortSignal | undefined;
}

/** What the client needs of an RPC binding to svcctl: one request, its response stub. */
export interface RpcCaller {
  call(opnum: number, stub: Buffer, options: ScmCallOptions): Promise<Buffer>;
}

/** A context handle to the SCM or to a service (20 bytes, MS-RPCE 2.2.5.2.1). */
export type ScmHandle = Buffer;

/** The service sumac creates: always demand-start, in its own process, as LocalSystem. */
export interface NewService {
  name: string;
  /** Shown in the Services console; null leaves it to be the name. */
  displayName: string | null;
  /** The command line the SCM runs (MS-SCMR 3.1.4.12 lpBinaryPathName). */
  binaryPath: string;
}

export interface WaitOptions extends ScmCallOptions {
  /** Pause between two queries (default 250 ms). */
  intervalMs?: number;
}

/** Which services {@link ScmClient.enumServices} lists (MS-SCMR 3.1.4.14). */
export interface EnumServicesFilter {
  /** dwServiceType, `ServiceType` bits (default `ServiceType.WIN32`: own and shared processes). */
  type?: number;
  /** dwServiceState, an `EnumServiceState` (default `EnumServiceState.ALL`). */
  state?: number;
}

export interface QueryConfigOptions extends ScmCallOptions {
  /**
   * The first call's cbBufSize, 0 to 8192 (default 8192, the IDL's most, so that one call does).
   * A smaller one makes the server answer ERROR_INSUFFICIENT_BUFFER and the client ask again.
   */
  bufferSize?: number;
}

export class ScmClient {
  readonly rpc: RpcCaller;
  /** The SCM's handle, for RCreateServiceW and ROpenServiceW. */
  readonly scmHandle: ScmHandle;

  private constructor(rpc: RpcCaller, scmHandle: ScmHandle) {
    this.rpc = rpc;
    this.scmHandle = scmHandle;
  }

  /**
   * Opens the active SCM database with the rights to connect, create services and enumerate them
   * (ROpenSCManagerW).
   */
  static async open(rpc: RpcCaller, options: ScmCallOptions): Promise<ScmClient> {
    const stub = encodeOpenSCManager({ machineName: null, access: SC_MANAGER_ACCESS_FOR_DEPLOY });
    const response = await rpc.call(ScmOpnum.ROpenSCManagerW, stub, options);
    const { handle } = expectSuccess(
      "ROpenSCManagerW",
      decodeHandleResponse(response, "ROpenSCManagerW response"),
    );
    return new ScmClient(rpc, handle);
  }

  /**
   * Creates a demand-start service (RCreateServiceW) and returns its handle, with the rights to
   * query, start, stop and delete it. A name already taken gives ScmError ERROR_SERVICE_EXISTS.
   */
  async createService(service: NewService, options: ScmCallOptions): Promise<ScmHandle> {
    checkServiceName(service.name);
    if (service.displayName !== null) checkDisplayName(service.displayName);
    checkBinaryPath(service.binaryPath);
    const stub = encodeCreateService({
      scmHandle: this.scmHandle,
      name: service.name,
      displayName: service.displayName,
      access: SERVICE_ACCESS_FOR_DEPLOY,
      binaryPath: service.binaryPath,
    });
    const response = await this.rpc.call(ScmOpnum.RCreateServiceW, stub, options);
    return expectSuccess("RCreateServiceW", decodeCreateServiceResponse(response)).handle;
  }

  /** Opens an existing service (ROpenServiceW); a missing one gives ScmError ERROR_SERVICE_DOES_NOT_EXIST. */
  async openService(name: string, options: ScmCallOptions): Promise<ScmHandle> {
    checkServiceName(name);
    const stub = encodeOpenService({ scmHandle: this.scmHandle, name, access: SERVICE_ACCESS_FOR_DEPLOY });
    const response = await this.rpc.call(ScmOpnum.ROpenServiceW, stub, options);
    return expectSuccess("ROpenServiceW", decodeHandleResponse(response, "ROpenServiceW response")).handle;
  }

  /** Starts a service with no arguments (RStartServiceW). */
  async start(handle: ScmHandle, options: ScmCallOptions): Promise<void> {
    const response = await this.rpc.call(ScmOpnum.RStartServiceW, encodeStartService(handle), options);
    expectSuccess("RStartServiceW", decodeReturnOnlyResponse(response, "RStartServiceW response"));
  }

  /** A service's status (RQueryServiceStatus). */
  async queryStatus(handle: ScmHandle, options: ScmCallOptions): Promise<ServiceStatus> {
    const response = await this.rpc.call(ScmOpnum.RQueryServiceStatus, encodeHandleOnly(handle), options);
    return expectSuccess(
      "RQueryServiceStatus",
      decodeStatusResponse(response, "RQueryServiceStatus response"),
    ).status;
  }

  /** Asks a service to stop (RControlService SERVICE_CONTROL_STOP); returns the status it reports then. */
  async stop(handle: ScmHandle, options: ScmCallOptions): Promise<ServiceStatus> {
    const stub = encodeControlService(handle, SERVICE_CONTROL_STOP);
    const response = await this.rpc.call(ScmOpnum.RControlService, stub, options);
    return expectSuccess("RControlService", decodeStatusResponse(response, "RControlService response"))
      .status;
  }

  /**
   * Lists the services of the SCM database (REnumServicesStatusW, MS-SCMR 3.1.4.14), all of them
   * whatever the server's buffer: the first call asks with cbBufSize 0; on ERROR_MORE_DATA the
   * client keeps what came, asks again with the pcbBytesNeeded the server gave (at most 256 KiB,
   * the IDL's bound) and goes on from the resume index it returned, until ERROR_SUCCESS. A server
   * that returns no resume index with ERROR_MORE_DATA is asked again from the start.
   *
   * Caps, each a MalformedPacketError (MALFORMED_PACKET), not an ScmError, as it is the answer
   * sumac refuses, not a call the SCM refused: a pcbBytesNeeded over 4 MiB
   * ({@link MAX_ENUM_BYTES_NEEDED}); ERROR_MORE_DATA with nothing returned and no larger buffer
   * asked for; more than {@link MAX_ENUM_CALLS} calls. Any other error is an ScmError. The SCM
   * handle needs SC_MANAGER_ENUMERATE_SERVICE, which {@link ScmClient.open} asks for.
   *
   * @example
   * const leftovers = (await scm.enumServices({}, o)).filter((s) => s.name.startsWith("sumac-"));
   */
  async enumServices(filter: EnumServicesFilter, options: ScmCallOptions): Promise<EnumServiceStatus[]> {
    const serviceType = filter.type ?? ServiceType.WIN32;
    const serviceState = filter.state ?? EnumServiceState.ALL;
    checkEnumFilter(serviceType, serviceState);
    const call = "REnumServicesStatusW";
    let services: EnumServiceStatus[] = [];
    let bufferSize = 0;
    let resumeIndex = 0;
    for (let calls = 0; calls < MAX_ENUM_CALLS; calls++) {
      const stub = encodeEnumServicesStatus({
        scmHandle: this.scmHandle,
        serviceType,
        serviceState,
        bufferSize,
        resumeIndex,
      });
      const answer = await this.rpc.call(ScmOpnum.REnumServicesStatusW, stub, options);
      const response = decodeEnumServicesResponse(answer, bufferSize);
      if (response.returnValue !== Win32Error.ERROR_MORE_DATA) {
        return services.concat(expectSuccess(call, response).services);
      }
      const needed = response.bytesNeeded;
      check(
        needed <= MAX_ENUM_BYTES_NEEDED,
        `${call}: ERROR_MORE_DATA asking for ${needed} bytes, over 4 MiB`,
      );
      const next = Math.min(Math.max(bufferSize, needed), MAX_ENUM_BUFFER_SIZE);
      check(
        response.services.length > 0 || next > bufferSize,
        `${call}: ERROR_MORE_DATA with no service in ${bufferSize} bytes, and asking for no more (${needed})`,
      );
      if (response.resumeIndex === null) {
        services = [];
        resumeIndex = 0;
      } else {
        services = services.concat(response.services);
        resumeIndex = response.resumeIndex;
      }
      bufferSize = next;
    }
    throw new MalformedPacketError(`${call}: still ERROR_MORE_DATA after ${MAX_ENUM_CALLS} calls`);
  }

  /**
   * A service's configuration (RQueryServiceConfigW, MS-SCMR 3.1.4.17). The first call asks with
   * `options.bufferSize` (default 8 KiB, the IDL's bound, so one call does on a server that keeps
   * to it); on ERROR_INSUFFICIENT_BUFFER the client asks once more with the pcbBytesNeeded the
   * server gave, if that is larger and within 8 KiB. An ERROR_INSUFFICIENT_BUFFER that this one
   * retry cannot cure (over 8 KiB, no larger, or again) is ScmError ERROR_INSUFFICIENT_BUFFER, so
   * that a sweep can pass over that one service; so is every other error. The handle needs
   * SERVICE_QUERY_CONFIG, which {@link ScmClient.openService} and createService ask for.
   */
  async queryConfig(handle: ScmHandle, options: QueryConfigOptions): Promise<ServiceConfig> {
    let bufferSize = options.bufferSize ?? MAX_QUERY_CONFIG_BUFFER_SIZE;
    checkConfigBufferSize(bufferSize);
    const callOptions: ScmCallOptions = { timeoutMs: options.timeoutMs, signal: options.signal };
    for (let retried = false; ; retried = true) {
      const stub = encodeQueryServiceConfig(handle, bufferSize);
      const answer = await this.rpc.call(ScmOpnum.RQueryServiceConfigW, stub, callOptions);
      const response = decodeQueryServiceConfigResponse(answer);
      const needed = response.bytesNeeded;
      const curable = needed > bufferSize && needed <= MAX_QUERY_CONFIG_BUFFER_SIZE;
      if (response.returnValue === Win32Error.ERROR_INSUFFICIENT_BUFFER && curable && !retried) {
        bufferSize = needed;
        continue;
      }
      return expectSuccess("RQueryServiceConfigW", response).config;
    }
  }

  /** Marks a service for deletion (RDeleteService); it goes once its last handle is closed. */
  async delete(handle: ScmHandle, options: ScmCallOptions): Promise<void> {
    const response = await this.rpc.call(ScmOpnum.RDeleteService, encodeHandleOnly(handle), options);
    expectSuccess("RDeleteService", decodeReturnOnlyResponse(response, "RDeleteService response"));
  }

  /** Closes a service's handle (RCloseServiceHandle). */
  async closeHandle(handle: ScmHandle, options: ScmCallOptions): Promise<void> {
    const response = await this.rpc.call(ScmOpnum.RCloseServiceHandle, encodeHandleOnly(handle), options);
    expectSuccess("RCloseServiceHandle", decodeHandleResponse(response, "RCloseServiceHandle response"));
  }

  /** Closes the SCM's handle; the RPC binding and the pipe are the caller's to close. */
  async close(options: ScmCallOptions): Promise<void> {
    await this.closeHandle(this.scmHandle, options);
  }

  /**
   * Queries a service every `intervalMs` until its state is `state` (a {@link ServiceState}),
   * and returns that status; ScmTimeoutError, naming the last state seen, once `timeoutMs` has
   * passed.
   */
  async waitForState(handle: ScmHandle, state: number, options: WaitOptions): Promise<ServiceStatus> {
    const intervalMs = options.intervalMs ?? 250;
    let last: ServiceStatus | undefined;
    const timeout = new ScmTimeoutError(
      `the service did not reach state ${state} within ${options.timeoutMs} ms`,
    );
    return withDeadline({ ms: options.timeoutMs, timeout, signal: options.signal }, async (signal) => {
      for (;;) {
        last = await this.queryStatus(handle, { timeoutMs: options.timeoutMs, signal });
        if (last.currentState === state) return last;
        timeout.message = `the service did not reach state ${state} within ${options.timeoutMs} ms (last seen ${last.currentState}, exit code ${last.win32ExitCode})`;
        await sleep(intervalMs, undefined, { signal });
      }
    });
  }
}
