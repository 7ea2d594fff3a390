/**
 * The agent on a Windows target, started as a service and talked to through files
 * (docs/windows.md): its configuration is written into the run directory, a demand-start service
 * `sumac-<run>-<n>` runs cmd, which checks Node and the bundle and starts the agent detached, and
 * the start-up dialogue goes through `agent-out.jsonl` (the agent's lines) and `agent-cert.json`
 * (the certificates issued on its key), read and written over SMB. The service is deleted as soon
 * as the agent answered or failed: it exists for the seconds of the start only.
 *
 * Stopping one that cannot be asked to: the stop file (`agent-stop`, the agent's SIGTERM), then,
 * if it has not stopped within {@link STOP_WAIT_MS}, a second service that ends its process by the
 * id it reported and removes its firewall rule.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { oneLine } from "../../../base/text.ts";
import { isSumacError } from "../../../base/errors.ts";
import { withDeadline } from "../../../base/deadline.ts";
import { ruleComment } from "../../../agent/protocol/firewall-rule.ts";
import { completeEvents } from "../../../agent/protocol/files-dialogue.ts";
import type { AgentConfigDocument, CertificateLine } from "../../../agent/protocol/start-up.ts";
import { AgentStartError } from "../errors.ts";
import type { AgentLauncher, StartedAgent, StepLog, TransportSession } from "../transport.ts";
import {
  agentServiceCommand,
  agentServiceName,
  killServiceCommand,
  killServiceName,
  windowsPathOf,
  WINDOWS_FILES,
} from "./commands.ts";
import { windowsLinkOf, type WindowsLink } from "./link.ts";
import { ServiceState } from "../../scmr/constants.ts";

/** From the service's start to the agent's key: cmd unpacks 90 MB and hashes it first. */
const KEY_MS = 120_000;
/** From the certificates written to the agent's listening line. */
const LISTENING_MS = 30_000;
/** Between two reads of the agent's lines while it starts. */
const POLL_MS = 150;
/** Between two reads of the agent's lines while something waits for it to exit. */
const EXIT_POLL_MS = 1_000;
/** How long the agent has to stop on its stop file before it is ended. */
const STOP_WAIT_MS = 10_000;
/** After the launcher ended with no word of the agent, how long its first line may still take. */
const LAUNCHER_GRACE_MS = 15_000;
/** The agent writes a few short lines: more is not the agent. */
const OUT_MAX_BYTES = 1024 * 1024;
/** A forced stop from its first read to the kill service's removal, at most. */
const FORCE_STOP_MS = 120_000;
/** Each SCM call and small file operation. */
const CALL_MS = 30_000;

type AgentEvent = Record<string, unknown> & { event?: unknown };

/** The agent of one Windows session: what it said so far, and its end when it says it. */
class WindowsAgent implements StartedAgent {
  port = 0;
  busy: readonly number[] = [];
  fingerprint256 = "";
  /** The process id it reported with its key: what a forced end names. */
  pid: number | undefined;
  readonly #link: WindowsLink;
  readonly #outPath: string;
  #events: AgentEvent[] = [];
  readonly #exited: Promise<{ exitCode: number | null }>;
  #settle!: (value: { exitCode: number | null }) => void;
  #watching = false;

  constructor(link: WindowsLink, runDir: string) {
    this.#link = link;
    this.#outPath = `${runDir}/${WINDOWS_FILES.out}`;
    this.#exited = new Promise((resolve) => (this.#settle = resolve));
  }

  /** Settles once the agent's `stopped` line is read: status 0 when it removed its files. */
  get exited(): Promise<{ exitCode: number | null }> {
    if (!this.#watching) {
      this.#watching = true;
      void this.#watch();
    }
    return this.#exited;
  }

  /** Every complete line the agent wrote, read again from the target. */
  async read(signal?: AbortSignal): Promise<AgentEvent[]> {
    let data: Buffer | undefined;
    for (let attempt = 1; ; attempt++) {
      try {
        data = await this.#link.files.read(this.#outPath, {
          maxBytes: OUT_MAX_BYTES,
          timeoutMs: CALL_MS,
          signal,
        });
        break;
      } catch (error) {
        // The agent appended while it was read (the size at the open was smaller): read again.
        if (!(isSumacError(error) && error.code === "OUTPUT_TOO_LARGE") || attempt >= 3) throw error;
      }
    }
    if (data === undefined) return this.#events;
    const events: AgentEvent[] = completeEvents(data.toString("utf8"));
    const key = events.find((e) => e.event === "publicKey");
    if (typeof key?.pid === "number" && Number.isSafeInteger(key.pid) && key.pid > 0) this.pid = key.pid;
    const listening = events.find((e) => e.event === "listening");
    if (this.port === 0 && typeof listening?.port === "number" && Number.isSafeInteger(listening.port))
      this.port = listening.port;
    this.#events = events;
    const stopped = events.find((e) => e.event === "stopped");
    if (stopped !== undefined) this.#settle({ exitCode: stopped.removed === true ? 0 : 4 });
    return events;
  }

  /** Whether the agent's `stopped` line has been read. */
  get stopped(): boolean {
    return this.#events.some((e) => e.event === "stopped");
  }

  /** Whether it said it ended: stopped, or failed (it exits right after either). */
  get ended(): boolean {
    return this.#events.some((e) => e.event === "stopped" || e.event === "failed");
  }

  async #watch(): Promise<void> {
    while (!this.stopped) {
      try {
        await this.read();
      } catch {
        // The session is gone: nothing more can be read; whoever waits gives up on its deadline.
        return;
      }
      if (!this.stopped) await sleep(EXIT_POLL_MS);
    }
  }
}

/** The configuration as the agent on Windows takes it: places relative to its bundle, netsh. */
export function windowsAgentConfig(config: AgentConfigDocument): AgentConfigDocument {
  return {
    ...config,
    stagingDir: WINDOWS_FILES.staging,
    logDir: `../logs/${config.runId}`,
    // node.exe cannot be removed while it runs: the workstation removes it after the agent ended
    // (node.tgz is absent with the agent cache, which is no error).
    programFiles: [WINDOWS_FILES.bundle, WINDOWS_FILES.runtime],
    firewall: config.firewall === "none" ? "none" : "netsh",
  };
}

function linkOf(session: TransportSession): WindowsLink {
  const link = windowsLinkOf(session.files);
  if (link === undefined) throw new AgentStartError(`${session.targetId}: not a Windows session`);
  return link;
}

export function windowsAgentLauncher(log: StepLog): AgentLauncher {
  return {
    async start(session, request, signal) {
      const pushed = session.pushed;
      const runtimeSha = pushed?.runtimeSha256;
      if (pushed === undefined || runtimeSha === undefined)
        throw new AgentStartError(`${session.targetId}: the agent was not pushed`);
      const link = linkOf(session);
      const { files } = link;
      const runId = request.config.runId;
      const runDir = pushed.runDir;
      const name = agentServiceName(runId, link.index);
      const call = { timeoutMs: CALL_MS, signal };
      // What an earlier attempt left: its lines must not be read as this agent's.
      for (const file of [WINDOWS_FILES.out, WINDOWS_FILES.certificate, WINDOWS_FILES.stop])
        await files.remove(`${runDir}/${file}`, call);
      const config = Buffer.from(`${JSON.stringify(windowsAgentConfig(request.config))}\n`);
      await files.put(config, `${runDir}/${WINDOWS_FILES.config}`, {
        mode: 0o600,
        ...call,
        checkOnTarget: false,
      });
      const scm = await link.scm(call);
      await scm.remove(name, call);
      const agent = new WindowsAgent(link, runDir);
      const binaryPath = agentServiceCommand({
        runDir: windowsPathOf(runDir),
        ...(pushed.runtimeCacheDir === undefined ? {} : { cacheDir: windowsPathOf(pushed.runtimeCacheDir) }),
        nodeSha256: runtimeSha,
        bundleSha256: pushed.bundleSha256,
        marker: request.marker,
      });
      try {
        let launchError: unknown;
        let launched = false;
        const launching = scm
          .launch(
            { name, displayName: `sumac agent ${runId} ${session.targetId}`, binaryPath },
            {
              timeoutMs: 60_000,
              signal,
            },
          )
          .then(
            () => (launched = true),
            (error: unknown) => (launchError = error),
          );
        request.running(agent);
        let launcherEndedAt: number | undefined;
        const next = async (kind: string, ms: number): Promise<AgentEvent> => {
          const deadline = performance.now() + ms;
          for (;;) {
            signal.throwIfAborted();
            if (launchError !== undefined)
              throw new AgentStartError(
                `${session.targetId}: the service ${name} did not start: ${(launchError as Error).message}`,
                { cause: launchError },
              );
            const events = await agent.read(signal);
            const failed = events.find((e) => e.event === "failed");
            if (failed !== undefined)
              throw new AgentStartError(
                `${session.targetId}: the agent failed to start: ${oneLine(String(failed.message), 500)}`,
              );
            const found = events.find((e) => e.event === kind);
            if (found !== undefined) return found;
            const now = performance.now();
            if (kind === "publicKey" && launched && events.length === 0) {
              // The launcher (cmd) ends at once when it started the agent, and also when a hash
              // differed or Node could not be unpacked: then no line ever comes.
              if (launcherEndedAt === undefined && (await serviceStopped(link, name, call)))
                launcherEndedAt = now;
              if (launcherEndedAt !== undefined && now - launcherEndedAt > LAUNCHER_GRACE_MS)
                throw new AgentStartError(
                  `${session.targetId}: the service ${name} ended and the agent never wrote a line: node.tgz could not be unpacked, or node.exe or agent.cjs on the target is not what was sent (its SHA-256 differs), or Node could not start`,
                );
            }
            if (now > deadline)
              throw new AgentStartError(
                `${session.targetId}: the agent did not send ${kind === "publicKey" ? "its public key" : "its listening line"} within ${ms / 1000} s`,
              );
            await sleep(POLL_MS, undefined, { signal });
          }
        };
        const key = await next("publicKey", KEY_MS);
        if (typeof key.publicKeyPem !== "string")
          throw new AgentStartError(`${session.targetId}: the agent's key line has no key`);
        const leaf = request.issue(key.publicKeyPem);
        const certificates: CertificateLine = {
          certPem: leaf.certPem,
          ...(leaf.callbackCertPem === undefined ? {} : { callbackCertPem: leaf.callbackCertPem }),
        };
        await files.put(Buffer.from(JSON.stringify(certificates)), `${runDir}/${WINDOWS_FILES.certificate}`, {
          mode: 0o600,
          ...call,
          checkOnTarget: false,
        });
        const listening = await next("listening", LISTENING_MS);
        if (
          typeof listening.port !== "number" ||
          !Number.isInteger(listening.port) ||
          listening.port < 1 ||
          listening.port > 65535
        )
          throw new AgentStartError(`${session.targetId}: the agent's listening line has no port`);
        if (listening.fingerprint256 !== leaf.fingerprint256)
          throw new AgentStartError(
            `${session.targetId}: the agent listens with another certificate than the one issued`,
          );
        agent.port = listening.port;
        agent.busy = Array.isArray(listening.busy)
          ? listening.busy
              .filter((p): p is number => Number.isInteger(p) && p >= 1 && p <= 65535)
              .slice(0, 1024)
          : [];
        agent.fingerprint256 = leaf.fingerprint256;
        await launching;
        return agent;
      } finally {
        // Its work is done (or failed): the service goes now, whatever happens to the run later.
        await scm
          .remove(name, { timeoutMs: CALL_MS })
          .then((removal) => log(session.targetId, "debug", `service ${name}: ${removal}`))
          .catch((error: unknown) =>
            log(session.targetId, "warn", `removing the service ${name} failed: ${(error as Error).message}`),
          );
      }
    },

    async forceStop(session, running) {
      const link = windowsLinkOf(session.files);
      const agent = running instanceof WindowsAgent ? running : undefined;
      const pushed = session.pushed;
      if (link === undefined || agent === undefined || pushed === undefined) {
        log(session.targetId, "warn", "cannot stop the agent: its session or run directory is unknown");
        return;
      }
      await stopAgentOfRunDir(link, pushed.runDir, session.targetId, log, agent);
    },
  };
}

/**
 * Stops the agent of a run directory that cannot be asked to over SOAP: its stop file, then after
 * {@link STOP_WAIT_MS} the kill service (its process by the id it reported, and its firewall
 * rule). `none`: it had stopped already (or never wrote a line). Never throws: what fails is logged.
 */
export async function stopAgentOfRunDir(
  link: WindowsLink,
  runDir: string,
  targetId: string,
  log: StepLog,
  known?: StartedAgent,
): Promise<"none" | "stopped" | "ended" | "failed"> {
  const agent = known instanceof WindowsAgent ? known : new WindowsAgent(link, runDir);
  // One deadline for all of it: a slow or hostile server holds a cleanup this long at most.
  const late = new AgentStartError(`stopping the agent took over ${FORCE_STOP_MS / 1000} s`);
  return withDeadline({ ms: FORCE_STOP_MS, timeout: late }, (signal) =>
    stopWithin(agent, link, runDir, targetId, log, signal),
  ).catch((error: unknown) => {
    log(targetId, "warn", `stopping the agent failed: ${(error as Error).message}`);
    return "failed" as const;
  });
}

async function stopWithin(
  agent: WindowsAgent,
  link: WindowsLink,
  runDir: string,
  targetId: string,
  log: StepLog,
  signal: AbortSignal,
): Promise<"none" | "stopped" | "ended" | "failed"> {
  const call = { timeoutMs: CALL_MS, signal };
  const said = await agent.read(signal);
  if (agent.ended || said.length === 0) return "none";
  await link.files.put(Buffer.alloc(0), `${runDir}/${WINDOWS_FILES.stop}`, {
    mode: 0o600,
    ...call,
    checkOnTarget: false,
  });
  const deadline = performance.now() + STOP_WAIT_MS;
  while (performance.now() < deadline) {
    await sleep(500, undefined, { signal });
    await agent.read(signal).catch(() => undefined);
    if (agent.ended) {
      log(targetId, "debug", "the agent stopped on its stop file");
      return "stopped";
    }
  }
  // Is its process still there? A node.exe in the run directory cannot be deleted while a
  // process runs it: if it can be, the agent is gone, and the id it reported may be another
  // process's by now (Windows reuses them): only its firewall rule is left to remove. (With the
  // agent cache Node is shared: the kill is then narrowed to a node.exe by that id.)
  const node = `${runDir}/${WINDOWS_FILES.node}`;
  let gone = false;
  if ((await link.files.size(node, call)) !== undefined)
    gone = await link.files.remove(node, call).then(
      () => true,
      () => false,
    );
  const pid = gone ? undefined : agent.pid;
  if (pid === undefined && agent.port === 0) {
    log(
      targetId,
      "warn",
      gone
        ? "the agent's process is gone"
        : "the agent did not stop on its stop file, and never said its process id",
    );
    return gone ? "none" : "failed";
  }
  const runId = runDir.split("/").pop() ?? "";
  const scm = await link.scm(call);
  await scm.runOnce(
    {
      name: killServiceName(runId, link.index),
      displayName: `sumac agent ${runId} ${targetId} (stop)`,
      binaryPath: killServiceCommand(pid, ruleComment({ runId, targetId, port: agent.port })),
    },
    call,
  );
  log(
    targetId,
    "warn",
    pid === undefined
      ? "the agent's process is gone: its firewall rule was removed"
      : `the agent did not stop within ${STOP_WAIT_MS / 1000} s of its stop file: its process ${pid} was ended`,
  );
  return pid === undefined ? "none" : "ended";
}

/** Whether the service is stopped (or gone): its launcher ended. */
async function serviceStopped(
  link: WindowsLink,
  name: string,
  call: { timeoutMs: number; signal: AbortSignal },
): Promise<boolean> {
  try {
    const scm = await link.scm(call);
    return (await scm.state(name, call)) === ServiceState.STOPPED;
  } catch {
    return false;
  }
}
