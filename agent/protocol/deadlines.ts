/**
 * How long each agent operation may take, as one table both ends read: the agent puts each
 * operation under {@link operationDeadline}, and the workstation waits {@link callDeadline} for its
 * answer, which is the same plus a margin for the network and the signing. A workstation that
 * waited less would give up on work the agent still does (an Inventory of slow detects), and the
 * step's retry would find the agent busy with the first attempt.
 */
import type { OperationName } from "./wire.ts";

/** The limits every operation works within on the agent; defaults in {@link DEFAULT_LIMITS}. */
export interface AgentLimits {
  /** Deadline of operations that name none of their own (Hello, Stage, Logs, Shutdown). */
  readonly operationTimeoutMs: number;
  /** Default and cap of a detect command's deadline. */
  readonly detectTimeoutMs: number;
  /** Default install deadline; a request may ask for up to maxInstallTimeoutMs. */
  readonly installTimeoutMs: number;
  readonly maxInstallTimeoutMs: number;
  /** Bytes of a command's stdout and of its stderr that are kept. */
  readonly maxOutputBytes: number;
  /** Bytes of each log file returned by Logs (the last ones), and of all together. */
  readonly maxLogBytesPerFile: number;
  readonly maxLogBytesTotal: number;
  /** Cap of the agent's own log file on the target (agent-log.ts); the job's `output.agentLog`. */
  readonly maxLogFileBytes: number;
}

export const DEFAULT_LIMITS: AgentLimits = {
  operationTimeoutMs: 30_000,
  detectTimeoutMs: 30_000,
  installTimeoutMs: 30 * 60_000,
  maxInstallTimeoutMs: 4 * 60 * 60_000,
  maxOutputBytes: 64 * 1024,
  maxLogBytesPerFile: 256 * 1024,
  maxLogBytesTotal: 512 * 1024,
  maxLogFileBytes: 8 * 1024 * 1024,
};

/** What the agent gives an install on top of its own deadline: its process group's stop, its answer. */
export const INSTALL_ANSWER_MS = 10_000;

/**
 * How long an install's process group has between SIGTERM and SIGKILL, when the install is stopped
 * (a forced Shutdown, the agent stopped by a signal) or runs past its deadline.
 */
export const KILL_GRACE_MS = 5_000;

/** Inventory runs its detects one after another: this many at their longest fit in it. */
const DETECTS_PER_INVENTORY = 10;

/** What the workstation waits on top of the agent's deadline: the network, TLS, signing. */
export const CALL_MARGIN_MS = 15_000;

/**
 * Each operation's deadline on the agent: its own work's longest allowed time, plus a margin for
 * the rest. `installTimeoutMs` is the install's own deadline when the caller knows it; the agent
 * itself, before reading the request, takes the longest one allowed.
 */
export function operationDeadline(
  operation: OperationName,
  limits: AgentLimits = DEFAULT_LIMITS,
  installTimeoutMs: number = limits.maxInstallTimeoutMs,
): number {
  switch (operation) {
    case "Install":
      return installTimeoutMs + INSTALL_ANSWER_MS;
    case "Shutdown":
      // An unforced Shutdown waits for the install in progress to finish.
      return installTimeoutMs + limits.operationTimeoutMs;
    case "Inventory":
      return Math.max(limits.operationTimeoutMs, DETECTS_PER_INVENTORY * limits.detectTimeoutMs);
    default:
      return limits.operationTimeoutMs;
  }
}

/**
 * How long the workstation waits for the answer to `operation`: the agent's deadline for it plus
 * {@link CALL_MARGIN_MS}, so the agent's own DEADLINE_EXCEEDED fault arrives before the workstation
 * gives up. A forced Shutdown waits for no install: it is given the grace of the install's stop.
 *
 * @example callDeadline("Inventory") // 315000: the agent allows 300 s
 */
export function callDeadline(
  operation: OperationName,
  options: { limits?: AgentLimits; installTimeoutMs?: number; force?: boolean } = {},
): number {
  const limits = options.limits ?? DEFAULT_LIMITS;
  if (operation === "Shutdown" && options.force === true)
    return KILL_GRACE_MS + limits.operationTimeoutMs + CALL_MARGIN_MS;
  return operationDeadline(operation, limits, options.installTimeoutMs) + CALL_MARGIN_MS;
}
