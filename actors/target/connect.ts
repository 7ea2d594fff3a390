/**
 * The steps `connect` and `disconnect`: a target's session, over SSH (actors/ssh, docs/ssh.md) or,
 * for `host: local`, over this machine's own processes and files (actors/local). Secrets are read
 * only here, when a login needs them. The session is kept in the run's SessionRegistry under the
 * `sessionId` the machine records; see docs/target-steps.md.
 */
import { errorClass } from "../../base/errors.ts";
import { lookup } from "node:dns/promises";
import { createSocket } from "node:dgram";
import { isIP } from "node:net";
import { homedir } from "node:os";
import { join } from "node:path";
import { SecretUnavailableError, readSecret } from "../../run/job/secret.ts";
import type { JobTarget, SshTarget } from "../../run/job/types.ts";
import { LocalSession, localRoots } from "../local/session.ts";
import type { SshAuth } from "../ssh/auth.ts";
import type { BecomeConfig } from "../ssh/become.ts";
import { connectSsh } from "../ssh/connect.ts";
import type { HostKeyPolicy } from "../ssh/host-key.ts";
import { KnownHostsFile } from "../ssh/known-hosts-file.ts";
import type { SessionRegistry, TargetSession } from "./sessions.ts";
import type { StepImpls } from "./steps.ts";

/** A target this transport cannot serve yet (Windows waits for the SMB transport). */
export class TransportUnsupportedError extends errorClass("TRANSPORT_UNSUPPORTED") {}

/** The machine named a target the job does not have (a bug, or a snapshot of another job). */
export class UnknownTargetError extends errorClass("UNKNOWN_TARGET") {}

/** A secret of the target (key, passphrase, password) cannot be read; nothing was sent. */
export class TargetSecretError extends errorClass("SECRET_UNAVAILABLE") {}

/** The target's address, or this host's address towards it, cannot be told. */
export class TargetAddressError extends errorClass("UNREACHABLE") {}

/** Who logs a step's lines. */
export type StepLog = (targetId: string, level: "debug" | "info" | "warn" | "error", line: string) => void;

export interface ConnectDeps {
  /** The job's targets by id. */
  readonly targets: ReadonlyMap<string, JobTarget>;
  readonly sessions: SessionRegistry;
  /** For targets without a pinned `hostKey` (job option `hostKeyPolicy`). */
  readonly hostKeyPolicy: "strict" | "accept-new";
  /** Default `~/.ssh/known_hosts`. One file object is shared by every connection of the run. */
  readonly knownHostsPath?: string;
  /** Run root on SSH targets; default `/var/tmp/sumac`. */
  readonly runRoot?: string;
  /** Run root for `host: local`; default {@link localRoots}. */
  readonly localRunRoot?: string;
  readonly log: StepLog;
  /** Where secrets in environment variables and SSH_AUTH_SOCK are read; default `process.env`. */
  readonly env?: NodeJS.ProcessEnv;
  /** Deadline of TCP connect, key exchange and login; default 30 s (the step's own also applies). */
  readonly connectTimeoutMs?: number;
}

const CONNECT_MS = 30_000;
const CLOSE_MS = 5_000;

/**
 * The error a failed connect reports: the transport's errors as they are (their code, retryable
 * flag and a message naming host and port); a secret that cannot be read names the target.
 */
export function connectError(target: JobTarget, error: unknown): unknown {
  if (error instanceof SecretUnavailableError)
    return new TargetSecretError(`cannot log in to ${target.id}: ${error.message}`, { cause: error });
  return error;
}

async function authOf(target: SshTarget, env: NodeJS.ProcessEnv): Promise<SshAuth> {
  const auth = target.auth;
  switch (auth.method) {
    case "agent":
      return { kind: "agent" };
    case "password":
      return { kind: "password", password: await readSecret(auth.password, env) };
    case "key":
      return {
        kind: "key",
        privateKey: await readSecret(auth.key, env),
        source: `the key of target ${target.id}`,
        ...(auth.passphrase === undefined ? {} : { passphrase: await readSecret(auth.passphrase, env) }),
      };
  }
}

/** How a login other than root becomes root: sudo, with its password only when the job gives one. */
async function becomeOf(target: SshTarget, env: NodeJS.ProcessEnv): Promise<BecomeConfig | undefined> {
  if (target.user === "root" || target.become === undefined) return undefined;
  const password = target.become.password;
  return password === undefined ? {} : { password: await readSecret(password, env) };
}

/** This host's source address on the route to `remote` (what a TCP socket to it gets). */
export async function localAddressTowards(remote: string): Promise<string> {
  const socket = createSocket(isIP(remote) === 6 ? "udp6" : "udp4");
  try {
    // connect() on a UDP socket sends nothing: the kernel only chooses the route and source.
    await new Promise<void>((resolve, reject) => {
      socket.once("error", reject);
      socket.connect(9, remote, () => resolve());
    });
    return socket.address().address;
  } finally {
    socket.close();
  }
}

/** Numeric addresses a session may carry from its socket (a transport that knows them says so). */
interface SocketAddresses {
  readonly remoteAddress?: unknown;
  readonly localAddress?: unknown;
}

/**
 * Both ends of the connection, numeric. From the session's socket when it exposes them; otherwise
 * the address `host` resolves to as `net.connect` resolves it (dns.lookup, first answer) and the
 * source address the kernel picks towards it, which is what the socket has.
 */
async function addressesOf(session: object, host: string): Promise<{ remote: string; local: string }> {
  const s = session as SocketAddresses;
  if (
    typeof s.remoteAddress === "string" &&
    typeof s.localAddress === "string" &&
    isIP(s.remoteAddress) !== 0
  )
    return { remote: s.remoteAddress.replace(/^::ffff:/, ""), local: s.localAddress.replace(/^::ffff:/, "") };
  const remote = isIP(host) !== 0 ? host : (await lookup(host)).address;
  return { remote, local: await localAddressTowards(remote) };
}

async function closeQuietly(session: TargetSession): Promise<void> {
  const close = session.shell.close();
  const files = session.files === (session.shell as unknown) ? undefined : session.files.close();
  await Promise.race([
    Promise.allSettled([close, files]),
    new Promise((resolve) => setTimeout(resolve, CLOSE_MS).unref()),
  ]);
}

/** Closes and forgets every session of `targetId` (stale ones from an earlier attempt). */
async function dropTarget(sessions: SessionRegistry, targetId: string): Promise<void> {
  for (;;) {
    let stale: TargetSession;
    try {
      stale = sessions.forTarget(targetId);
    } catch {
      return;
    }
    sessions.delete(stale.sessionId);
    await closeQuietly(stale);
  }
}

/** The steps `connect` and `disconnect` over the job's targets. */
export function createConnectSteps(deps: ConnectDeps): Pick<StepImpls, "connect" | "disconnect"> {
  const env = deps.env ?? process.env;
  let knownHosts: KnownHostsFile | undefined;
  const hostKeyOf = (target: SshTarget): HostKeyPolicy =>
    target.hostKey !== undefined
      ? { kind: "pinned", fingerprints: [target.hostKey] }
      : {
          kind: "known-hosts",
          file: (knownHosts ??= new KnownHostsFile({
            path: deps.knownHostsPath ?? join(homedir(), ".ssh", "known_hosts"),
          })),
          policy: deps.hostKeyPolicy,
        };

  async function openSsh(target: SshTarget, sessionId: string, signal: AbortSignal): Promise<TargetSession> {
    const become = await becomeOf(target, env);
    const ssh = await connectSsh({
      host: target.host,
      port: target.port,
      username: target.user,
      auth: await authOf(target, env),
      hostKey: hostKeyOf(target),
      timeoutMs: deps.connectTimeoutMs ?? CONNECT_MS,
      signal,
      env,
      ...(become === undefined ? {} : { become }),
      ...(deps.runRoot === undefined ? {} : { runRoot: deps.runRoot }),
    });
    try {
      const { remote, local } = await addressesOf(ssh, target.host).catch((cause: unknown) => {
        throw new TargetAddressError(
          `connected to ${target.host}:${target.port} but cannot tell its numeric address: ${(cause as Error).message}`,
          { cause },
        );
      });
      return {
        sessionId,
        targetId: target.id,
        shell: ssh,
        files: ssh,
        remoteAddress: remote,
        localAddress: local,
        local: false,
      };
    } catch (error) {
      await ssh.close().catch(() => undefined);
      throw error;
    }
  }

  return {
    async connect({ runId, target: ref, attempt }, signal) {
      const target = deps.targets.get(ref.id);
      if (target === undefined) throw new UnknownTargetError(`the job has no target ${ref.id}`);
      if (target.transport === "smb")
        throw new TransportUnsupportedError(
          `${target.id}: Windows targets (SMB) cannot be deployed to yet; remove it from the job or give it os: linux over SSH`,
        );
      signal.throwIfAborted();
      await dropTarget(deps.sessions, target.id);
      const sessionId = `${runId}/${target.id}/${attempt}`;
      let session: TargetSession;
      if (target.transport === "local") {
        const local = new LocalSession(deps.localRunRoot ?? localRoots(env).runRoot);
        session = {
          sessionId,
          targetId: target.id,
          shell: local,
          files: local,
          remoteAddress: "127.0.0.1",
          localAddress: "127.0.0.1",
          local: true,
        };
      } else {
        try {
          session = await openSsh(target, sessionId, signal);
        } catch (error) {
          throw connectError(target, error);
        }
      }
      if (signal.aborted) {
        await closeQuietly(session);
        throw signal.reason as Error;
      }
      deps.sessions.add(session);
      deps.log(
        target.id,
        "info",
        target.transport === "local"
          ? `using this machine (run root ${session.files.runRoot})`
          : `connected to ${target.user}@${target.host}:${target.port} (${session.remoteAddress})`,
      );
      return { sessionId };
    },

    async disconnect({ sessionId, target }) {
      const session = deps.sessions.find(sessionId);
      if (session !== undefined) {
        deps.sessions.delete(session.sessionId);
        await closeQuietly(session);
      }
      // A connect the machine never heard of (cancelled while it finished) leaves one too.
      await dropTarget(deps.sessions, target.id);
    },
  };
}
