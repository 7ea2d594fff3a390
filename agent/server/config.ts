/**
 * The agent's config: the JSON document the workstation writes to the agent's stdin over the push
 * channel, or into `agent-config.json` beside the bundle on Windows (agent/protocol/start-up.ts),
 * checked, with its defaults filled in. The agent's key is made on the target and its certificate
 * arrives on a second line (see `main.ts`).
 */
import { errorClass } from "../../base/errors.ts";
import { isIP } from "node:net";
import { isAbsolute, resolve } from "node:path";
import { defaultLogDir } from "./agent-log.ts";
import { type AgentLimits, DEFAULT_LIMITS } from "./operations/context.ts";
import type { PortStrategy } from "../protocol/port-binding.ts";
import type { AgentConfigDocument, CallbackTarget } from "../protocol/start-up.ts";
import { DEFAULT_HEARTBEAT_MS, DEFAULT_LOST_AFTER_MS } from "./workstation-watch.ts";

/** The configuration as the agent uses it: checked, defaults filled in. */
export interface AgentConfig extends Omit<
  AgentConfigDocument,
  "logDir" | "idleTimeoutMs" | "firewall" | "limits"
> {
  /** Default `/var/log/sumac/<runId>`. */
  readonly logDir: string;
  readonly idleTimeoutMs: number;
  readonly firewall: "nft" | "netsh" | "none";
  readonly limits?: Partial<AgentLimits>;
}

/** A config that cannot be used; the message names the field. */
export class AgentConfigError extends errorClass("AGENT_CONFIG") {}

/** How the config came: see {@link parseAgentConfig}. */
export interface ParseConfigOptions {
  /**
   * The bundle's directory, when the config came over files (`--dialogue=files`): relative paths
   * are then allowed and resolved against it. Without it every path must be absolute.
   */
  readonly relativeTo?: string;
}

/**
 * Checks a parsed config document and fills in defaults. `stagingDir`, `logDir` and each of
 * `programFiles` must be absolute paths, except over files (`options.relativeTo` given): there a
 * relative one (with `/` or the platform's separators) is resolved against the bundle's directory
 * with node:path's `resolve` (win32 rules on Windows), and the result is always absolute.
 */
export function parseAgentConfig(value: unknown, options: ParseConfigOptions = {}): AgentConfig {
  if (typeof value !== "object" || value === null || Array.isArray(value))
    throw new AgentConfigError("the config must be a JSON object");
  const c = value as Record<string, unknown>;
  const text = (name: string): string => {
    const v = c[name];
    if (typeof v !== "string" || v.length === 0)
      throw new AgentConfigError(`config.${name} must be a non-empty string`);
    return v;
  };
  const path = (v: string, name: string): string => {
    if (v.includes("\0")) throw new AgentConfigError(`config.${name} must not hold a NUL character`);
    if (isAbsolute(v)) return v;
    if (options.relativeTo === undefined)
      throw new AgentConfigError(`config.${name} must be an absolute path (relative ones only over files)`);
    return resolve(options.relativeTo, v);
  };
  const int = (v: unknown, name: string, min: number, max: number): number => {
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v < min || v > max)
      throw new AgentConfigError(`config.${name} must be an integer from ${min} to ${max}`);
    return v;
  };
  const runId = text("runId");
  const programFiles = c.programFiles ?? [];
  if (!Array.isArray(programFiles) || !programFiles.every((p) => typeof p === "string" && p.length > 0))
    throw new AgentConfigError("config.programFiles must be an array of paths");
  const programPaths = (programFiles as string[]).map((p, i) => path(p, `programFiles[${i}]`));
  const listen = c.listen as Record<string, unknown> | undefined;
  if (typeof listen !== "object" || listen === null)
    throw new AgentConfigError("config.listen must be { host, port } or { host, basePort, strategy }");
  if (typeof listen.host !== "string") throw new AgentConfigError("config.listen.host must be a string");
  const limits = c.limits;
  if (limits !== undefined && (typeof limits !== "object" || limits === null))
    throw new AgentConfigError("config.limits must be an object");
  return {
    runId,
    targetId: text("targetId"),
    caCertPem: text("caCertPem"),
    workstationFingerprint256: fingerprint(c.workstationFingerprint256, "workstationFingerprint256"),
    stagingDir: path(text("stagingDir"), "stagingDir"),
    programFiles: programPaths,
    logDir: c.logDir === undefined ? defaultLogDir(runId) : path(text("logDir"), "logDir"),
    idleTimeoutMs: int(c.idleTimeoutMs ?? 600_000, "idleTimeoutMs", 1, 24 * 3_600_000),
    listen: {
      host: listen.host,
      ...(listen.port === undefined ? {} : { port: int(listen.port, "listen.port", 0, 65535) }),
      ...(listen.basePort === undefined
        ? {}
        : { basePort: int(listen.basePort, "listen.basePort", 1, 65535) }),
      ...(listen.strategy === undefined ? {} : { strategy: strategy(listen.strategy) }),
      ...(listen.window === undefined ? {} : { window: int(listen.window, "listen.window", 1, 65535) }),
    },
    ...(c.workstationAddress === undefined ? {} : { workstationAddress: address(c.workstationAddress) }),
    firewall: c.firewall === undefined ? "nft" : firewallMode(c.firewall),
    ...(c.maxBodyBytes === undefined
      ? {}
      : { maxBodyBytes: int(c.maxBodyBytes, "maxBodyBytes", 1024, 64 * 1024 * 1024) }),
    ...(limits === undefined ? {} : { limits: parseLimits(limits as Record<string, unknown>) }),
    ...(c.callback === undefined ? {} : { callback: callbackTarget(c.callback, int) }),
  };
}

/** Only known limits, each a positive integer: a typo must not silently leave a default in place. */
function parseLimits(limits: Record<string, unknown>): Partial<AgentLimits> {
  const known = Object.keys(DEFAULT_LIMITS);
  for (const [name, value] of Object.entries(limits)) {
    if (!known.includes(name)) throw new AgentConfigError(`config.limits.${name} is not a limit`);
    if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 1)
      throw new AgentConfigError(`config.limits.${name} must be a positive integer`);
  }
  return limits;
}

function callbackTarget(
  v: unknown,
  int: (v: unknown, name: string, min: number, max: number) => number,
): CallbackTarget {
  if (typeof v !== "object" || v === null || Array.isArray(v))
    throw new AgentConfigError("config.callback must be { host, port, fingerprint256 }");
  const c = v as Record<string, unknown>;
  if (typeof c.host !== "string" || c.host.length === 0)
    throw new AgentConfigError("config.callback.host must be a non-empty string");
  const heartbeatMs = int(c.heartbeatMs ?? DEFAULT_HEARTBEAT_MS, "callback.heartbeatMs", 100, 3_600_000);
  const lostAfterMs = int(
    c.lostAfterMs ?? DEFAULT_LOST_AFTER_MS,
    "callback.lostAfterMs",
    100,
    24 * 3_600_000,
  );
  if (lostAfterMs < heartbeatMs)
    throw new AgentConfigError("config.callback.lostAfterMs must be at least callback.heartbeatMs");
  return {
    host: c.host,
    port: int(c.port, "callback.port", 1, 65535),
    fingerprint256: fingerprint(c.fingerprint256, "callback.fingerprint256"),
    heartbeatMs,
    lostAfterMs,
  };
}

/** A SHA-256 fingerprint as `tls` prints it: 32 upper-case hex pairs joined by ':'. */
function fingerprint(v: unknown, name: string): string {
  if (typeof v !== "string" || !/^([0-9A-Fa-f]{2}:){31}[0-9A-Fa-f]{2}$/.test(v))
    throw new AgentConfigError(`config.${name} must be a SHA-256 fingerprint (AB:CD:…)`);
  return v.toUpperCase();
}

function strategy(v: unknown): PortStrategy {
  if (v === "next" || v === "random") return v;
  throw new AgentConfigError('config.listen.strategy must be "next" or "random"');
}

function firewallMode(v: unknown): "nft" | "netsh" | "none" {
  if (v === "nft" || v === "netsh" || v === "none") return v;
  throw new AgentConfigError('config.firewall must be "nft", "netsh" or "none"');
}

function address(v: unknown): string {
  if (typeof v === "string" && isIP(v) !== 0) return v;
  throw new AgentConfigError("config.workstationAddress must be an IPv4 or IPv6 address");
}
