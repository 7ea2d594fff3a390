/**
 * Linux servers over SSH, composed in one place: a session is one `ssh2` connection (actors/ssh,
 * docs/ssh.md) that serves as both shell and file channel, the host key always verified (the job's
 * pin, else known_hosts under the job's policy); the agent's files are the POSIX push; the agent is
 * a process started through the connection, stopped by a command that finds it when it cannot be
 * asked to.
 */
import { lookup } from "node:dns/promises";
import { createSocket } from "node:dgram";
import { isIP } from "node:net";
import { homedir } from "node:os";
import { join } from "node:path";
import { withDeadline } from "../../../base/deadline.ts";
import { connectSsh } from "../../ssh/connect.ts";
import type { HostKeyPolicy } from "../../ssh/host-key.ts";
import { KnownHostsFile } from "../../ssh/known-hosts-file.ts";
import { TargetAddressError } from "../errors.ts";
import { sshAgentLauncher } from "../posix/agent-process.ts";
import { cleanPosixTarget } from "../posix/clean.ts";
import { posixAgentFiles, type PosixFilesDeps } from "../posix/agent-files.ts";
import type { SshAccess, StepLog, TargetTransport } from "../transport.ts";

export interface SshTransportDeps {
  /** For targets without a pinned `hostKey` (job option `hostKeyPolicy`). */
  readonly hostKeyPolicy: "strict" | "accept-new";
  /** Default `~/.ssh/known_hosts`. One file object is shared by every connection of the run. */
  readonly knownHostsPath?: string;
  /** Run root on targets; default `/var/tmp/sumac`. */
  readonly runRoot?: string;
  /** Where SSH_AUTH_SOCK is read; default `process.env`. */
  readonly env?: NodeJS.ProcessEnv;
  /** Deadline of TCP connect, key exchange and login; default 30 s (the step's own also applies). */
  readonly connectTimeoutMs?: number;
  /** The agent's files on the target. */
  readonly agentFiles: PosixFilesDeps;
  readonly log: StepLog;
}

const CONNECT_MS = 30_000;
/** Deadline of resolving a target's name again for its numeric address (it was just connected to). */
const LOOKUP_MS = 10_000;

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
async function addressesOf(
  session: object,
  host: string,
  signal: AbortSignal,
): Promise<{ remote: string; local: string }> {
  const s = session as SocketAddresses;
  if (
    typeof s.remoteAddress === "string" &&
    typeof s.localAddress === "string" &&
    isIP(s.remoteAddress) !== 0
  )
    return { remote: s.remoteAddress.replace(/^::ffff:/, ""), local: s.localAddress.replace(/^::ffff:/, "") };
  const resolving = new Error(`resolving ${host} took over ${LOOKUP_MS} ms`);
  const remote =
    isIP(host) !== 0
      ? host
      : (await withDeadline({ ms: LOOKUP_MS, timeout: resolving, signal }, () => lookup(host))).address;
  return { remote, local: await localAddressTowards(remote) };
}

export function sshTransport(deps: SshTransportDeps): TargetTransport<SshAccess> {
  const env = deps.env ?? process.env;
  let knownHosts: KnownHostsFile | undefined;
  const hostKeyOf = (target: SshAccess): HostKeyPolicy =>
    target.hostKey !== undefined
      ? { kind: "pinned", fingerprints: [target.hostKey] }
      : {
          kind: "known-hosts",
          file: (knownHosts ??= new KnownHostsFile({
            path: deps.knownHostsPath ?? join(homedir(), ".ssh", "known_hosts"),
          })),
          policy: deps.hostKeyPolicy,
        };

  return {
    async open(target, signal) {
      const become = await target.become();
      const ssh = await connectSsh({
        host: target.host,
        port: target.port,
        username: target.user,
        auth: await target.credentials(),
        hostKey: hostKeyOf(target),
        timeoutMs: deps.connectTimeoutMs ?? CONNECT_MS,
        signal,
        env,
        ...(become === undefined ? {} : { become }),
        ...(deps.runRoot === undefined ? {} : { runRoot: deps.runRoot }),
      });
      try {
        const { remote, local } = await addressesOf(ssh, target.host, signal).catch((cause: unknown) => {
          throw new TargetAddressError(
            `connected to ${target.host}:${target.port} but cannot tell its numeric address: ${(cause as Error).message}`,
            { cause },
          );
        });
        return {
          shell: ssh,
          files: ssh,
          remoteAddress: remote,
          localAddress: local,
          local: false,
          description: `connected to ${target.user}@${target.host}:${target.port} (${remote})`,
        };
      } catch (error) {
        await ssh.close().catch(() => undefined);
        throw error;
      }
    },
    files: posixAgentFiles(deps.agentFiles),
    launcher: sshAgentLauncher(deps.log),
    clean: (connection, _targetId, signal) => cleanPosixTarget(connection, signal),
  };
}
