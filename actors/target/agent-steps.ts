/**
 * The steps `startAgent` and `stopAgent`: the agent's life on the target, through its transport's
 * launcher (a process over SSH or here, posix/agent-process.ts). startAgent gives the agent its
 * configuration (with the workstation's certificate fingerprint, the one client it will answer)
 * and two certificates issued on the key it made, a server leaf for its listener and a client leaf
 * for its callbacks, then waits for its first callback; stopAgent asks it to stop (Shutdown,
 * forced after a forced cancel: the install in progress is stopped), on a new session when the
 * last one was lost, and has the launcher stop it when it does not answer or does not end. See
 * docs/target-steps.md.
 */
import { oneLine } from "../../base/text.ts";
import { withDeadline } from "../../base/deadline.ts";
import { issueLeaf, type RunCa } from "../../agent/client/credentials.ts";
import type { AgentConfigDocument } from "../../agent/protocol/start-up.ts";
import type { FirewallMode } from "../firewall/select.ts";
import { liveClient } from "./agent-link.ts";
import type { AgentCalls } from "./agent-session.ts";
import { AgentStateError, CallbackBlockedError, SessionLostError } from "./errors.ts";
import type { SessionRegistry, TargetSession } from "./session.ts";
import type { StepImpls } from "./steps.ts";
import { exitWithin, type RunningAgent, type StepLog } from "./transport.ts";

export interface AgentStepsDeps {
  readonly runId: string;
  readonly sessions: SessionRegistry;
  /** The run's CA: it issues each agent's certificates on the key the agent sends. */
  readonly ca: RunCa;
  /** The workstation's client certificate (its SHA-256 fingerprint): the one client agents answer. */
  readonly workstation: { readonly fingerprint256: string };
  /** The agent's port strategy on targets (the job's `ports.agent`). */
  readonly agentPorts: { readonly strategy: "lowest" | "random"; readonly window: number };
  /** `none`: the agent registers no firewall rule of its own. */
  readonly firewallMode: FirewallMode;
  readonly log: StepLog;
  /** Cap of the agent's log file on the target (the job's `output.agentLog`); the agent's default without it. */
  readonly agentLogBytes?: number;
}

/** An agent that hears from nobody for this long stops and removes itself. */
const IDLE_MS = 300_000;
/** How long an agent that answered Shutdown has to exit before it is stopped otherwise. */
const EXIT_MS = 20_000;
/**
 * How long stopAgent waits for Shutdown's answer: a forced one stops the install first (its
 * process group has KILL_GRACE_MS between TERM and KILL), an unforced one comes when no install
 * runs. Within the step's own deadline, with time left for a forced stop.
 */
const SHUTDOWN_MS = 15_000;
/** How long stopAgent gives a new connection to an agent whose session was lost. */
const RECONNECT_MS = 5_000;
/**
 * How long after the agent's `listening` line its first callback (a heartbeat sent as it starts
 * listening) has to reach the callback listener; beyond it callbacks are taken as blocked.
 */
export const FIRST_CALLBACK_MS = 5_000;

/**
 * The argument after the bundle on the agent's command line (the agent ignores it): names the run
 * and target, so that a forced stop finds this agent and no other, even when several runs share a
 * cached bundle and runtime on the same target.
 */
export function agentMarker(runId: string, targetId: string): string {
  return `sumac-run=${runId}:${targetId}`;
}

export function createAgentSteps(deps: AgentStepsDeps): Pick<StepImpls, "startAgent" | "stopAgent"> {
  /** The configuration the agent starts with: where it is, where it listens, where it reports. */
  function configOf(
    session: TargetSession,
    leases: { agentPort: number; callbackPort: number },
  ): AgentConfigDocument {
    const pushed = session.pushed!;
    const local = session.local;
    return {
      runId: deps.runId,
      targetId: session.targetId,
      caCertPem: deps.ca.certPem,
      workstationFingerprint256: deps.workstation.fingerprint256,
      stagingDir: pushed.stagingDir,
      programFiles: [pushed.runDir],
      logDir: pushed.logDir,
      idleTimeoutMs: IDLE_MS,
      listen: {
        host: local ? "127.0.0.1" : "0.0.0.0",
        basePort: leases.agentPort,
        strategy: deps.agentPorts.strategy === "random" ? "random" : "next",
        window: deps.agentPorts.window,
      },
      // The source the agent's firewall rule admits: what the target sees (NAT), else ours.
      workstationAddress: session.seenAs ?? session.localAddress,
      firewall: local || deps.firewallMode === "none" ? "none" : "nft",
      callback: {
        host: session.localAddress,
        port: leases.callbackPort,
        fingerprint256: session.ports.listenerFingerprint!,
      },
      ...(deps.agentLogBytes === undefined ? {} : { limits: { maxLogFileBytes: deps.agentLogBytes } }),
    };
  }

  /** Stops the session's agent when it cannot be asked to; never throws. */
  async function forceStop(session: TargetSession, agent: RunningAgent): Promise<void> {
    await session.transport.launcher.forceStop(session, agent, agentMarker(deps.runId, session.targetId));
  }

  /**
   * Asks the agent to stop (Shutdown; forced: the install in progress is stopped, not waited for),
   * on the session there is or, when it was lost, on a new one; whether it answered. Never throws.
   */
  async function askToStop(session: TargetSession, force: boolean, signal: AbortSignal): Promise<boolean> {
    const reason = force ? "run cancelled: stop the install" : "run finished";
    try {
      // A lost session is opened again, briefly: an agent that does not take it is stopped otherwise.
      const lost = new SessionLostError(
        `no new session with the agent within ${RECONNECT_MS / 1000} s (its last one was lost)`,
      );
      const client = await withDeadline(
        { ms: RECONNECT_MS, timeout: lost, signal, dispose: (late: AgentCalls) => late.close() },
        (stop) => liveClient(session, stop),
      );
      await client.call(
        "Shutdown",
        { reason, ...(force ? { force: true } : {}) },
        { timeoutMs: SHUTDOWN_MS, signal },
      );
      return true;
    } catch (error) {
      deps.log(
        session.targetId,
        "warn",
        // The message may be the agent's own (a fault): one line, escaped, capped.
        `Shutdown not answered (${oneLine((error as Error).message, 1000)}): stopping the agent otherwise`,
      );
      return false;
    }
  }

  return {
    async startAgent({ target, sessionId, leases }, signal) {
      const session = deps.sessions.get(sessionId, target.id);
      const listener = session.ports.listener;
      if (
        session.pushed === undefined ||
        session.ports.listenerFingerprint === undefined ||
        listener === undefined
      )
        throw new AgentStateError(`${target.id}: the agent was not pushed or no ports were allocated`);
      if (session.agent !== undefined) {
        await forceStop(session, session.agent);
        session.agent = undefined;
      }
      // A session with the agent stopped above is of no use to a later step.
      session.client?.close();
      session.client = undefined;
      session.reconnect = undefined;
      session.agentRemovedFiles = false;
      const agent = await session.transport.launcher.start(
        session,
        {
          config: configOf(session, leases),
          // deps.runId, as stopAgent derives the same marker from it.
          marker: agentMarker(deps.runId, target.id),
          issue: (publicKeyPem) => {
            // Two one-purpose leaves on the agent's one key: neither can stand in for the other,
            // and neither lets the agent be a client of another agent (they answer the
            // workstation's certificate only).
            const leaf = issueLeaf(deps.ca, {
              commonName: `agent-${target.id}`.slice(0, 64),
              subjectAltNames: [session.remoteAddress],
              usage: "server",
              publicKey: publicKeyPem,
            });
            const callbackLeaf = issueLeaf(deps.ca, {
              commonName: `agent-callback-${target.id}`.slice(0, 64),
              subjectAltNames: [],
              usage: "client",
              publicKey: publicKeyPem,
            });
            // Known before the agent listens: its first callback may come before the answer here.
            session.agentFingerprint = leaf.fingerprint256;
            session.agentCallbackFingerprint = callbackLeaf.fingerprint256;
            return { ...leaf, callbackCertPem: callbackLeaf.certPem };
          },
          running: (running) => (session.agent = running),
        },
        signal,
      );
      session.agent = agent;
      // The agent's word: a few ports are said, the rest counted.
      const busy =
        agent.busy.slice(0, 16).join(", ") +
        (agent.busy.length > 16 ? ` and ${agent.busy.length - 16} more` : "");
      deps.log(target.id, "info", `agent listening on ${agent.port}${busy === "" ? "" : ` (busy: ${busy})`}`);
      // The agent sends a heartbeat as soon as it listens: without it here soon, callbacks do not
      // get through, and the agent would go on blind (and stop itself once requests pause).
      const heard = await listener.heardFrom(session.agentCallbackFingerprint!, {
        timeoutMs: FIRST_CALLBACK_MS,
        signal,
      });
      signal.throwIfAborted();
      if (!heard) {
        const from = session.seenAs ?? session.remoteAddress;
        throw new CallbackBlockedError(
          `${target.id}: the agent's first callback did not reach this workstation within ${FIRST_CALLBACK_MS / 1000} s: ` +
            `open TCP port ${leases.callbackPort} on ${session.localAddress} (this workstation) to connections from ${from} ` +
            `(a host firewall here, or a target calling back from another address); the agent's log on the target says what it met`,
        );
      }
      return { agentPort: agent.port };
    },

    async stopAgent({ target, cancel }, signal) {
      const session = deps.sessions.find(target.id);
      if (session === undefined) return;
      // Forced: the operator asked for it (a second Ctrl-C), or an install call was abandoned and
      // its install may still run; either way nobody waits for that install any more.
      const force = cancel === "force" || session.installAbandoned !== undefined;
      let answered = false;
      if (session.client !== undefined || session.reconnect !== undefined)
        answered = await askToStop(session, force, signal);
      session.client?.close();
      session.client = undefined;
      session.reconnect = undefined;
      session.installAbandoned = undefined;
      const agent = session.agent;
      if (agent !== undefined) {
        if (!answered) await forceStop(session, agent);
        else {
          const exited = await exitWithin(agent, EXIT_MS, signal);
          // Stopped by the machine (its deadline): the agent stays the session's, and the step's
          // next attempt, with no session left, stops it otherwise.
          signal.throwIfAborted();
          if (exited === undefined) {
            deps.log(
              target.id,
              "warn",
              `the agent did not exit within ${EXIT_MS / 1000} s of its Shutdown: stopping it`,
            );
            await forceStop(session, agent);
          } else if (exited.exitCode === 0) {
            // Exit status 0: the agent removed its program files and staging itself
            // (agent/server/main.ts), so removeFiles need not run a command for them.
            session.agentRemovedFiles = true;
          }
        }
        session.agent = undefined;
      }
      if (session.ports.listener !== undefined) {
        await session.ports.listener.close();
        session.ports.listener = undefined;
      }
    },
  };
}
