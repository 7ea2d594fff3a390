/**
 * The session with a target's agent as the steps hold it. `hello` opens it: a pinned TLS
 * connection from the leased workstation port, a port found taken reported to the lease service
 * and the next one used. Any later step (inventory, stage, install, logs, stopAgent) takes it
 * through {@link liveClient}, which opens it again, with a new connection and a new secured
 * session, when the last one was lost (the agent's side closed it, the network dropped it, or a
 * call was abandoned by its step): the step's retry then starts from a working session instead of
 * failing at once on a dead socket.
 */
import type { RunCa } from "../../agent/client/credentials.ts";
import type { LeaseClient } from "../lease/client.ts";
import type { AgentCalls, ConnectAgent } from "./agent-session.ts";
import { AgentStateError } from "./errors.ts";
import type { TargetSession } from "./session.ts";
import type { StepLog } from "./transport.ts";

export interface AgentLinkDeps {
  readonly runId: string;
  /** The run's CA certificate, which the agent's certificate must chain to. */
  readonly ca: Pick<RunCa, "certPem">;
  /** The workstation's client leaf for agent sessions, and its key. */
  readonly client: { readonly certPem: string; readonly keyPem: string };
  readonly connectAgent: ConnectAgent;
  /** Where a workstation port found taken is reported, for the next one. */
  readonly leases: Pick<LeaseClient, "reportConflict">;
  readonly log: StepLog;
}

/** Deadline of the TLS connection to the agent. */
const CONNECT_MS = 15_000;
/** Workstation ports found taken in a row before a connection gives up. */
const MAX_PORT_CONFLICTS = 16;
/**
 * What a connect from the leased port fails with when that port cannot be used: taken by another
 * socket (EADDRINUSE), or still held by the last connection to the same agent in TIME_WAIT
 * (EADDRNOTAVAIL: the same four-tuple cannot be connected again yet).
 */
const PORT_UNUSABLE = new Set(["EADDRINUSE", "EADDRNOTAVAIL"]);

/**
 * Opens a session with the agent on `agentPort` from the session's leased workstation port,
 * taking the next lease while the port cannot be used; sets `session.client` and
 * `session.reconnect`.
 */
export async function openAgentSession(
  deps: AgentLinkDeps,
  session: TargetSession,
  agentPort: number,
  signal: AbortSignal,
): Promise<AgentCalls> {
  const targetId = session.targetId;
  const fingerprint = session.agentFingerprint;
  if (fingerprint === undefined) throw new AgentStateError(`${targetId}: no agent was started`);
  session.client?.close();
  session.client = undefined;
  for (let conflicts = 0; ; conflicts++) {
    signal.throwIfAborted();
    const lease = session.ports.workstationLease;
    if (lease === undefined) throw new AgentStateError(`${targetId}: no workstation port was leased`);
    try {
      session.client = await deps.connectAgent({
        host: session.remoteAddress,
        port: agentPort,
        caCertPem: deps.ca.certPem,
        certPem: deps.client.certPem,
        keyPem: deps.client.keyPem,
        agentFingerprint256: fingerprint,
        runId: deps.runId,
        targetId,
        localPort: lease.port,
        connectTimeoutMs: CONNECT_MS,
        signal,
      });
      break;
    } catch (error) {
      const code = (error as { cause?: { code?: string } }).cause?.code;
      if (code === undefined || !PORT_UNUSABLE.has(code) || conflicts >= MAX_PORT_CONFLICTS) throw error;
      deps.log(
        targetId,
        "warn",
        `workstation port ${lease.port} ${code === "EADDRINUSE" ? "taken" : "not yet free again"}: reporting it and taking the next`,
      );
      session.ports.workstationLease = await deps.leases.reportConflict(lease.leaseId, { signal });
    }
  }
  session.reconnect = async (again) => {
    const client = await openAgentSession(deps, session, agentPort, again);
    deps.log(
      targetId,
      "info",
      `the session with the agent was lost: a new one is open from port ${session.ports.workstationLease?.port ?? "?"}`,
    );
    return client;
  };
  return session.client;
}

/**
 * The session's client when its connection still holds; otherwise a new session with the same
 * agent (see {@link openAgentSession}).
 *
 * @throws AgentStateError (AGENT_NOT_RUNNING) when hello never opened one.
 */
export async function liveClient(session: TargetSession, signal: AbortSignal): Promise<AgentCalls> {
  const client = session.client;
  if (client !== undefined && !client.closed) return client;
  if (session.reconnect === undefined) throw new AgentStateError(`no agent session with ${session.targetId}`);
  return session.reconnect(signal);
}
