/**
 * What the steps of one target share while it runs: one record per target, made by `connect` and
 * dropped by `disconnect`, with the connection, where the agent was put, the ports held here, the
 * agent started there and the session with it. The machine's context holds only names and numbers
 * (`sessionId`, `agentDir`, the leases), so a snapshot stays JSON; the live objects are here.
 */
import type { Lease } from "../../bus/schemas/lease.ts";
import type { AgentCalls, CallbackListenerHandle } from "./agent-session.ts";
import type { RunningAgent, TargetTransport, TransportSession } from "./transport.ts";
import { SessionLostError } from "./errors.ts";

/** What a target holds on this workstation, from allocatePorts to releaseLeases. */
export interface HeldPorts {
  callbackLease?: Lease;
  workstationLease?: Lease;
  /** The callback listener on the callback lease, and its certificate's fingerprint. */
  listener?: CallbackListenerHandle;
  listenerFingerprint?: string;
  /**
   * The callback port's firewall rule, from the moment it is asked for: an open that failed or was
   * aborted may still have reached the firewall (nft ran, the caller stopped waiting), so
   * closeFirewall removes it whatever the open's outcome (closing a rule that is not there is a
   * no-op). `opened` once the open succeeded: only then is it not asked for again.
   */
  firewallRule?: { leaseId: string; port: number; opened: boolean };
}

/** One target's live state during a run. */
export interface TargetSession extends TransportSession {
  readonly sessionId: string;
  /** How the target was reached: its agent files and launcher. */
  readonly transport: Pick<TargetTransport, "files" | "launcher">;
  readonly ports: HeldPorts;
  /** The agent running on the target (from its start, before it listens), until it is stopped. */
  agent?: RunningAgent;
  /** The last started agent's server certificate fingerprint: hello pins it. */
  agentFingerprint?: string;
  /** The last started agent's callback (client) certificate fingerprint: the callback listener pins it. */
  agentCallbackFingerprint?: string;
  /** The session with the agent, from hello on; replaced when it was lost (agent-link.ts). */
  client?: AgentCalls;
  /**
   * Opens a new session with the same agent (a new connection from the leased workstation port,
   * a new secured session): set by hello, used by a later step that finds the session lost.
   */
  reconnect?: (signal: AbortSignal) => Promise<AgentCalls>;
  /** The component being installed, for the callbacks' progress. */
  installing?: string;
  /**
   * The component whose Install call was abandoned (its step stopped): its install may still run on
   * the agent, so stopAgent has the agent stop it rather than wait for it.
   */
  installAbandoned?: string;
  /** Files already put into the staging directory by inventory, per component. */
  uploaded?: Map<string, { name: string; size: number; sha256: string }[]>;
}

/** The sessions of a run, one per target. */
export class SessionRegistry {
  readonly #sessions = new Map<string, TargetSession>();

  /** Keeps `session` as its target's; the caller has dropped any earlier one. */
  add(session: TargetSession): void {
    this.#sessions.set(session.targetId, session);
  }

  /** The target's session, when it is the one named. @throws SessionLostError otherwise. */
  get(sessionId: string, targetId: string): TargetSession {
    const session = this.#sessions.get(targetId);
    if (session === undefined || session.sessionId !== sessionId)
      throw new SessionLostError(
        `no open session ${sessionId}: the connection was closed or never made by this process`,
      );
    return session;
  }

  /** The target's session. @throws SessionLostError when it has none. */
  of(targetId: string): TargetSession {
    const session = this.#sessions.get(targetId);
    if (session === undefined)
      throw new SessionLostError(`no open session of target ${targetId} in this process`);
    return session;
  }

  /** The target's session, if it has one. */
  find(targetId: string): TargetSession | undefined {
    return this.#sessions.get(targetId);
  }

  /** Forgets the target's session (the caller closes it). */
  delete(targetId: string): TargetSession | undefined {
    const session = this.#sessions.get(targetId);
    this.#sessions.delete(targetId);
    return session;
  }

  get size(): number {
    return this.#sessions.size;
  }
}
