/**
 * The agent's files on a Windows target, over SMB: the run directory under the run root
 * (`ADMIN$\Temp\sumac\<run>` by default) with its staging directory, the log directory kept after
 * the run (`<run root>\logs\<run>`, as HP SUM keeps its own), the official Node for Windows
 * compressed (`node.tgz`, for the target's processor, read from its kernel32.dll) and the bundle.
 * Removal takes the services of the run's target (whatever state the run ended in) and then the
 * run directory, and keeps the logs.
 */
import { posix } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { BuiltAgent } from "../agent-bundle.ts";
import type { AgentFiles, PushedAgent, StepLog, TransportSession } from "../transport.ts";
import { AgentStartError } from "../errors.ts";
import { agentServiceName, killServiceName, WINDOWS_FILES } from "./commands.ts";
import { windowsLinkOf, type WindowsLink } from "./link.ts";
import { peMachine } from "./pe.ts";
import { describeSweep, sweepServices } from "./sweep.ts";
import type { WindowsRuntime } from "./runtime.ts";

export interface WindowsFilesDeps {
  /** Keep Node on targets by its hash under `<run root>/cache` (job option `agentCache`). */
  readonly agentCache: boolean;
  /** The run's agent bundle, built once. */
  readonly bundle: () => Promise<BuiltAgent>;
  /** Node for Windows for a processor, fetched and compressed once (runtime.ts). */
  readonly runtime: (arch: "x64" | "arm64", signal: AbortSignal) => Promise<WindowsRuntime>;
  readonly log: StepLog;
  /** Deadline of each upload; default 10 minutes. */
  readonly uploadTimeoutMs?: number;
}

const UPLOAD_MS = 10 * 60_000;
const CALL_MS = 30_000;
/** How long a run directory whose node.exe is still held (a process ending) is tried again. */
const REMOVE_RETRY_MS = 15_000;
/** The first bytes of a PE file hold its headers. */
const PE_HEADER_BYTES = 4096;

function linkOf(session: TransportSession): WindowsLink {
  const link = windowsLinkOf(session.files);
  if (link === undefined) throw new AgentStartError(`${session.targetId}: not a Windows session`);
  return link;
}

/**
 * Removes a run directory. A node.exe whose process is still ending cannot be deleted yet (a
 * running program's file): tried again every 500 ms for {@link REMOVE_RETRY_MS}.
 */
export async function removeRunDir(link: WindowsLink, runDir: string, signal: AbortSignal): Promise<void> {
  const deadline = performance.now() + REMOVE_RETRY_MS;
  for (;;) {
    try {
      await link.files.remove(runDir, { timeoutMs: CALL_MS, signal });
      return;
    } catch (error) {
      if (signal.aborted || performance.now() > deadline) throw error;
      await sleep(500, undefined, { signal });
    }
  }
}

/** The target's processor, from its kernel32.dll's PE header; undefined when it cannot be read. */
async function targetArch(link: WindowsLink, signal: AbortSignal): Promise<string | undefined> {
  const options = { timeoutMs: CALL_MS, signal };
  const admin = await link.files.client.treeConnect("ADMIN$", options);
  try {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of admin.readFileStream("System32/kernel32.dll", options)) {
      chunks.push(chunk);
      size += chunk.length;
      if (size >= PE_HEADER_BYTES) break;
    }
    return peMachine(Buffer.concat(chunks).subarray(0, PE_HEADER_BYTES));
  } catch {
    return undefined;
  } finally {
    await admin.disconnect(options).catch(() => undefined);
  }
}

export function windowsAgentFiles(deps: WindowsFilesDeps): AgentFiles {
  return {
    async push(session, runId, signal): Promise<PushedAgent> {
      const link = linkOf(session);
      const { files } = link;
      const call = { timeoutMs: CALL_MS, signal };
      // A service an earlier run's workstation left behind goes first (sweep.ts).
      try {
        const swept = await sweepServices(await link.scm(call), runId, call);
        for (const { level, line } of describeSweep(swept)) deps.log(session.targetId, level, line);
      } catch (error) {
        signal.throwIfAborted();
        deps.log(
          session.targetId,
          "warn",
          `the sweep of services left by earlier runs failed: ${(error as Error).message}`,
        );
      }
      const runDir = await files.createRunDir(runId, { ...call, subdirs: [WINDOWS_FILES.staging] });
      // Private like the run directory: the agent, as SYSTEM, writes there.
      const logDir = await files.createPrivateDir(posix.join(files.runRoot, "logs", runId), call);
      const machine = await targetArch(link, signal);
      if (machine !== "x64" && machine !== "arm64")
        throw new AgentStartError(
          machine === undefined
            ? `${session.targetId}: cannot tell the processor of the target (its System32\\kernel32.dll could not be read as a Windows program)`
            : `${session.targetId}: the target's Windows is for ${machine}; Node for Windows (and so the agent) runs on x64 and arm64 only`,
        );
      const [bundle, runtime] = await Promise.all([deps.bundle(), deps.runtime(machine, signal)]);
      const upload = {
        mode: 0o644,
        signal,
        timeoutMs: deps.uploadTimeoutMs ?? UPLOAD_MS,
        checkOnTarget: false,
      };
      let runtimeCacheDir: string | undefined;
      let runtimeSent = true;
      if (deps.agentCache) {
        // Private like a run directory (its DACL), each version in a directory named by its hash.
        const cacheRoot = await files.createRunDir("cache", { ...call, subdirs: [runtime.nodeSha256] });
        runtimeCacheDir = `${cacheRoot}/${runtime.nodeSha256}`;
        const cachedTgz = `${runtimeCacheDir}/${WINDOWS_FILES.runtime}`;
        // A node.tgz of the right size is taken as it is: the start checks node.exe's hash anyway.
        if ((await files.size(cachedTgz, call)) === runtime.tgzBytes) runtimeSent = false;
        else await files.put(runtime.tgzPath, cachedTgz, { ...upload, sha256: runtime.tgzSha256 });
      } else
        await files.put(runtime.tgzPath, `${runDir}/${WINDOWS_FILES.runtime}`, {
          ...upload,
          sha256: runtime.tgzSha256,
        });
      const bundlePath = `${runDir}/${WINDOWS_FILES.bundle}`;
      await files.put(bundle.path, bundlePath, { ...upload, sha256: bundle.sha256 });
      deps.log(
        session.targetId,
        "info",
        runtimeSent
          ? `pushed Node ${runtime.version} for Windows ${machine} (${(runtime.tgzBytes / 1048576).toFixed(1)} MiB compressed) and the agent to ${runDir}`
          : `pushed the agent to ${runDir}; Node ${runtime.version} for Windows ${machine} is in the agent cache`,
      );
      return {
        runDir,
        bundlePath,
        bundleSha256: bundle.sha256,
        nodePath: `${runDir}/${WINDOWS_FILES.node}`,
        runtimePushed: true,
        stagingDir: `${runDir}/${WINDOWS_FILES.staging}`,
        logDir,
        extraPaths: [],
        runtimeSha256: runtime.nodeSha256,
        ...(runtimeCacheDir === undefined ? {} : { runtimeCacheDir }),
      };
    },

    async remove(session, runId, signal) {
      const link = linkOf(session);
      const call = { timeoutMs: CALL_MS, signal };
      // The services of this run's target, whatever state the run ended in: none is ever left.
      try {
        const scm = await link.scm(call);
        for (const name of [agentServiceName(runId, link.index), killServiceName(runId, link.index)]) {
          const removal = await scm.remove(name, call);
          if (removal !== "absent") deps.log(session.targetId, "info", `service ${name} ${removal}`);
        }
      } catch (error) {
        deps.log(session.targetId, "warn", `removing the run's services failed: ${(error as Error).message}`);
      }
      await link.closeScm();
      const runDir = session.pushed?.runDir ?? posix.join(link.files.runRoot, runId);
      await removeRunDir(link, runDir, signal);
    },
  };
}
