/**
 * The steps `startAgent` and `stopAgent`: the agent's life on the target, through its transport's
 * launcher (a process over SSH or here, posix/agent-process.ts). startAgent gives the agent its
 * configuration and a certificate issued on the key it made; stopAgent asks it to stop
 * (Shutdown), and has the launcher stop it when it does not answer or does not end. See
 * docs/target-steps.md.
 */
import { issueLeaf, type RunCa } from "../../agent/client/credentials.ts";
import type { AgentConfigDocument } from "../../agent/protocol/start-up.ts";
import type { FirewallMode } from "../firewall/select.ts";
import { AgentStateError } from "./errors.ts";
import type { SessionRegistry, TargetSession } from "./session.ts";
import type { StepImpls } from "./steps.ts";
import { exitWithin, type RunningAgent, type StepLog } from "./transport.ts";

export interface AgentStepsDeps {
  readonly runId: string;
  readonly sessions: SessionRegistry;
  /** The run's CA: it issues each agent's certificate on the key the agent sends. */
  readonly ca: RunCa;
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

  return {
    async startAgent({ target, sessionId, leases }, signal) {
      const session = deps.sessions.get(sessionId, target.id);
      if (session.pushed === undefined || session.ports.listenerFingerprint === undefined)
        throw new AgentStateError(`${target.id}: the agent was not pushed or no ports were allocated`);
      if (session.agent !== undefined) {
        await forceStop(session, session.agent);
        session.agent = undefined;
      }
      session.agentRemovedFiles = false;
      const agent = await session.transport.launcher.start(
        session,
        {
          config: configOf(session, leases),
          // deps.runId, as stopAgent derives the same marker from it.
          marker: agentMarker(deps.runId, target.id),
          issue: (publicKeyPem) => {
            const leaf = issueLeaf(deps.ca, {
              commonName: `agent-${target.id}`.slice(0, 64),
              subjectAltNames: [session.remoteAddress],
              usage: "server-and-client",
              publicKey: publicKeyPem,
            });
            // Known before the agent listens: its first callback may come before the answer here.
            session.agentFingerprint = leaf.fingerprint256;
            return leaf;
          },
          running: (running) => (session.agent = running),
        },
        signal,
      );
      session.agent = agent;
      const busy = agent.busy.join(", ");
      deps.log(target.id, "info", `agent listening on ${agent.port}${busy === "" ? "" : ` (busy: ${busy})`}`);
      return { agentPort: agent.port };
    },

    async stopAgent({ target }) {
      const session = deps.sessions.find(target.id);
      if (session === undefined) return;
      let answered = false;
      if (session.client !== undefined) {
        answered = await session.client
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
        session.client.close();
        session.client = undefined;
      }
      const agent = session.agent;
      if (agent !== undefined) {
        if (!answered) await forceStop(session, agent);
        else {
          const exited = await exitWithin(agent, EXIT_MS);
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
