/**
 * What a Windows target is told to run, as text: the paths of the run seen from Windows, the names
 * of the services, and the two command lines the service control manager starts (docs/windows.md).
 *
 * The SCM runs a service's binary path as a command line: nothing of ours reaches a shell there
 * unchecked. Every piece put into these lines is checked against a narrow set of characters (no
 * quote, `%`, `^`, `&`, `|`, `<`, `>` or control character can come from a job), and every
 * program is named by its full path under `%SystemRoot%\System32` (cmd looks for a bare name in
 * the current directory first).
 */
import { DIALOGUE_FILES } from "../../../agent/protocol/files-dialogue.ts";
import { AgentStartError } from "../errors.ts";

/** Every service sumac creates is named so (a sweep finds them by it). */
export const SERVICE_PREFIX = "sumac-";

/** The agent's files in its run directory (with the files dialogue's, agent/protocol/files-dialogue.ts). */
export const WINDOWS_FILES = {
  runtime: "node.tgz",
  node: "node.exe",
  bundle: "agent.cjs",
  config: DIALOGUE_FILES.config,
  certificate: DIALOGUE_FILES.cert,
  out: DIALOGUE_FILES.out,
  stop: DIALOGUE_FILES.stop,
  staging: "staging",
} as const;

const SYSTEM32 = "%SystemRoot%\\System32";
/** Characters allowed in paths and words put into a command line (a run root allows spaces). */
const SAFE = /^[A-Za-z0-9 ._:@=[\]$\\-]+$/;

function safe(what: string, text: string): string {
  // The one variable allowed, at the start of a path (cmd expands it).
  const checked = text.startsWith("%SystemRoot%") ? text.slice("%SystemRoot%".length) || "x" : text;
  if (!SAFE.test(checked) || text.trim() !== text)
    throw new AgentStartError(`${what} ${JSON.stringify(text)} cannot go into a Windows command line`);
  return text;
}

/**
 * The Windows path of a share path of the file channel: `/ADMIN$/Temp/sumac/x` is
 * `%SystemRoot%\Temp\sumac\x` (ADMIN$ is the Windows directory), `/C$/x` is `C:\x`. Other shares
 * have no path a program can be started from.
 */
export function windowsPathOf(sharePath: string): string {
  const [, share = "", ...rest] = sharePath.split("/");
  const tail = rest.filter((p) => p !== "").join("\\");
  let base: string;
  if (share.toUpperCase() === "ADMIN$") base = "%SystemRoot%";
  else if (/^[A-Za-z]\$$/.test(share)) base = `${share[0]!.toUpperCase()}:`;
  else
    throw new AgentStartError(
      `the run root ${sharePath} is on share ${share}: a Windows target's run root must be on ADMIN$ or a drive's administrative share (C$)`,
    );
  return safe("the path", tail === "" ? base : `${base}\\${tail}`);
}

/** The agent's service on a target: `sumac-<runId>-<n>` (n: the target's place in the job). */
export function agentServiceName(runId: string, index: number): string {
  return safe("the service name", `${SERVICE_PREFIX}${runId}-${index}`);
}

/** The service that ends an agent which stopped answering. */
export function killServiceName(runId: string, index: number): string {
  return `${agentServiceName(runId, index)}-kill`;
}

/** The run a service of sumac belongs to, read from its name, or undefined for another's. */
export function runOfServiceName(name: string): string | undefined {
  const m = /^sumac-(\d{8}-\d{6}-\d{3}-[0-9a-f]{6})-\d+(?:-kill)?$/.exec(name);
  return m?.[1];
}

export interface AgentCommandParts {
  /** The run directory, as {@link windowsPathOf} gives it. */
  readonly runDir: string;
  /**
   * With the agent cache: the directory (as {@link windowsPathOf} gives it) that keeps Node by its
   * hash, `node.tgz` there and `node.exe` unpacked beside it once and reused while its hash holds.
   */
  readonly cacheDir?: string;
  /** SHA-256 (hex) of node.exe and of the bundle, checked before anything runs. */
  readonly nodeSha256: string;
  readonly bundleSha256: string;
  /** Names this run's agent (agent-steps.ts agentMarker). */
  readonly marker: string;
}

function hex(what: string, sha: string): string {
  if (!/^[0-9a-f]{64}$/i.test(sha)) throw new AgentStartError(`${what} ${sha} is not a SHA-256`);
  return sha.toLowerCase();
}

/** `certutil` prints a file's SHA-256 on a line of its own; findstr succeeds if it is the one given. */
function hashCheck(file: string, sha: string): string {
  return `("${SYSTEM32}\\certutil.exe" -hashfile ${file} SHA256 | "${SYSTEM32}\\findstr.exe" /x /i ${sha} >nul)`;
}

/**
 * The agent service's binary path. cmd (a program the SCM may end after 30 s, as it ends any that
 * does not answer it) unpacks Node, checks Node's and the bundle's SHA-256, starts Node on the
 * bundle detached (`start /b`) and exits: the agent lives on as cmd's child, which the SCM leaves
 * alone, until the run asks it to stop. A hash that differs starts nothing.
 */
export function agentServiceCommand(parts: AgentCommandParts): string {
  const dir = safe("the run directory", parts.runDir);
  const marker = safe("the marker", parts.marker);
  const nodeSha = hex("node.exe's hash", parts.nodeSha256);
  const tar = `"${SYSTEM32}\\tar.exe" -xzf ${WINDOWS_FILES.runtime}`;
  const cache = parts.cacheDir === undefined ? undefined : safe("the cache directory", parts.cacheDir);
  const steps =
    cache === undefined
      ? [`cd /d "${dir}"`, tar, hashCheck(WINDOWS_FILES.node, nodeSha)]
      : [
          // Unpacked once: only when the node.exe there is missing or not the one wanted.
          `cd /d "${cache}"`,
          `(${hashCheck(WINDOWS_FILES.node, nodeSha)} || ${tar})`,
          hashCheck(WINDOWS_FILES.node, nodeSha),
          `cd /d "${dir}"`,
        ];
  const node = cache === undefined ? WINDOWS_FILES.node : `"${cache}\\${WINDOWS_FILES.node}"`;
  steps.push(
    hashCheck(WINDOWS_FILES.bundle, hex("the bundle's hash", parts.bundleSha256)),
    `start "sumac-agent" /b ${node} ${WINDOWS_FILES.bundle} ${marker} --dialogue=files`,
  );
  return `${SYSTEM32}\\cmd.exe /d /q /s /c "${steps.join(" && ")}"`;
}

/**
 * The binary path of the service that ends an agent (by the process id it reported, and only if
 * that process is a `node.exe`) and removes its firewall rule, whatever the first did. Without a
 * process id (the agent is known to be gone) it only removes the rule.
 */
export function killServiceCommand(pid: number | undefined, ruleName: string): string {
  if (pid !== undefined && (!Number.isSafeInteger(pid) || pid <= 0))
    throw new AgentStartError(`${pid} is not a process id`);
  const rule = safe("the firewall rule name", ruleName);
  const netsh = `"${SYSTEM32}\\netsh.exe" advfirewall firewall delete rule "name=${rule}"`;
  const kill =
    pid === undefined ? "" : `"${SYSTEM32}\\taskkill.exe" /F /T /FI "IMAGENAME eq node.exe" /PID ${pid} & `;
  return `${SYSTEM32}\\cmd.exe /d /q /s /c "${kill}${netsh}"`;
}
