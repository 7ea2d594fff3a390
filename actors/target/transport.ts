/**
 * What differs from one kind of target to another, behind three small interfaces that the steps
 * are written against (STYLE.md item 4): opening a session (a shell, a file channel and both
 * ends' addresses), putting the agent's files there and taking them away, and starting and
 * stopping the agent. SSH and this machine share the POSIX files and process implementations
 * (posix/); each kind is composed in one place (transports/). A Windows target has its own
 * (windows/: the files over SMB, the agent as a service talked to through files), and no step
 * changes.
 */
import { withDeadline } from "../../base/deadline.ts";
import type { BecomeConfig } from "../ssh/become.ts";
import type { SshAuth } from "../ssh/auth.ts";
import type { FileChannel, RemoteShell } from "../remote.ts";
import type { AgentConfigDocument } from "../../agent/protocol/start-up.ts";

/** Who logs a step's lines: the run's events (a target's log lines on the bus and the display). */
/**
 * A step's line for the operator. `origin.source: "agent"` marks text the target itself wrote (not
 * the step's own words): it counts against the target's output budget.
 */
export type StepLog = (
  targetId: string,
  level: "debug" | "info" | "warn" | "error",
  line: string,
  origin?: { readonly source?: "sumac" | "agent" },
) => void;

/** A Linux server reached over SSH. Secrets are read by the calls, when the login needs them. */
export interface SshAccess {
  readonly transport: "ssh";
  readonly id: string;
  readonly host: string;
  readonly port: number;
  readonly user: string;
  /** Pinned host key fingerprint (`SHA256:...`); without it known_hosts decides. */
  readonly hostKey?: string;
  /** The login's credentials (key, ssh-agent, password), read now. */
  credentials(): Promise<SshAuth>;
  /** How a login other than root becomes root (sudo, with its password when there is one), read now. */
  become(): Promise<BecomeConfig | undefined>;
}

/** This machine itself (`host: local`): no login, the agent a local process. */
export interface LocalAccess {
  readonly transport: "local";
  readonly id: string;
}

/** A Windows server reached through ADMIN$ over SMB, as an administrator. */
export interface SmbAccess {
  readonly transport: "smb";
  readonly id: string;
  readonly host: string;
  readonly port: number;
  /** The account and its domain (empty: the server's own accounts). */
  readonly user: string;
  readonly domain: string;
  /** The account's password, read now. */
  password(): Promise<string>;
}

/** How one target is reached, as the steps need to know it (run/ makes these from the job). */
export type TargetAccess = SshAccess | LocalAccess | SmbAccess;

/** A session just opened: what a target's session holds of the connection. */
export interface Connection {
  readonly shell: RemoteShell;
  readonly files: FileChannel;
  /** The target's numeric address as connected to (firewall peer, agent host). */
  readonly remoteAddress: string;
  /** This host's address on that connection: where the target can reach the workstation. */
  readonly localAddress: string;
  /** True for this machine itself: the agent listens on loopback, no firewall rule is opened. */
  readonly local: boolean;
  /** Where it went, for the log: `connected to deploy@web-1:22 (10.0.0.7)`. */
  readonly description: string;
}

/** Where the agent's files were put on the target, and how to start it. */
export interface PushedAgent {
  /** The run's directory on the target (`<runRoot>/<runId>`), removed by `removeFiles`. */
  readonly runDir: string;
  /** The agent bundle (one `.js` file). */
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
  /**
   * SHA-256 (hex) of the runtime binary that the start checks before running it (Windows: the
   * `node.exe` unpacked there from the pushed `node.tgz`).
   */
  readonly runtimeSha256?: string;
  /** Where the runtime is kept by its hash with the agent cache (Windows), outside `runDir`. */
  readonly runtimeCacheDir?: string;
}

/** What the transports' files and launchers use of a target's session (session.ts has the rest). */
export interface TransportSession extends Connection {
  readonly targetId: string;
  /**
   * This workstation's address as the target sees it (`$SSH_CLIENT` there, from the push's probe),
   * when known: the source the agent's firewall rule admits. Differs from `localAddress` behind NAT.
   */
  seenAs?: string;
  pushed?: PushedAgent;
  /** The agent stopped with exit status 0: it removed its program files itself. */
  agentRemovedFiles?: boolean;
}

/** Puts the agent and its runtime on a target, and takes them away again. */
export interface AgentFiles {
  /** Makes the run's directory, pushes what is missing there, and says how to start the agent. */
  push(session: TransportSession, runId: string, signal: AbortSignal): Promise<PushedAgent>;
  /** Removes what `push` put there (whatever it got to), keeping the agent's log. */
  remove(session: TransportSession, runId: string, signal: AbortSignal): Promise<void>;
}

/** What the agent is started with, and how its certificate is issued once it sent its key. */
export interface AgentStartRequest {
  /** Its configuration, everything but its certificate (agent/server/config.ts reads it). */
  readonly config: AgentConfigDocument;
  /** Names this run's agent on the target, so that a forced stop finds it and no other. */
  readonly marker: string;
  /**
   * Issues the agent's certificates on the public key it sent: the server leaf of its listener
   * (`certPem`, whose fingerprint the agent's `listening` line must repeat) and the client leaf of
   * its callbacks; both go on the dialogue's certificate line (agent/protocol/start-up.ts).
   */
  issue(publicKeyPem: string): {
    readonly certPem: string;
    readonly fingerprint256: string;
    readonly callbackCertPem?: string;
  };
  /**
   * Told of the agent as soon as it runs, before its start-up dialogue: from then on it is the
   * target's to stop, whatever happens to the start.
   */
  running(agent: RunningAgent): void;
}

/** An agent running on a target (what stopping it needs). */
export interface RunningAgent {
  /** Settles when it has ended: status 0 means it removed its program files itself. */
  readonly exited: Promise<{ readonly exitCode: number | null }>;
}

/**
 * How `agent` ended if it did within `ms`: its status, or undefined while it still runs (also when
 * `signal` aborts first).
 */
export function exitWithin(
  agent: RunningAgent,
  ms: number,
  signal?: AbortSignal,
): Promise<{ exitCode: number | null } | undefined> {
  const late = new Error("the agent did not exit in time");
  return withDeadline({ ms, timeout: late, signal }, () => agent.exited).catch(() => undefined);
}

/** An agent that started and listens. */
export interface StartedAgent extends RunningAgent {
  /** The port it listens on (the leased one, or the next free one there). */
  readonly port: number;
  /** Ports found taken before it. */
  readonly busy: readonly number[];
  /** Its certificate's SHA-256 fingerprint, which the workstation pins. */
  readonly fingerprint256: string;
}

/** Starts the agent on a target, and stops one that cannot be asked to stop. */
export interface AgentLauncher {
  start(session: TransportSession, request: AgentStartRequest, signal: AbortSignal): Promise<StartedAgent>;
  /**
   * Stops a started agent that did not answer Shutdown (or was never asked): it gets the chance to
   * remove its files and firewall rule, then is ended, and the channel it ran through is closed.
   * Never throws: what fails is logged.
   */
  forceStop(session: TransportSession, agent: RunningAgent, marker: string): Promise<void>;
}

/** One kind of target, composed in one place (transports/): how it is opened, pushed to and run. */
export interface TargetTransport<A extends TargetAccess = TargetAccess> {
  open(access: A, signal: AbortSignal): Promise<Connection>;
  readonly files: AgentFiles;
  readonly launcher: AgentLauncher;
  /**
   * `sumac clean`: removes what runs of sumac left on the target (agents, run directories,
   * firewall rules, services), keeping the logs; resolves with what it did, one line each.
   */
  clean(connection: Connection, targetId: string, signal: AbortSignal): Promise<string[]>;
}

/** The transports a run has, by the kind of target they serve; a kind without one is refused. */
export interface Transports {
  readonly ssh?: TargetTransport<SshAccess>;
  readonly local?: TargetTransport<LocalAccess>;
  readonly smb?: TargetTransport<SmbAccess>;
}
