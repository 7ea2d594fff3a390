/**
 * pushAgent's work on one target: the run directory, the agent bundle, a runtime when the target
 * has no Node >= 18, and the staging directory; every upload checked by SHA-256 on the target.
 * With the agent cache, bundle and runtime are kept under `<runRoot>/cache/` by hash and reused.
 */
import { basename, posix } from "node:path";
import { shellQuote } from "../ssh/become.ts";
import type { PushedAgent, TargetSession } from "./sessions.ts";
import type { AgentArtifacts } from "./artifacts.ts";

/** The agent cannot be run on the target: no usable Node and no runtime to push. */
export class PushError extends Error {
  override readonly name = "PushError";
  readonly code: "NO_RUNTIME" | "PUSH_COMMAND_FAILED";
  readonly retryable = false;
  constructor(code: PushError["code"], message: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
  }
}

/** The oldest Node the agent bundle runs on (agent/build.ts targets node18). */
export const MIN_NODE_MAJOR = 18;

/** Probes for Node (first usable one wins) and the machine type, one line each. */
const PROBE = [
  'for n in "$(command -v node 2>/dev/null)" /usr/bin/node /usr/local/bin/node /usr/bin/nodejs; do',
  '  [ -n "$n" ] && [ -x "$n" ] && echo "node $n $("$n" --version 2>/dev/null)";',
  "done;",
  'echo "uname $(uname -sm)";',
  'command -v gzip >/dev/null 2>&1 && echo "gzip yes" || echo "gzip no"',
].join("\n");

export interface TargetFacts {
  readonly node?: { readonly path: string; readonly version: string };
  readonly uname: string;
  readonly gzip: boolean;
}

/** Reads the probe's output; the first Node of major >= 18 is taken. */
export function parseProbe(stdout: string): TargetFacts {
  let node: TargetFacts["node"];
  let uname = "";
  let gzip = false;
  for (const line of stdout.split("\n")) {
    const [kind, ...rest] = line.trim().split(" ");
    if (kind === "node" && node === undefined && rest.length >= 2) {
      const [path = "", version = ""] = rest;
      const major = /^v(\d+)\./.exec(version)?.[1];
      if (major !== undefined && Number(major) >= MIN_NODE_MAJOR) node = { path, version };
    } else if (kind === "uname") uname = rest.join(" ");
    else if (kind === "gzip") gzip = rest[0] === "yes";
  }
  return { ...(node === undefined ? {} : { node }), uname, gzip };
}

export interface PushOptions {
  readonly runId: string;
  readonly targetId: string;
  readonly cache: boolean;
  readonly artifacts: () => Promise<AgentArtifacts>;
  readonly signal: AbortSignal;
  readonly log: (line: string) => void;
  /** Where the agent's log goes; default /var/log/sumac/<runId>. */
  readonly logDir?: string;
}

const COMMAND_MS = 60_000;

async function run(
  session: TargetSession,
  command: string,
  signal: AbortSignal,
  become = false,
): Promise<string> {
  const result = await session.shell.exec(command, { timeoutMs: COMMAND_MS, signal, become });
  if (result.exitCode !== 0)
    throw new PushError(
      "PUSH_COMMAND_FAILED",
      `on ${session.targetId}: '${command.split("\n")[0]}' exited ${result.exitCode ?? result.signal}: ${result.stderr.trim().slice(0, 300)}`,
    );
  return result.stdout;
}

/** Is `path` on the target a file with this SHA-256? */
async function hasFile(
  session: TargetSession,
  path: string,
  sha256: string,
  signal: AbortSignal,
): Promise<boolean> {
  const r = await session.shell.exec(`sha256sum ${shellQuote(path)} 2>/dev/null`, {
    timeoutMs: COMMAND_MS,
    signal,
  });
  return r.exitCode === 0 && r.stdout.startsWith(sha256);
}

export async function pushAgentTo(session: TargetSession, options: PushOptions): Promise<PushedAgent> {
  const { signal } = options;
  const artifacts = await options.artifacts();
  const files = session.files;
  const runDir = await files.createRunDir(options.runId, { signal });
  const stagingDir = `${runDir}/staging`;
  const cacheDir = `${files.runRoot}/cache`;
  if (options.cache) await files.mkdir(cacheDir, { signal, mode: 0o700 });

  // The probe, the staging directory and the bundle's upload go at once: each is a round trip.
  const bundleName = basename(artifacts.bundle.path);
  const bundlePath = options.cache ? `${cacheDir}/${bundleName}` : `${runDir}/${bundleName}`;
  const putBundle = async () => {
    if (options.cache && (await hasFile(session, bundlePath, artifacts.bundle.sha256, signal))) {
      options.log(`agent bundle ${bundleName} reused from the cache`);
      return;
    }
    await files.put(artifacts.bundle.path, bundlePath, {
      mode: 0o644,
      sha256: artifacts.bundle.sha256,
      signal,
    });
  };
  const [probe] = await Promise.all([
    run(session, PROBE, signal),
    files.mkdir(stagingDir, { signal, mode: 0o700 }),
    putBundle(),
  ]);
  const facts = parseProbe(probe);

  // The runtime.
  let nodePath: string;
  let runtimePushed = false;
  if (facts.node !== undefined) {
    nodePath = facts.node.path;
    options.log(`Node ${facts.node.version} found at ${nodePath}`);
  } else {
    const runtime = await artifacts.runtime().catch((cause: unknown) => {
      throw new PushError(
        "NO_RUNTIME",
        `${options.targetId} has no Node >= ${MIN_NODE_MAJOR} and this workstation's Node cannot be pushed: ${(cause as Error).message}; install Node ${MIN_NODE_MAJOR} or later on the target`,
        { cause },
      );
    });
    if (facts.uname !== runtime.uname)
      throw new PushError(
        "NO_RUNTIME",
        `${options.targetId} has no Node >= ${MIN_NODE_MAJOR}, and it is '${facts.uname}' while this workstation's Node is for '${runtime.uname}': install Node ${MIN_NODE_MAJOR} or later on the target`,
      );
    if (!facts.gzip)
      throw new PushError(
        "NO_RUNTIME",
        `${options.targetId} has no Node >= ${MIN_NODE_MAJOR} and no gzip to unpack the pushed runtime: install either on the target`,
      );
    const dir = options.cache ? cacheDir : runDir;
    nodePath = `${dir}/node-${runtime.sha256.slice(0, 16)}`;
    if (options.cache && (await hasFile(session, nodePath, runtime.sha256, signal))) {
      options.log(`runtime ${runtime.version} reused from the cache`);
    } else {
      const gz = `${nodePath}.gz`;
      const started = Date.now();
      await files.put(runtime.gzPath, gz, {
        mode: 0o600,
        sha256: runtime.gzSha256,
        signal,
        timeoutMs: 10 * 60_000,
      });
      const q = shellQuote;
      const out = await run(
        session,
        `gzip -dc ${q(gz)} > ${q(`${nodePath}.part`)} && rm -f ${q(gz)} && chmod 755 ${q(`${nodePath}.part`)} && ` +
          `mv ${q(`${nodePath}.part`)} ${q(nodePath)} && sha256sum ${q(nodePath)}`,
        signal,
      );
      if (!out.startsWith(runtime.sha256))
        throw new PushError(
          "PUSH_COMMAND_FAILED",
          `the runtime unpacked on ${options.targetId} has the wrong SHA-256`,
        );
      options.log(
        `runtime ${runtime.version} pushed in ${Date.now() - started} ms (no Node >= ${MIN_NODE_MAJOR} there)`,
      );
    }
    runtimePushed = true;
  }

  return {
    runDir,
    bundlePath,
    nodePath,
    runtimePushed,
    stagingDir,
    logDir: options.logDir ?? posix.join("/var/log/sumac", options.runId),
    extraPaths: [],
  };
}
