/**
 * The agent as a process started through a target's shell (SSH, or this machine's): the command
 * that checks the bundle and runs it, the start-up dialogue on its stdin and stdout
 * (agent/protocol/start-up.ts), and the two ways of stopping one that cannot be asked to: by
 * signal for a local process, by a command that finds it on the target over SSH.
 */
import { oneLine } from "../../../base/text.ts";
import { shellQuote } from "../../ssh/become.ts";
import type { RemoteProcess } from "../../remote.ts";
import type { CertificateLine } from "../../../agent/protocol/start-up.ts";
import { AgentBundleMismatchError, AgentStartError } from "../errors.ts";

import {
  exitWithin,
  type AgentLauncher,
  type AgentStartRequest,
  type PushedAgent,
  type RunningAgent,
  type StartedAgent,
  type StepLog,
  type TransportSession,
} from "../transport.ts";
import { LineReader } from "./line-reader.ts";
import { ROOT_OWNED_FUNCTION } from "./runtime.ts";

/** What the start command prints when the bundle on the target is not the one sent. */
const BUNDLE_MISMATCH = "is not the agent bundle that was sent";

/** Deadline of the process's start and of each line of its start-up dialogue. */
const START_LINE_MS = 30_000;

/** How long the agent has to stop by itself after TERM (its files, its firewall rule) before KILL. */
const STOP_GRACE_S = 10;

/** How long a local agent has to exit after TERM before KILL. */
const LOCAL_EXIT_MS = 20_000;

/** What the start command prints when the Node it is to run is not root's own. */
const NODE_NOT_ROOTS =
  "is not root's own (it and every directory above it must be root's and writable by no one else), so it cannot run the agent as root";

/**
 * The command that starts the agent: it checks the bundle's SHA-256 first (the upload is not
 * checked on its own: this command runs anyway), then becomes Node running it. With
 * `rootOwnedNode` (over SSH, where it runs as root), it first refuses a Node that anyone but root
 * could replace; the bundle there is root's own already (actors/ssh/files.ts).
 */
export function startAgentCommand(
  pushed: Pick<PushedAgent, "nodePath" | "bundlePath" | "bundleSha256">,
  marker: string,
  rootOwnedNode = false,
): string {
  const bundle = shellQuote(pushed.bundlePath);
  const sha = shellQuote(pushed.bundleSha256.toLowerCase());
  const node = shellQuote(pushed.nodePath);
  const nodeCheck = rootOwnedNode
    ? `${ROOT_OWNED_FUNCTION}\nrootowned ${node} || { echo ${shellQuote(`sumac: ${pushed.nodePath} ${NODE_NOT_ROOTS}`)} >&2; exit 96; }\n`
    : "";
  return (
    nodeCheck +
    `[ "$(sha256sum -b < ${bundle} 2>/dev/null | cut -c1-64)" = ${sha} ] || ` +
    `{ echo ${shellQuote(`sumac: ${pushed.bundlePath} ${BUNDLE_MISMATCH}`)} >&2; exit 97; }; ` +
    `exec ${node} ${bundle} ${shellQuote(marker)}`
  );
}

/**
 * The command that stops an agent over SSH when it cannot be asked to (no session, or Shutdown not
 * answered). A signal sent through the SSH channel does not reach it when the login is root:
 * OpenSSH refuses `signal` requests for sessions run outside privilege separation, and closing
 * the channel leaves the process running. So the agent is found by its exact command line (the
 * Node, the bundle and the run's marker, as the start command exec'd it), sent TERM (it then
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

/** A running agent and the process it runs in. */
interface AgentProcess extends RunningAgent {
  readonly process: RemoteProcess;
}

/** How a forced stop ends an agent's process on its target. */
type ForcedStop = (session: TransportSession, agent: AgentProcess, marker: string) => Promise<void>;

/**
 * Starts the agent as a process through the session's shell (as root) and goes through its
 * start-up dialogue; `forcedStop` is how one that cannot be asked to stop is ended.
 */
function processLauncher(log: StepLog, forcedStop: ForcedStop, rootOwnedNode: boolean): AgentLauncher {
  return {
    async start(session, request, signal) {
      const pushed = session.pushed;
      if (pushed === undefined) throw new AgentStartError(`${session.targetId}: the agent was not pushed`);
      const agent = await session.shell.spawn(startAgentCommand(pushed, request.marker, rootOwnedNode), {
        startTimeoutMs: START_LINE_MS,
        signal,
        become: true,
      });
      const running: AgentProcess = { process: agent, exited: agent.exited };
      request.running(running);
      return { ...running, ...(await dialogue(session.targetId, agent, request, log, signal)) };
    },
    forceStop: (session, agent, marker) => forcedStop(session, agent as AgentProcess, marker),
  };
}

/** The start-up dialogue with a freshly spawned agent; resolves once it listens. */
async function dialogue(
  targetId: string,
  agent: RemoteProcess,
  request: AgentStartRequest,
  log: StepLog,
  signal: AbortSignal,
): Promise<Omit<StartedAgent, "exited">> {
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
        throw new AgentBundleMismatchError(`${targetId}: ${stderr.trim().slice(0, 500)}`, { cause: error });
      throw new AgentStartError(
        `${targetId}: the agent did not start: ${(error as Error).message}${stderr === "" ? "" : `; its stderr: ${stderr.trim().slice(0, 500)}`}`,
        { cause: error },
      );
    }
    let event: Record<string, unknown>;
    try {
      event = JSON.parse(line) as Record<string, unknown>;
    } catch {
      throw new AgentStartError(`${targetId}: the agent wrote '${line.slice(0, 200)}' instead of ${what}`);
    }
    if (event.event === "failed")
      throw new AgentStartError(`${targetId}: the agent failed to start: ${String(event.message)}`);
    return event;
  };
  agent.stdin.write(`${JSON.stringify(request.config)}\n`);
  const key = await next("its public key");
  if (key.event !== "publicKey" || typeof key.publicKeyPem !== "string")
    throw new AgentStartError(`${targetId}: the agent sent ${String(key.event)} instead of its public key`);
  const leaf = request.issue(key.publicKeyPem);
  const certificates: CertificateLine = {
    certPem: leaf.certPem,
    ...(leaf.callbackCertPem === undefined ? {} : { callbackCertPem: leaf.callbackCertPem }),
  };
  agent.stdin.write(`${JSON.stringify(certificates)}\n`);
  const listening = await next("its listening line");
  if (listening.event !== "listening" || typeof listening.port !== "number")
    throw new AgentStartError(`${targetId}: the agent sent ${String(listening.event)} instead of listening`);
  if (listening.fingerprint256 !== leaf.fingerprint256)
    throw new AgentStartError(`${targetId}: the agent listens with another certificate than the one issued`);
  // The agent's own words after start-up: its target's text, budgeted like its install output.
  lines.drain((line) => log(targetId, "debug", `agent: ${oneLine(line, 2000)}`, { source: "agent" }));
  return {
    port: listening.port,
    busy: Array.isArray(listening.busy)
      ? listening.busy.filter((p): p is number => typeof p === "number")
      : [],
    fingerprint256: leaf.fingerprint256,
  };
}

/** Stops the agent's process by signals, TERM then KILL: real ones for a local process. */
async function signalStop(log: StepLog, session: TransportSession, agent: AgentProcess): Promise<void> {
  agent.process.kill("TERM");
  if ((await exitWithin(agent, LOCAL_EXIT_MS)) === undefined) {
    log(
      session.targetId,
      "warn",
      `the agent did not exit within ${LOCAL_EXIT_MS / 1000} s of its stop: killed`,
    );
    agent.process.kill("KILL");
  }
}

/** The agent as a local process: stopped by real signals, TERM then KILL. */
export function localAgentLauncher(log: StepLog): AgentLauncher {
  return processLauncher(log, (session, agent) => signalStop(log, session, agent), false);
}

/**
 * The agent as a process over SSH: stopped by {@link stopAgentCommand}, run as root on the
 * target, since a signal request over the channel may be refused; then its channel is closed.
 */
export function sshAgentLauncher(log: StepLog): AgentLauncher {
  return processLauncher(
    log,
    async (session, agent, marker) => {
      const pushed = session.pushed;
      // Without its paths the command cannot find it: signals through the channel, as for a local one.
      if (pushed === undefined) return signalStop(log, session, agent);
      try {
        const result = await session.shell.exec(stopAgentCommand(pushed, marker), {
          become: true,
          timeoutMs: (STOP_GRACE_S + 20) * 1000,
        });
        const outcome = result.stdout.trim().split("\n").pop() ?? "";
        if (result.exitCode !== 0 || !["none", "stopped", "killed"].includes(outcome))
          log(
            session.targetId,
            "warn",
            `stopping the agent failed (exit ${String(result.exitCode)}): ${result.stderr.trim().slice(0, 300)}`,
          );
        else if (outcome === "killed")
          log(session.targetId, "warn", `the agent did not stop within ${STOP_GRACE_S} s of TERM: killed`);
        else
          log(
            session.targetId,
            "debug",
            outcome === "none" ? "no agent process was left to stop" : "the agent stopped on TERM",
          );
      } catch (error) {
        log(session.targetId, "warn", `stopping the agent failed: ${(error as Error).message}`);
      }
      agent.process.kill("TERM");
    },
    true,
  );
}
