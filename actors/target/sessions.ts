/**
 * What the steps of one target share while it runs, keyed by target id: its connection (shell
 * and files), where the agent was put, and the agent's own state. The machine's context holds only
 * names (`sessionId`, `agentDir`), so a snapshot stays JSON; the live objects are here.
 */
import { errorClass } from "../../base/errors.ts";
import type { FileChannel, RemoteShell } from "../remote.ts";

/** Where `pushAgent` put the agent on the target, and how to start it. */
export interface PushedAgent {
  /** The run's directory on the target (`<runRoot>/<runId>`), removed by `removeFiles`. */
  readonly runDir: string;
  /** The agent bundle (one `.mjs` file). */
  readonly bundlePath: string;
  /** Its SHA-256 (hex), checked by the command that starts the agent. */
  readonly bundleSha256: string;
  /** Absolute path of the Node binary that runs the bundle (the target's own, or the pushed one). */
  readonly nodePath: string;
  /** True when the runtime was pushed because the target had no Node >= 18. */
  readonly runtimePushed: boolean;
  /** Where component files are staged for the agent. */
  readonly stagingDir: string;
  /** Where the agent writes its log; kept after the run. */
  readonly logDir: string;
  /** Paths outside `runDir` that this run created and `removeFiles` must remove (none with the cache). */
  readonly extraPaths: readonly string[];
}

/** A target's live connection and what was put there. */
export interface TargetSession {
  readonly sessionId: string;
  readonly targetId: string;
  readonly shell: RemoteShell;
  readonly files: FileChannel;
  /** The target's numeric address as connected to (firewall peer, agent host). */
  readonly remoteAddress: string;
  /** This host's address on that connection: where the target can reach the workstation. */
  readonly localAddress: string;
  /** True for `host: local`. */
  readonly local: boolean;
  pushed?: PushedAgent;
  /**
   * This workstation's address as the target sees it (`$SSH_CLIENT` there, from the push's probe),
   * when known: the source the agent's firewall rule admits. Differs from `localAddress` behind NAT.
   */
  seenAs?: string;
  /** The agent stopped with exit status 0: it removed the run directory itself. */
  agentRemovedFiles?: boolean;
}

/** A step that needs a session the run no longer has (the process restarted, or a bug). */
export class SessionLostError extends errorClass("SESSION_LOST") {
  constructor(sessionId: string) {
    super(`no open session ${sessionId}: the connection was closed or never made by this process`);
  }
}

/** The open sessions of a run. */
export class SessionRegistry {
  readonly #sessions = new Map<string, TargetSession>();

  add(session: TargetSession): void {
    this.#sessions.set(session.sessionId, session);
  }

  /** @throws SessionLostError when `sessionId` is not open. */
  get(sessionId: string): TargetSession {
    const session = this.#sessions.get(sessionId);
    if (session === undefined) throw new SessionLostError(sessionId);
    return session;
  }

  find(sessionId: string | null): TargetSession | undefined {
    return sessionId === null ? undefined : this.#sessions.get(sessionId);
  }

  /** The newest open session of a target (steps whose input names no session use it). */
  forTarget(targetId: string): TargetSession {
    let found: TargetSession | undefined;
    for (const session of this.#sessions.values()) if (session.targetId === targetId) found = session;
    if (found === undefined) throw new SessionLostError(`of target ${targetId}`);
    return found;
  }

  delete(sessionId: string): void {
    this.#sessions.delete(sessionId);
  }

  get size(): number {
    return this.#sessions.size;
  }
}
