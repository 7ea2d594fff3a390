/**
 * The steps between a pushed agent and a finished exchange, and their cleanup: allocatePorts,
 * startAgent, hello, inventory, stage, install, logs, stopAgent, closeFirewall, releaseLeases.
 * Per target they share one callback listener (on a leased 61000+ port, opened in the firewall
 * for that target only), one agent process, and one TLS session whose local end is a leased
 * 60000+ port. See docs/target-steps.md.
 */
import { errorClass } from "../../base/errors.ts";
import { writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { basename, join } from "node:path";
import { AgentClient } from "../../agent/client/client.ts";
import { startCallbackListener, type CallbackListener } from "../../agent/client/callback-listener.ts";
import { issueLeaf, type RunCa } from "../../agent/client/credentials.ts";
import type { JobComponent, JobOptions } from "../../run/job/types.ts";
import type { Lease } from "../../bus/schemas/lease.ts";
import type { Firewall } from "../firewall/firewall.ts";
import { bindLeased } from "../lease/bind.ts";
import type { LeaseClient } from "../lease/client.ts";
import type { RemoteProcess } from "../remote.ts";
import { shellQuote } from "../ssh/become.ts";
import { LineReader, LineReaderError } from "./line-reader.ts";
import type { PushedAgent, SessionRegistry, TargetSession } from "./sessions.ts";
import type { StepImpls } from "./steps.ts";

/** What the start command prints when the bundle on the target is not the one sent. */
const BUNDLE_MISMATCH = "is not the agent bundle that was sent";

/** The bundle on the target is not the one sent (damaged in transfer or on disk, or replaced). */
export class AgentBundleMismatchError extends errorClass("BUNDLE_MISMATCH") {}

/**
 * The command that starts the agent: it checks the bundle's SHA-256 first (the upload is not
 * checked on its own: this command runs anyway), then becomes Node running it.
 */
export function startAgentCommand(
  pushed: Pick<PushedAgent, "nodePath" | "bundlePath" | "bundleSha256">,
  marker: string,
): string {
  const bundle = shellQuote(pushed.bundlePath);
  const sha = shellQuote(pushed.bundleSha256.toLowerCase());
  return (
    `[ "$(sha256sum -b < ${bundle} 2>/dev/null | cut -c1-64)" = ${sha} ] || ` +
    `{ echo ${shellQuote(`sumac: ${pushed.bundlePath} ${BUNDLE_MISMATCH}`)} >&2; exit 97; }; ` +
    `exec ${shellQuote(pushed.nodePath)} ${bundle} ${shellQuote(marker)}`
  );
}

/**
 * The argument after the bundle on the agent's command line (the agent ignores it): names the run
 * and target, so that {@link stopAgentCommand} finds this agent and no other, even when several
 * runs share a cached bundle and runtime on the same target.
 */
export function agentMarker(runId: string, targetId: string): string {
  return `sumac-run=${runId}:${targetId}`;
}

/** How long the agent has to stop by itself after TERM (its files, its firewall rule) before KILL. */
const STOP_GRACE_S = 10;

/**
 * The command that stops an agent over SSH when it cannot be asked to (no session, or Shutdown not
 * answered). A signal sent through the SSH channel does not reach it when the login is root:
 * OpenSSH refuses `signal` requests for sessions run outside privilege separation, and closing
 * the channel leaves the process running. So the agent is found by its exact command line (the
 * Node, the bundle and {@link agentMarker}, as the start command exec'd it), sent TERM (it then
 * removes its files and its firewall rule, and keeps its log), and KILL if it is still there after
 * {@link STOP_GRACE_S} s. Prints `none`, `stopped` or `killed`. Run as root (`become`).
 */
export function stopAgentCommand(
  pushed: Pick<PushedAgent, "nodePath" | "bundlePath">,
  marker: string,
  graceSeconds: number = STOP_GRACE_S,
): string {
  const rounds = Math.max(1, Math.round(graceSeconds * 5));
  const [node, bundle, mark] = [pushed.nodePath, pushed.bundlePath, marker].map(shellQuote);
  return [
    `want=$(printf '%s\\n%s\\n%s' ${node} ${bundle} ${mark})`,
    "pids=",
    // Not this shell (its own command line holds the paths too, but not as its argv).
    `for d in /proc/[0-9]*; do [ "\${d#/proc/}" = "$$" ] && continue; c=$(tr '\\0' '\\n' < "$d/cmdline" 2>/dev/null) || continue; [ "$c" = "$want" ] && pids="$pids \${d#/proc/}"; done`,
    'if [ -z "$pids" ]; then echo none; exit 0; fi',
    "kill -TERM $pids 2>/dev/null",
    "i=0",
    // Alive: still there and not a zombie waiting for its parent.
    `while [ "$i" -lt ${rounds} ]; do alive=; for p in $pids; do [ -d "/proc/$p" ] && ! grep -q '^State:.*Z' "/proc/$p/status" 2>/dev/null && alive="$alive $p"; done; if [ -z "$alive" ]; then echo stopped; exit 0; fi; sleep 0.2; i=$((i + 1)); done`,
    "kill -KILL $alive 2>/dev/null",
    "echo killed",
  ].join("; ");
}

/** A component's install command exited non-zero (HP SUM: the component failed). */
export class ComponentFailedError extends errorClass("COMPONENT_FAILED") {}

/** A step that needs what an earlier step of this target made, and it is not there. */
export class AgentStateError extends errorClass("AGENT_NOT_RUNNING") {}

export interface ExchangeDeps {
  readonly runId: string;
  readonly sessions: SessionRegistry;
  readonly ca: RunCa;
  /** The workstation's client leaf for agent sessions. */
  readonly client: { readonly certPem: string; readonly keyPem: string };
  readonly leases: LeaseClient;
  readonly firewall: Firewall;
  readonly components: ReadonlyMap<string, JobComponent>;
  readonly ports: JobOptions["ports"];
  readonly firewallMode: JobOptions["firewall"];
  /** Where a target's logs are copied on this machine (created by the call). */
  readonly logDir: (targetId: string) => Promise<string>;
  readonly log: (targetId: string, level: "debug" | "info" | "warn" | "error", line: string) => void;
  readonly progress: (targetId: string, componentId: string, percent: number) => void;
  /** Told which ports a target uses once they are known (for the report). */
  readonly onPorts?: (targetId: string, ports: { conflicts: readonly number[] }) => void;
}

/** What one target holds between steps. */
interface TargetAgent {
  callbackLease?: Lease;
  workstationLease?: Lease;
  listener?: CallbackListener;
  listenerFingerprint?: string;
  /**
   * The callback port's rule, from the moment it is asked for: an open that failed or was aborted
   * may still have reached the firewall (nft ran, the caller stopped waiting), so closeFirewall
   * removes it whatever the open's outcome (a close of a rule that is not there is a no-op).
   * `opened` once the open succeeded: only then is it not asked for again.
   */
  firewallOpen?: { leaseId: string; port: number; opened: boolean };
  process?: RemoteProcess;
  /** The session the agent runs through (told, at its stop, whether the agent removed its files). */
  session?: TargetSession;
  fingerprint256?: string;
  client?: AgentClient;
  installing?: string;
  /** Files already put into the staging directory by inventory, per component. */
  uploaded?: Map<string, { name: string; size: number; sha256: string }[]>;
}

const START_LINE_MS = 30_000;
const CALL_MS = 60_000;
const IDLE_MS = 300_000;

export function createExchangeSteps(
  deps: ExchangeDeps,
): Pick<
  StepImpls,
  | "allocatePorts"
  | "startAgent"
  | "hello"
  | "inventory"
  | "stage"
  | "install"
  | "logs"
  | "stopAgent"
  | "closeFirewall"
  | "releaseLeases"
> {
  const agents = new Map<string, TargetAgent>();
  const stateOf = (targetId: string): TargetAgent => {
    let state = agents.get(targetId);
    if (state === undefined) agents.set(targetId, (state = {}));
    return state;
  };
  const sessionFor = (targetId: string): TargetSession => deps.sessions.forTarget(targetId);

  /**
   * Stops a started agent that was not (or could not be) asked to stop. A local process gets real
   * signals; over SSH, {@link stopAgentCommand} finds and stops it. Either way its channel is closed.
   */
  async function stopStarted(targetId: string, state: TargetAgent): Promise<void> {
    const agent = state.process;
    if (agent === undefined) return;
    const session = state.session;
    if (session === undefined || session.local || session.pushed === undefined) {
      agent.kill("TERM");
      const exited = await Promise.race([
        agent.exited,
        new Promise<false>((resolve) => setTimeout(() => resolve(false), 20_000).unref()),
      ]);
      if (exited === false) {
        deps.log(targetId, "warn", "the agent did not exit within 20 s of its stop: killed");
        agent.kill("KILL");
      }
      return;
    }
    try {
      const result = await session.shell.exec(
        stopAgentCommand(session.pushed, agentMarker(deps.runId, targetId)),
        {
          become: true,
          timeoutMs: (STOP_GRACE_S + 20) * 1000,
        },
      );
      const outcome = result.stdout.trim().split("\n").pop() ?? "";
      if (result.exitCode !== 0 || !["none", "stopped", "killed"].includes(outcome))
        deps.log(
          targetId,
          "warn",
          `stopping the agent failed (exit ${String(result.exitCode)}): ${result.stderr.trim().slice(0, 300)}`,
        );
      else if (outcome === "killed")
        deps.log(targetId, "warn", `the agent did not stop within ${STOP_GRACE_S} s of TERM: killed`);
      else
        deps.log(
          targetId,
          "debug",
          outcome === "none" ? "no agent process was left to stop" : "the agent stopped on TERM",
        );
    } catch (error) {
      deps.log(targetId, "warn", `stopping the agent failed: ${(error as Error).message}`);
    }
    agent.kill("TERM");
  }

  const componentOf = (id: string): JobComponent => {
    const component = deps.components.get(id);
    if (component === undefined) throw new AgentStateError(`no component ${id} in the job`);
    return component;
  };
  const clientOf = (targetId: string): AgentClient => {
    const client = agents.get(targetId)?.client;
    if (client === undefined) throw new AgentStateError(`no agent session with ${targetId}`);
    return client;
  };

  return {
    async allocatePorts({ target }, signal) {
      const session = sessionFor(target.id);
      const state = stateOf(target.id);
      const holder = { run: deps.runId, target: target.id };
      const conflicts: number[] = [];
      // The callback listener: its leaf names the address the target reaches this host at.
      if (state.listener === undefined) {
        const leaf = issueLeaf(deps.ca, {
          commonName: `callback-${target.id}`.slice(0, 64),
          subjectAltNames: [session.localAddress],
          usage: "server",
        });
        state.listener = await startCallbackListener({
          host: session.localAddress,
          caCertPem: deps.ca.certPem,
          certPem: leaf.certPem,
          keyPem: leaf.keyPem,
          agentFingerprints: (fp) => fp === state.fingerprint256,
          runId: deps.runId,
          onMessage: (message) => {
            if (message.kind === "progress" && state.installing !== undefined)
              deps.progress(target.id, state.installing, message.percent);
            else if (message.kind === "log") deps.log(target.id, "info", message.line);
          },
          // Connections and acknowledgements are detail; refusals (warn, error) are news.
          log: (level, line) =>
            deps.log(target.id, level === "info" ? "debug" : level, `callback listener: ${line}`),
          bind: async (server) => {
            const bound = await bindLeased(deps.leases, {
              range: "callback",
              holder,
              host: session.localAddress,
              server,
              signal,
            });
            state.callbackLease = bound.lease;
            conflicts.push(...bound.conflicts);
            return { port: bound.lease.port, busy: bound.conflicts };
          },
        });
        state.listenerFingerprint = leaf.fingerprint256;
      }
      // The workstation's own end of the agent session: checked free by a bind, then released
      // for the connection to take.
      if (state.workstationLease === undefined) {
        const probe = await bindLeased(deps.leases, {
          range: "workstation",
          holder,
          host: "0.0.0.0",
          server: () => createServer(),
          signal,
        });
        await new Promise<void>((resolve) => probe.server.close(() => resolve()));
        state.workstationLease = probe.lease;
        conflicts.push(...probe.conflicts);
      }
      const callbackLease = state.callbackLease!;
      if (!session.local && deps.firewallMode !== "none" && state.firewallOpen?.opened !== true) {
        const rule = { leaseId: callbackLease.leaseId, port: callbackLease.port };
        state.firewallOpen = { ...rule, opened: false };
        await deps.firewall.open({ runId: deps.runId, ...rule, peer: session.remoteAddress }, { signal });
        state.firewallOpen.opened = true;
      }
      deps.onPorts?.(target.id, { conflicts });
      return {
        leases: {
          leaseIds: [callbackLease.leaseId, state.workstationLease.leaseId],
          workstationPort: state.workstationLease.port,
          callbackPort: callbackLease.port,
          agentPort: deps.ports.agent.base,
        },
      };
    },

    async startAgent({ runId, target, sessionId, leases }, signal) {
      const session = deps.sessions.get(sessionId);
      const state = stateOf(target.id);
      const pushed = session.pushed;
      if (pushed === undefined || state.listener === undefined)
        throw new AgentStateError(`${target.id}: the agent was not pushed or no ports were allocated`);
      if (state.process !== undefined) {
        await stopStarted(target.id, state);
        state.process = undefined;
      }
      // deps.runId, as stopStarted derives the same marker from it.
      const agent = await session.shell.spawn(startAgentCommand(pushed, agentMarker(deps.runId, target.id)), {
        startTimeoutMs: START_LINE_MS,
        signal,
        become: true,
      });
      state.process = agent;
      state.session = session;
      session.agentRemovedFiles = false;
      let stderr = "";
      agent.stderr.setEncoding("utf8");
      agent.stderr.on("data", (chunk: string) => {
        if (stderr.length < 8192) stderr += chunk;
      });
      const lines = new LineReader(agent.stdout);
      const next = async (what: string): Promise<Record<string, unknown>> => {
        let line: string;
        try {
          line = await lines.next(what, START_LINE_MS, signal);
        } catch (error) {
          if (stderr.includes(BUNDLE_MISMATCH))
            throw new AgentBundleMismatchError(`${target.id}: ${stderr.trim().slice(0, 500)}`, {
              cause: error,
            });
          throw new LineReaderError(
            `${target.id}: the agent did not start: ${(error as Error).message}${stderr === "" ? "" : `; its stderr: ${stderr.trim().slice(0, 500)}`}`,
            { cause: error },
          );
        }
        let event: Record<string, unknown>;
        try {
          event = JSON.parse(line) as Record<string, unknown>;
        } catch {
          throw new LineReaderError(
            `${target.id}: the agent wrote '${line.slice(0, 200)}' instead of ${what}`,
          );
        }
        if (event.event === "failed")
          throw new LineReaderError(`${target.id}: the agent failed to start: ${String(event.message)}`);
        return event;
      };
      const local = session.local;
      const config = {
        runId,
        targetId: target.id,
        caCertPem: deps.ca.certPem,
        stagingDir: pushed.stagingDir,
        programFiles: [pushed.runDir],
        logDir: pushed.logDir,
        idleTimeoutMs: IDLE_MS,
        listen: {
          host: local ? "127.0.0.1" : "0.0.0.0",
          basePort: leases.agentPort,
          strategy: deps.ports.agent.strategy === "random" ? "random" : "next",
          window: deps.ports.agent.window,
        },
        // The source the agent's firewall rule admits: what the target sees (NAT), else ours.
        workstationAddress: session.seenAs ?? session.localAddress,
        firewall: local || deps.firewallMode === "none" ? "none" : "nft",
        callback: {
          host: session.localAddress,
          port: leases.callbackPort,
          fingerprint256: state.listenerFingerprint,
        },
      };
      agent.stdin.write(`${JSON.stringify(config)}\n`);
      const key = await next("its public key");
      if (key.event !== "publicKey" || typeof key.publicKeyPem !== "string")
        throw new LineReaderError(
          `${target.id}: the agent sent ${String(key.event)} instead of its public key`,
        );
      const leaf = issueLeaf(deps.ca, {
        commonName: `agent-${target.id}`.slice(0, 64),
        subjectAltNames: [session.remoteAddress],
        usage: "server-and-client",
        publicKey: key.publicKeyPem,
      });
      state.fingerprint256 = leaf.fingerprint256;
      agent.stdin.write(`${JSON.stringify({ certPem: leaf.certPem })}\n`);
      const listening = await next("its listening line");
      if (listening.event !== "listening" || typeof listening.port !== "number")
        throw new LineReaderError(
          `${target.id}: the agent sent ${String(listening.event)} instead of listening`,
        );
      if (listening.fingerprint256 !== leaf.fingerprint256)
        throw new LineReaderError(
          `${target.id}: the agent listens with another certificate than the one issued`,
        );
      const busy = Array.isArray(listening.busy) ? listening.busy.join(", ") : "";
      deps.log(
        target.id,
        "info",
        `agent listening on ${listening.port}${busy === "" ? "" : ` (busy: ${busy})`}`,
      );
      lines.drain((line) => deps.log(target.id, "debug", `agent: ${line.slice(0, 2000)}`));
      return { agentPort: listening.port };
    },

    async hello({ target, agentPort }, signal) {
      const session = sessionFor(target.id);
      const state = stateOf(target.id);
      if (state.fingerprint256 === undefined) throw new AgentStateError(`${target.id}: no agent was started`);
      state.client?.close();
      state.client = undefined;
      for (let conflicts = 0; ; conflicts++) {
        signal.throwIfAborted();
        const lease = state.workstationLease!;
        try {
          state.client = await AgentClient.connect({
            host: session.remoteAddress,
            port: agentPort,
            caCertPem: deps.ca.certPem,
            certPem: deps.client.certPem,
            keyPem: deps.client.keyPem,
            agentFingerprint256: state.fingerprint256,
            runId: deps.runId,
            targetId: target.id,
            localPort: lease.port,
            connectTimeoutMs: 15_000,
            callTimeoutMs: CALL_MS,
          });
          break;
        } catch (error) {
          const cause = (error as { cause?: { code?: string } }).cause;
          if (cause?.code !== "EADDRINUSE" || conflicts >= 16) throw error;
          deps.log(
            target.id,
            "warn",
            `workstation port ${lease.port} taken: reporting it and taking the next`,
          );
          state.workstationLease = await deps.leases.reportConflict(lease.leaseId, { signal });
        }
      }
      const hello = await state.client.call("Hello", {});
      deps.log(
        target.id,
        "info",
        `agent ${hello.agentVersion} on ${hello.hostname} (${hello.os} ${hello.arch}, Node ${hello.nodeVersion})`,
      );
      return { agentVersion: hello.agentVersion };
    },

    async inventory({ target, componentIds }, signal) {
      const session = sessionFor(target.id);
      const client = clientOf(target.id);
      // The component files go first, so that detect commands can use them (they run in the
      // staging directory, as installs do).
      const uploaded = new Map<string, { name: string; size: number; sha256: string }[]>();
      await Promise.all(
        componentIds.map(async (id) => uploaded.set(id, await uploadFiles(session, componentOf(id), signal))),
      );
      stateOf(target.id).uploaded = uploaded;
      const result = await client.call("Inventory", {
        component: componentIds.map((id) => {
          const c = componentOf(id);
          return { id, detectCommand: c.detect, absentExitCode: c.absentExitCode };
        }),
      });
      const installed: Record<string, string | null> = {};
      for (const c of result.components) {
        if (c.status === "failed")
          deps.log(target.id, "warn", `detect of ${c.id} exited ${c.exitCode}: taken as not installed`);
        installed[c.id] = c.status === "installed" ? c.version : null;
      }
      return { installed };
    },

    async stage({ target, components }, signal) {
      const session = sessionFor(target.id);
      const client = clientOf(target.id);
      let files = 0;
      let bytes = 0;
      const uploaded = stateOf(target.id).uploaded;
      for (const spec of components) {
        // Put there by inventory already (same run, same session); otherwise put them now.
        const toStage = uploaded?.get(spec.id) ?? (await uploadFiles(session, componentOf(spec.id), signal));
        for (const staged of toStage) {
          const answer = await client.call("Stage", staged);
          files++;
          bytes += answer.size;
        }
      }
      return { files, bytes };
    },

    async install({ target, component: spec }) {
      const client = clientOf(target.id);
      const state = stateOf(target.id);
      const component = componentOf(spec.id);
      const timeoutMs = component.timeoutMs ?? 30 * 60_000;
      state.installing = spec.id;
      deps.progress(target.id, spec.id, 0);
      try {
        const result = await client.call(
          "Install",
          { componentId: spec.id, command: component.install, timeoutMs },
          { timeoutMs: timeoutMs + 30_000 },
        );
        if (result.exitCode !== 0)
          throw new ComponentFailedError(
            `${spec.id} ${spec.version}: the install command exited ${result.exitCode} (see the target's log)`,
          );
        deps.progress(target.id, spec.id, 100);
        return { rebootNeeded: component.reboot || result.rebootRequired };
      } finally {
        state.installing = undefined;
      }
    },

    async logs({ target }) {
      const client = clientOf(target.id);
      const result = await client.call("Logs", {});
      const dir = await deps.logDir(target.id);
      let bytes = 0;
      for (const file of result.files) {
        await writeFile(join(dir, basename(file.name)), file.content, { mode: 0o600 });
        bytes += file.content.byteLength;
      }
      return { location: dir, files: result.files.length, bytes };
    },

    async stopAgent({ target }) {
      const state = agents.get(target.id);
      if (state === undefined) return;
      let answered = false;
      if (state.client !== undefined) {
        answered = await state.client
          .call("Shutdown", { reason: "run finished" }, { timeoutMs: 15_000 })
          .then(
            () => true,
            (error: unknown) => {
              deps.log(
                target.id,
                "warn",
                `Shutdown not answered (${(error as Error).message}): stopping the agent otherwise`,
              );
              return false;
            },
          );
        state.client.close();
        state.client = undefined;
      }
      if (state.process !== undefined) {
        if (!answered) await stopStarted(target.id, state);
        else {
          const exited = await Promise.race([
            state.process.exited,
            new Promise<false>((resolve) => setTimeout(() => resolve(false), 20_000).unref()),
          ]);
          if (exited === false) {
            deps.log(target.id, "warn", "the agent did not exit within 20 s of its Shutdown: stopping it");
            await stopStarted(target.id, state);
          } else if (exited.exitCode === 0 && state.session !== undefined) {
            // Exit status 0: the agent removed its program files and staging itself (agent/server/main.ts),
            // so removeFiles need not run a command for them.
            state.session.agentRemovedFiles = true;
          }
        }
        state.process = undefined;
      }
      if (state.listener !== undefined) {
        await state.listener.close();
        state.listener = undefined;
      }
    },

    async closeFirewall({ target }) {
      const state = agents.get(target.id);
      if (state?.firewallOpen === undefined) return;
      const { leaseId, port } = state.firewallOpen;
      await deps.firewall.close({ runId: deps.runId, leaseId, port });
      state.firewallOpen = undefined;
    },

    async releaseLeases({ target, leases }) {
      const state = agents.get(target.id);
      const ids = new Set(leases?.leaseIds ?? []);
      if (state?.callbackLease) ids.add(state.callbackLease.leaseId);
      if (state?.workstationLease) ids.add(state.workstationLease.leaseId);
      if (ids.size > 0) await deps.leases.release([...ids], { timeoutMs: 10_000 });
      await state?.listener?.close();
      agents.delete(target.id);
    },
  };
}

/** Puts a component's files into the staging directory; returns what Stage must check. */
async function uploadFiles(
  session: TargetSession,
  component: JobComponent,
  signal: AbortSignal,
): Promise<{ name: string; size: number; sha256: string }[]> {
  const stagingDir = session.pushed?.stagingDir;
  if (stagingDir === undefined) throw new AgentStateError(`${session.targetId}: no staging directory`);
  const staged = [];
  for (const file of component.files) {
    // Stage checks each file's SHA-256 on the target: no check of its own after the upload.
    const put = await session.files.put(file.source, `${stagingDir}/${file.name}`, {
      mode: 0o644,
      signal,
      checkOnTarget: false,
    });
    staged.push({ name: file.name, size: put.bytes, sha256: put.sha256 });
  }
  return staged;
}
