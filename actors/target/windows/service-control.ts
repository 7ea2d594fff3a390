/**
 * The service control manager of one Windows target, as the run uses it: `IPC$`, the
 * `\PIPE\svcctl` pipe, an RPC binding to svcctl and the SCM's handle, opened once per session on
 * the session's SMB client. What it does with services: create and start one (the agent's launch),
 * run one to its end (the forced kill), and remove one in whatever state it is (stop if it runs,
 * delete, close), which never fails for a service already gone.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { RpcClient } from "../../rpc/client.ts";
import type { SmbClient } from "../../smb/client/client.ts";
import type { SmbPipe } from "../../smb/client/pipe.ts";
import type { SmbTree } from "../../smb/client/tree.ts";
import { ScmClient, type ScmCallOptions, type ScmHandle } from "../../scmr/client.ts";
import { ServiceState, SVCCTL_INTERFACE } from "../../scmr/constants.ts";
import { ScmError, Win32Error } from "../../scmr/win32-errors.ts";

/** What became of a service {@link ServiceControl.remove} was asked to remove. */
export type Removal = "deleted" | "absent" | "marked";

/** True for the Win32 error `code` (a name of win32-errors.ts). */
export function isWin32(error: unknown, code: number): boolean {
  return error instanceof ScmError && error.win32Error === code;
}

export class ServiceControl {
  readonly #ipc: SmbTree;
  readonly #pipe: SmbPipe;
  readonly #scm: ScmClient;

  private constructor(ipc: SmbTree, pipe: SmbPipe, scm: ScmClient) {
    this.#ipc = ipc;
    this.#pipe = pipe;
    this.#scm = scm;
  }

  /** Binds svcctl over `client`'s IPC$ and opens the SCM (connect, create and enumerate rights). */
  static async open(client: SmbClient, options: ScmCallOptions): Promise<ServiceControl> {
    const ipc = await client.treeConnect("IPC$", options);
    try {
      const pipe = await ipc.openPipe("svcctl", options);
      try {
        const rpc = await RpcClient.bind(pipe, { abstractSyntax: SVCCTL_INTERFACE, ...options });
        return new ServiceControl(ipc, pipe, await ScmClient.open(rpc, options));
      } catch (error) {
        await pipe.close(options).catch(() => undefined);
        throw error;
      }
    } catch (error) {
      await ipc.disconnect(options).catch(() => undefined);
      throw error;
    }
  }

  /** The SCM client itself, for the sweep's enumeration. */
  get scm(): ScmClient {
    return this.#scm;
  }

  /**
   * Creates a demand-start service and starts it. Resolves when the SCM has answered the start:
   * with success, or with ERROR_SERVICE_REQUEST_TIMEOUT or ERROR_PROCESS_ABORTED, which is what a
   * program that is not a service (cmd, which starts the agent and exits) earns on Windows; the
   * caller judges the launch by what the program did. Any other error rejects (ScmError).
   */
  async launch(
    service: { name: string; displayName: string; binaryPath: string },
    options: ScmCallOptions,
  ): Promise<void> {
    let handle: ScmHandle;
    try {
      handle = await this.#scm.createService(service, options);
    } catch (error) {
      // Ours from an earlier attempt, marked for deletion and not gone yet: once more, shortly.
      if (!isWin32(error, Win32Error.ERROR_SERVICE_MARKED_FOR_DELETE)) throw error;
      await sleep(1_000, undefined, options.signal ? { signal: options.signal } : {});
      handle = await this.#scm.createService(service, options);
    }
    try {
      await this.#scm.start(handle, options);
    } catch (error) {
      if (
        !isWin32(error, Win32Error.ERROR_SERVICE_REQUEST_TIMEOUT) &&
        !isWin32(error, Win32Error.ERROR_PROCESS_ABORTED)
      )
        throw error;
    } finally {
      await this.#scm.closeHandle(handle, options).catch(() => undefined);
    }
  }

  /** A service's current state (MS-SCMR 2.2.47), STOPPED for one that does not exist. */
  async state(name: string, options: ScmCallOptions): Promise<number> {
    let handle: ScmHandle;
    try {
      handle = await this.#scm.openService(name, options);
    } catch (error) {
      if (isWin32(error, Win32Error.ERROR_SERVICE_DOES_NOT_EXIST)) return ServiceState.STOPPED;
      throw error;
    }
    try {
      return (await this.#scm.queryStatus(handle, options)).currentState;
    } finally {
      await this.#scm.closeHandle(handle, options).catch(() => undefined);
    }
  }

  /**
   * Stops the service if it runs, and deletes it: `deleted`, `absent` (there was none), or
   * `marked` (Windows deletes it once its last handle, maybe another program's, is closed).
   */
  async remove(name: string, options: ScmCallOptions): Promise<Removal> {
    let handle: ScmHandle;
    try {
      handle = await this.#scm.openService(name, options);
    } catch (error) {
      if (isWin32(error, Win32Error.ERROR_SERVICE_DOES_NOT_EXIST)) return "absent";
      throw error;
    }
    try {
      const status = await this.#scm.queryStatus(handle, options);
      if (status.currentState !== ServiceState.STOPPED) {
        await this.#scm.stop(handle, options).catch((error: unknown) => {
          if (
            !isWin32(error, Win32Error.ERROR_SERVICE_NOT_ACTIVE) &&
            !isWin32(error, Win32Error.ERROR_SERVICE_CANNOT_ACCEPT_CTRL)
          )
            throw error;
        });
      }
      try {
        await this.#scm.delete(handle, options);
      } catch (error) {
        if (isWin32(error, Win32Error.ERROR_SERVICE_MARKED_FOR_DELETE)) return "marked";
        throw error;
      }
      return "deleted";
    } finally {
      await this.#scm.closeHandle(handle, options).catch(() => undefined);
    }
  }

  /**
   * Runs a short program as a service to its end: created, started, waited for until it stopped
   * (at most `options.timeoutMs`), removed whatever happened.
   */
  async runOnce(
    service: { name: string; displayName: string; binaryPath: string },
    options: ScmCallOptions,
  ): Promise<void> {
    await this.remove(service.name, options);
    try {
      await this.launch(service, options);
      const deadline = performance.now() + options.timeoutMs;
      const handle = await this.#scm.openService(service.name, options);
      try {
        while (performance.now() < deadline) {
          const status = await this.#scm.queryStatus(handle, options);
          if (status.currentState === ServiceState.STOPPED) break;
          await sleep(200, undefined, options.signal ? { signal: options.signal } : {});
        }
      } finally {
        await this.#scm.closeHandle(handle, options).catch(() => undefined);
      }
    } finally {
      await this.remove(service.name, { timeoutMs: 10_000 }).catch(() => undefined);
    }
  }

  /** Closes the SCM's handle, the pipe and IPC$; never throws. */
  async close(options: ScmCallOptions): Promise<void> {
    await this.#scm.close(options).catch(() => undefined);
    await this.#pipe.close(options).catch(() => undefined);
    await this.#ipc.disconnect(options).catch(() => undefined);
  }
}
