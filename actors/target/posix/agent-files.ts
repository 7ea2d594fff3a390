/**
 * The agent's files on a POSIX target (over SSH, or this machine's own): push makes the run
 * directory `<runRoot>/<runId>` with `staging/`, probes the target for Node >= 18 (runtime.ts),
 * uploads the agent bundle (checked by SHA-256 on the target by the command that starts it) and,
 * where no usable Node is found, this workstation's own Node binary, gzip-compressed, unpacked with
 * `gzip -dc` and checked again. With the agent cache, bundle and runtime live in
 * `<runRoot>/cache/<sha256>/` and are reused while their hash matches. remove takes the run
 * directory away; the agent's log directory is outside it and stays.
 */
import { basename, posix } from "node:path";
import type { BuiltAgent } from "../../../agent/build.ts";
import { localRoots } from "../../local/session.ts";
import { shellQuote } from "../../ssh/become.ts";
import { checkRunName } from "../../ssh/files.ts";
import {
  AgentBuildError,
  NoGzipError,
  NoRuntimeError,
  PushCommandError,
  RuntimeHashError,
} from "../errors.ts";

import type { AgentFiles, StepLog, PushedAgent, TransportSession } from "../transport.ts";
import {
  cachedCommand,
  parseProbe,
  probeCommand,
  runtimeFits,
  MIN_NODE_MAJOR,
  type RuntimeArtifact,
} from "./runtime.ts";

export interface PosixFilesDeps {
  /** Keep bundle and runtime on targets by hash (job option `agentCache`); default: remove them. */
  readonly agentCache: boolean;
  /** The run's agent bundle, built once (agent-bundle.ts `agentBundleOnce`). */
  readonly bundle: () => Promise<BuiltAgent>;
  /** This workstation's Node, compressed once (runtime.ts `runtimeOnce`); called only when needed. */
  readonly runtime: () => Promise<RuntimeArtifact>;
  readonly log: StepLog;
  /** Where the agent's logs go on SSH targets; default `/var/log/sumac` (`<logRoot>/<runId>`). */
  readonly logRoot?: string;
  /** Where they go in local mode; default {@link localRoots}. */
  readonly localLogRoot?: string;
  /** Deadline of each command (probe, unpacking, removal); default 60 s. */
  readonly commandTimeoutMs?: number;
  /** Deadline of each upload; default 10 minutes (the runtime is tens of MB). */
  readonly uploadTimeoutMs?: number;
}

const COMMAND_MS = 60_000;
const UPLOAD_MS = 10 * 60_000;

/** Why a target got no Node: what was found, and what to configure. */
export function noNodeMessage(targetId: string, found: readonly string[]): string {
  const seen = found.length === 0 ? "no Node found" : `found only ${found.join(", ")}`;
  return `${targetId} has no Node >= ${MIN_NODE_MAJOR} (${seen})`;
}

export function posixAgentFiles(deps: PosixFilesDeps): AgentFiles {
  const commandMs = deps.commandTimeoutMs ?? COMMAND_MS;
  const uploadMs = deps.uploadTimeoutMs ?? UPLOAD_MS;

  async function run(
    session: TransportSession,
    command: string,
    what: string,
    signal: AbortSignal,
    become = false,
  ): Promise<string> {
    const result = await session.shell.exec(command, { timeoutMs: commandMs, signal, become });
    if (result.exitCode !== 0)
      throw new PushCommandError(
        `${what} on ${session.targetId} failed (exit ${String(result.exitCode ?? result.signal)}): ${result.stderr.trim().slice(0, 300)}`,
      );
    return result.stdout;
  }

  /**
   * Puts the runtime at `nodePath` (gzip'd on the wire); returns nothing until it is checked. The
   * upload's own hash is compared here; on the target one command unpacks it, hashes the binary,
   * and only when that is the binary sent installs it and runs it once (a binary that does not
   * run there, for want of a C library, says so now). No command of its own checks the .gz: the
   * binary's hash covers it.
   */
  async function pushRuntime(
    session: TransportSession,
    runtime: RuntimeArtifact,
    nodePath: string,
    signal: AbortSignal,
  ): Promise<void> {
    const gz = `${nodePath}.gz`;
    const part = `${nodePath}.part`;
    await session.files.put(runtime.gzPath, gz, {
      mode: 0o600,
      sha256: runtime.gzSha256,
      signal,
      timeoutMs: uploadMs,
      checkOnTarget: false,
    });
    const q = shellQuote;
    const result = await session.shell.exec(
      [
        `gzip -dc ${q(gz)} > ${q(part)} && rm -f ${q(gz)} || exit $?`,
        `h=$(sha256sum ${q(part)}) || exit $?`,
        `set -- $h`,
        `echo "sha256 $1"`,
        `if [ "$1" != ${q(runtime.sha256)} ]; then rm -f ${q(part)}; exit 3; fi`,
        `chmod 755 ${q(part)} && mv -f ${q(part)} ${q(nodePath)} && echo ran || exit $?`,
        `exec ${q(nodePath)} --version`,
      ].join("; "),
      // Over SSH as root: where the login becomes root, the directory is root's own.
      { timeoutMs: commandMs, signal, become: !session.local },
    );
    const lines = result.stdout.split("\n");
    const hashed = lines.find((l) => l.startsWith("sha256 "));
    const ran = lines.indexOf("ran");
    const stderr = result.stderr.trim().slice(0, 300);
    if (hashed === undefined || (ran < 0 && hashed.slice(7) === runtime.sha256))
      throw new PushCommandError(
        `unpacking the runtime on ${session.targetId} failed (exit ${String(result.exitCode ?? result.signal)}): ${stderr}`,
      );
    if (hashed.slice(7) !== runtime.sha256)
      throw new RuntimeHashError(
        `the runtime unpacked on ${session.targetId} at ${nodePath} is not the binary sent (SHA-256 ${hashed.slice(7) || "none"}, expected ${runtime.sha256})`,
      );
    const version = lines
      .slice(ran + 1)
      .join("\n")
      .trim();
    if (result.exitCode !== 0 || version !== runtime.version)
      throw new NoRuntimeError(
        `${session.targetId}: the pushed Node ${runtime.version} does not run there (${(stderr || version).slice(0, 300)}): install Node ${MIN_NODE_MAJOR} or later on the target`,
      );
  }

  /**
   * Makes `<runRoot>/cache/<sha256>`. The run root may be root's (made through sudo for a login
   * that is not root), so where the login cannot make `cache` there, root makes it for the login.
   */
  async function cacheDirFor(session: TransportSession, dir: string, signal: AbortSignal): Promise<void> {
    try {
      await session.files.mkdir(dir, { signal, mode: 0o700 });
      return;
    } catch (error) {
      if ((error as { code?: unknown }).code !== "COMMAND_FAILED") throw error;
    }
    const cache = shellQuote(posix.dirname(dir));
    const made = await session.shell.exec(
      `mkdir -p -m 0700 -- ${cache} && { [ -z "\${SUDO_UID:-}" ] || chown -- "$SUDO_UID" ${cache}; }`,
      { timeoutMs: commandMs, signal, become: true },
    );
    if (made.exitCode !== 0)
      throw new PushCommandError(
        `cannot make the agent cache ${posix.dirname(dir)} on ${session.targetId}: ${made.stderr.trim().slice(0, 300)}`,
      );
    await session.files.mkdir(dir, { signal, mode: 0o700 });
  }

  return {
    async push(session, runId, signal) {
      const target = { id: session.targetId };
      const log = (line: string): void => deps.log(target.id, "info", line);
      const bundle = await deps.bundle().catch((cause: unknown) => {
        throw new AgentBuildError(`cannot build the agent bundle: ${(cause as Error).message}`, { cause });
      });
      const { files } = session;
      const runDir = await files.createRunDir(runId, { signal, subdirs: ["staging"] });
      const stagingDir = `${runDir}/staging`;
      const cacheDir = `${files.runRoot}/cache`;
      const bundleName = basename(bundle.path);
      const bundlePath = deps.agentCache
        ? `${cacheDir}/${bundle.sha256}/${bundleName}`
        : `${runDir}/${bundleName}`;
      const putBundle = (): Promise<unknown> =>
        files.put(bundle.path, bundlePath, {
          mode: 0o644,
          sha256: bundle.sha256,
          signal,
          timeoutMs: uploadMs,
          // The agent's start command checks it (startAgentCommand), in the command it runs anyway.
          checkOnTarget: false,
        });

      // Probe and (without the cache) the bundle go at once: each is a round trip. Over SSH, only
      // a Node that root owns will do (it runs as root), and the cache, root's own where the login
      // becomes root, is looked at by root, in a command of its own beside the probe.
      const cachedBundle: [string, string][] = deps.agentCache ? [[bundlePath, bundle.sha256]] : [];
      const probe = session.local
        ? probeCommand([process.execPath], cachedBundle)
        : probeCommand([], [], true);
      const [out, cachedOut] = await Promise.all([
        run(session, probe, "looking for Node", signal),
        session.local || !deps.agentCache
          ? ""
          : run(session, cachedCommand(cachedBundle), "checking the cache", signal, true),
        deps.agentCache ? undefined : putBundle(),
      ]);
      const facts = parseProbe(`${out}\n${cachedOut}`);
      if (facts.seenAs !== undefined && !session.local) {
        if (facts.seenAs !== session.localAddress)
          log(
            `the target sees this workstation as ${facts.seenAs} (here ${session.localAddress}): its firewall rule admits ${facts.seenAs}`,
          );
        session.seenAs = facts.seenAs;
      }
      if (deps.agentCache) {
        if (facts.cached.has(bundlePath)) log(`agent bundle ${bundleName} reused from the cache`);
        else {
          await cacheDirFor(session, `${cacheDir}/${bundle.sha256}`, signal);
          await putBundle();
        }
      }

      let nodePath: string;
      let runtimePushed = false;
      if (facts.node !== undefined) {
        nodePath = facts.node.path;
        log(`Node ${facts.node.version} at ${nodePath}`);
      } else {
        const runtime = await deps.runtime().catch((cause: unknown) => {
          throw new NoRuntimeError(
            `${noNodeMessage(target.id, facts.rejected)}, and this workstation's Node cannot be prepared for pushing (${(cause as Error).message}): install Node ${MIN_NODE_MAJOR} or later on the target`,
            { cause },
          );
        });
        if (!runtimeFits(facts.uname, runtime.platform, runtime.arch))
          throw new NoRuntimeError(
            `${noNodeMessage(target.id, facts.rejected)}, and it is '${facts.uname || "unknown"}' while this workstation's Node is for ${runtime.platform}/${runtime.arch}, so it cannot be pushed: install Node ${MIN_NODE_MAJOR} or later on the target`,
          );
        if (!facts.gzip)
          throw new NoGzipError(
            `${noNodeMessage(target.id, facts.rejected)}, and no gzip to unpack the pushed runtime: install gzip, or Node ${MIN_NODE_MAJOR} or later, on the target`,
          );
        const dir = deps.agentCache ? `${cacheDir}/${runtime.sha256}` : runDir;
        nodePath = `${dir}/node`;
        let reused = false;
        if (deps.agentCache) {
          const check = parseProbe(
            await run(
              session,
              cachedCommand([[nodePath, runtime.sha256]]),
              "checking the cache",
              signal,
              !session.local,
            ),
          );
          reused = check.cached.has(nodePath);
          if (!reused) await cacheDirFor(session, dir, signal);
        }
        if (reused) log(`runtime Node ${runtime.version} reused from the cache`);
        else {
          await pushRuntime(session, runtime, nodePath, signal);
          log(`runtime Node ${runtime.version} pushed (no Node >= ${MIN_NODE_MAJOR} there)`);
        }
        runtimePushed = true;
      }

      const logRoot = session.local
        ? (deps.localLogRoot ?? localRoots().logRoot)
        : (deps.logRoot ?? "/var/log/sumac");
      const pushed: PushedAgent = {
        runDir,
        bundlePath,
        bundleSha256: bundle.sha256,
        nodePath,
        runtimePushed,
        stagingDir,
        logDir: `${logRoot}/${checkRunName(runId)}`,
        // The login's upload spool (with become) is outside the run directory the agent removes.
        extraPaths: files.uploadDir === undefined ? [] : [files.uploadDir],
      };
      return pushed;
    },

    async remove(session, runId, signal) {
      const target = { id: session.targetId };
      const runDir = session.pushed?.runDir ?? `${session.files.runRoot}/${checkRunName(runId)}`;
      // The login's upload spool goes too when the push failed before it could say so.
      const spool = session.files.uploadDir;
      const extra = [
        ...new Set([...(session.pushed?.extraPaths ?? []), ...(spool === undefined ? [] : [spool])]),
      ];
      if (session.agentRemovedFiles === true && extra.length === 0) {
        // The agent removed the run directory before it exited 0: no command (and no new SSH
        // session on the target) for what is gone already.
        deps.log(target.id, "debug", `${runDir} was removed by the agent`);
        return;
      }
      for (const path of [runDir, ...extra]) {
        // As root: the agent (root) may have written into staging. A login that cannot become
        // root removes what it can as itself, which is everything it made.
        try {
          await session.files.remove(path, { become: true, signal, timeoutMs: commandMs });
        } catch (error) {
          if ((error as { code?: unknown }).code !== "BECOME_FAILED") throw error;
          await session.files.remove(path, { signal, timeoutMs: commandMs });
        }
      }
    },
  };
}
