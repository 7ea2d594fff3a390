/**
 * The steps that reach a target and put the agent there: connect, pushAgent, and their cleanup,
 * removeFiles and disconnect. Over SSH (actors/ssh) for Linux servers, over the local session
 * (actors/local) for `host: local`. See docs/target-steps.md.
 */
import { lookup } from "node:dns/promises";
import { createSocket } from "node:dgram";
import { isIP } from "node:net";
import { homedir } from "node:os";
import { join } from "node:path";
import type { JobTarget } from "../../cli/job/types.ts";
import { readSecret } from "../../cli/job/secret.ts";
import { LocalSession } from "../local/session.ts";
import { connectSsh } from "../ssh/connect.ts";
import type { SshAuth } from "../ssh/auth.ts";
import type { HostKeyPolicy } from "../ssh/host-key.ts";
import { KnownHostsFile } from "../ssh/known-hosts-file.ts";
import type { StepImpls } from "./steps.ts";
import type { SessionRegistry, TargetSession } from "./sessions.ts";
import { pushAgentTo } from "./agent-push.ts";
import type { AgentArtifacts } from "./artifacts.ts";

/** A job target the transport cannot serve (Windows waits for the SMB transport). */
export class TransportUnsupportedError extends Error {
  override readonly name = "TransportUnsupportedError";
  readonly code = "TRANSPORT_UNSUPPORTED";
  readonly retryable = false;
}

export interface TransportDeps {
  readonly targets: ReadonlyMap<string, JobTarget>;
  readonly sessions: SessionRegistry;
  readonly hostKeyPolicy: "strict" | "accept-new";
  /** Default `~/.ssh/known_hosts`. */
  readonly knownHostsPath?: string;
  /** Where run directories go on SSH targets; default /var/tmp/sumac. */
  readonly runRoot?: string;
  /** Where they go on this machine (local mode). */
  readonly localRunRoot: string;
  /** Keep the agent and runtime on targets by hash (job option `agentCache`). */
  readonly agentCache: boolean;
  /** The agent bundle and this machine's runtime, made once per run. */
  readonly artifacts: () => Promise<AgentArtifacts>;
  readonly log: (targetId: string, level: "info" | "warn" | "error", line: string) => void;
  readonly env?: NodeJS.ProcessEnv;
}

/** Deadline of the SSH login when the step's own deadline is longer. */
const CONNECT_MS = 30_000;

async function authOf(
  target: Extract<JobTarget, { transport: "ssh" }>,
  env: NodeJS.ProcessEnv,
): Promise<SshAuth> {
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
        source: `the job's key for ${target.id}`,
        ...(auth.passphrase === undefined ? {} : { passphrase: await readSecret(auth.passphrase, env) }),
      };
  }
}

/** This host's address on the route to `remote`: where the target can reach the workstation. */
async function localAddressTowards(remote: string): Promise<string> {
  const socket = createSocket(isIP(remote) === 6 ? "udp6" : "udp4");
  try {
    // A connected UDP socket sends nothing; the kernel only picks the route and source address.
    await new Promise<void>((resolve, reject) => {
      socket.once("error", reject);
      socket.connect(9, remote, () => resolve());
    });
    return socket.address().address;
  } finally {
    socket.close();
  }
}

export function createTransportSteps(
  deps: TransportDeps,
): Pick<StepImpls, "connect" | "disconnect" | "pushAgent" | "removeFiles"> {
  const env = deps.env ?? process.env;
  let knownHosts: KnownHostsFile | undefined;
  const targetOf = (id: string): JobTarget => {
    const target = deps.targets.get(id);
    if (target === undefined) throw new TransportUnsupportedError(`no target ${id} in the job`);
    return target;
  };

  return {
    async connect({ runId, target: ref, attempt }, signal) {
      const target = targetOf(ref.id);
      const sessionId = `${runId}/${target.id}/${attempt}`;
      if (target.transport === "smb")
        throw new TransportUnsupportedError(`${target.id}: Windows targets (SMB) cannot be deployed to yet`);
      if (target.transport === "local") {
        deps.sessions.add({
          sessionId,
          targetId: target.id,
          remoteAddress: "127.0.0.1",
          localAddress: "127.0.0.1",
          local: true,
          ...localSession(deps.localRunRoot),
        });
        return { sessionId };
      }
      const hostKey: HostKeyPolicy =
        target.hostKey !== undefined
          ? { kind: "pinned", fingerprints: [target.hostKey] }
          : {
              kind: "known-hosts",
              file: (knownHosts ??= new KnownHostsFile({
                path: deps.knownHostsPath ?? join(homedir(), ".ssh", "known_hosts"),
              })),
              policy: deps.hostKeyPolicy,
            };
      const session = await connectSsh({
        host: target.host,
        port: target.port,
        username: target.user,
        auth: await authOf(target, env),
        hostKey,
        timeoutMs: CONNECT_MS,
        signal,
        ...(target.become === undefined || target.user === "root"
          ? {}
          : {
              become:
                target.become.password === undefined
                  ? {}
                  : { password: await readSecret(target.become.password, env) },
            }),
        ...(deps.runRoot === undefined ? {} : { runRoot: deps.runRoot }),
        env,
      });
      try {
        const remoteAddress = isIP(target.host) !== 0 ? target.host : (await lookup(target.host)).address;
        const localAddress = await localAddressTowards(remoteAddress);
        const previous = [...Array(attempt).keys()].map((a) => `${runId}/${target.id}/${a}`);
        for (const stale of previous) await closeSession(deps.sessions, stale);
        deps.sessions.add({
          sessionId,
          targetId: target.id,
          shell: session,
          files: session,
          remoteAddress,
          localAddress,
          local: false,
        });
      } catch (error) {
        await session.close();
        throw error;
      }
      deps.log(target.id, "info", `connected to ${target.user}@${target.host}:${target.port}`);
      return { sessionId };
    },

    async disconnect({ sessionId }) {
      if (sessionId !== null) await closeSession(deps.sessions, sessionId);
    },

    async pushAgent({ runId, target, sessionId }, signal) {
      const session = deps.sessions.get(sessionId);
      const pushed = await pushAgentTo(session, {
        runId,
        targetId: target.id,
        cache: deps.agentCache,
        artifacts: deps.artifacts,
        signal,
        log: (line) => deps.log(target.id, "info", line),
      });
      session.pushed = pushed;
      return { agentDir: pushed.runDir };
    },

    async removeFiles({ runId, sessionId }, signal) {
      const session = deps.sessions.find(sessionId);
      if (session === undefined) return;
      const runDir = session.pushed?.runDir ?? `${session.files.runRoot}/${runId}`;
      for (const path of [runDir, ...(session.pushed?.extraPaths ?? [])])
        await session.files.remove(path, { become: true, signal, timeoutMs: 60_000 });
    },
  };
}

function localSession(runRoot: string): Pick<TargetSession, "shell" | "files"> {
  const local = new LocalSession(runRoot);
  return { shell: local, files: local };
}

async function closeSession(sessions: SessionRegistry, sessionId: string): Promise<void> {
  const session = sessions.find(sessionId);
  if (session === undefined) return;
  sessions.delete(sessionId);
  await session.shell.close().catch(() => undefined);
}

/** Where run directories go on this machine in local mode. */
export function defaultLocalRunRoot(env: NodeJS.ProcessEnv = process.env): string {
  if (process.getuid?.() === 0) return "/var/tmp/sumac";
  const state =
    env.XDG_STATE_HOME !== undefined && env.XDG_STATE_HOME !== ""
      ? env.XDG_STATE_HOME
      : join(homedir(), ".local", "state");
  return join(state, "sumac", "targets");
}
