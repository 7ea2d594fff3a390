/**
 * A service control client over svcctl (MS-SCMR): opens the SCM, creates, opens, starts, watches,
 * stops and deletes services, each call with a deadline and an AbortSignal. It speaks through the
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
import { SERVICE_ACCESS_FOR_DEPLOY, SERVICE_CONTROL_STOP, ScManagerAccess, ScmOpnum } from "./constants.ts";
import {
  encodeControlService,
  encodeCreateService,
  encodeHandleOnly,
  encodeOpenSCManager,
  encodeOpenService,
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
import { checkBinaryPath, checkDisplayName, checkServiceName } from "./service-names.ts";

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

export class ScmClient {
  readonly rpc: RpcCaller;
  /** The SCM's handle, for RCreateServiceW and ROpenServiceW. */
  readonly scmHandle: ScmHandle;

  private constructor(rpc: RpcCaller, scmHandle: ScmHandle) {
    this.rpc = rpc;
    this.scmHandle = scmHandle;
  }

  /** Opens the active SCM database with the rights to connect and to create services (ROpenSCManagerW). */
  static async open(rpc: RpcCaller, options: ScmCallOptions): Promise<ScmClient> {
    const stub = encodeOpenSCManager({
      machineName: null,
      access: ScManagerAccess.CONNECT | ScManagerAccess.CREATE_SERVICE,
    });
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
