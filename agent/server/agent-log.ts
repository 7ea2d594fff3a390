/**
 * The agent's log: one file per run and target, `<logDir>/<targetId>.log`, one line per event with
 * an ISO 8601 timestamp. It is the one thing the agent leaves on the target, so it records every
 * rejected message (code, reason, peer) and why the agent stopped.
 *
 * Lines are appended synchronously: the agent writes little, and a line written just before the
 * process exits (or is killed) must be on disk. Secrets never reach it: callers pass reasons and
 * peers, never keys, MACs or certificates' private halves.
 *
 * The file is capped (`maxBytes`, the agent's `maxLogFileBytes` limit), so that a command printing
 * without end cannot fill the target's disk. Command output may take the file up to
 * {@link outputShare} of the cap; past that, output lines are counted, not written, and one line
 * marks where output was cut. Refusals (a client or a request the agent refused: anyone who can
 * reach its port can make them) are rate-limited: a few per interval are written, the rest counted
 * and said in one line per interval; and they stop short of a reserve at the end of the cap
 * ({@link lifecycleReserve}) that only the agent's own lines may use (an install's start and exit,
 * its firewall rule, why the agent stopped). Should those reach the cap too, one last line says
 * the log is full.
 */
import { DEFAULT_LIMITS } from "../protocol/deadlines.ts";
import { appendFileSync, mkdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { oneLine } from "../../base/text.ts";
import { RejectionSummary } from "../protocol/rejection-summary.ts";

export type LogLevel = "info" | "warn" | "error";

/** Where log lines go; the server and operations take this, tests may pass a recording one. */
export interface AgentLog {
  /** The log file's absolute path. */
  readonly path: string;
  /** The directory holding this run's log files. */
  readonly dir: string;
  write(level: LogLevel, message: string): void;
  /** A line of a command's output: written while the file is under the output's share of its cap. */
  output(message: string): void;
  /**
   * A refusal (a client, a handshake or a request refused), at warn: rate-limited and summarised,
   * and never written into the reserve kept for the agent's own lines.
   */
  reject(message: string): void;
  /** Output lines not written for the cap so far, and their bytes. */
  readonly dropped: { readonly lines: number; readonly bytes: number };
}

/** What command output may fill of the cap: all but a reserve for the agent's own lines. */
export function outputShare(maxBytes: number): number {
  return maxBytes - Math.min(256 * 1024, Math.floor(maxBytes / 4));
}

/** What only the agent's own lines may use at the end of the cap: refusals and output stop before it. */
export function lifecycleReserve(maxBytes: number): number {
  return Math.min(64 * 1024, Math.floor(maxBytes / 8));
}

/** The default log directory of a run on Linux. */
export function defaultLogDir(runId: string): string {
  return join("/var/log/sumac", runId);
}

/**
 * Opens (creates) the log of `targetId` in `dir`, readable by its owner and group only, since
 * command output may say more about the host than others should read.
 */
export function openAgentLog(options: {
  readonly dir: string;
  readonly targetId: string;
  readonly now?: () => Date;
  /** Also receives every line written (e.g. stderr of a local agent); optional. */
  readonly mirror?: (line: string) => void;
  /** The file's cap; default the protocol's `DEFAULT_LIMITS.maxLogFileBytes`. */
  readonly maxBytes?: number;
  /** Refusals written as they come per interval (default 5), and the interval (default 10 s). */
  readonly rejectionBurst?: number;
  readonly rejectionIntervalMs?: number;
}): AgentLog {
  const { dir, now = () => new Date(), mirror, maxBytes = DEFAULT_LIMITS.maxLogFileBytes } = options;
  const rejectionLimit = maxBytes - lifecycleReserve(maxBytes);
  mkdirSync(dir, { recursive: true, mode: 0o750 });
  const path = join(dir, `${safeFileName(options.targetId)}.log`);
  // An agent started again in the same run appends to the same file: its size counts.
  let size = sizeOf(path);
  let outputCut = false;
  let full = false;
  const dropped = { lines: 0, bytes: 0 };
  const append = (level: LogLevel, message: string): void => {
    const line = `${now().toISOString()} ${level} ${oneLine(message)}\n`;
    appendFileSync(path, line, { mode: 0o640 });
    size += Buffer.byteLength(line);
    mirror?.(line);
  };
  let rejectionsCut = false;
  const rejections = new RejectionSummary({
    what: "refusals not written",
    burst: options.rejectionBurst ?? 5,
    intervalMs: options.rejectionIntervalMs ?? 10_000,
    now: () => now().getTime(),
    say: (line) => {
      if (full || rejectionsCut) return;
      if (size + 4096 + line.length * 3 > rejectionLimit) {
        rejectionsCut = true;
        append(
          "warn",
          `refusals cut here at ${size} bytes (log cap ${maxBytes}): later refusals are not written`,
        );
        return;
      }
      append("warn", line);
    },
  });
  const write = (level: LogLevel, message: string): void => {
    if (full) return;
    // Refusals counted so far come before this line.
    rejections.flush();
    if (size + 4096 + message.length * 3 > maxBytes) {
      full = true;
      append("warn", `log full at ${size} bytes (cap ${maxBytes}): later lines are not written`);
      return;
    }
    append(level, message);
  };
  return {
    path,
    dir,
    dropped,
    write,
    reject: (message) => rejections.add(message),
    output(message) {
      if (!outputCut && size + message.length * 3 + 64 > outputShare(maxBytes)) {
        outputCut = true;
        write(
          "warn",
          `output cut here at ${size} bytes (log cap ${maxBytes}): later output lines are counted, not written`,
        );
      }
      if (outputCut || full) {
        dropped.lines++;
        dropped.bytes += Buffer.byteLength(message);
        return;
      }
      append("info", message);
    },
  };
}

function sizeOf(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

function safeFileName(name: string): string {
  if (!/^[A-Za-z0-9._-]{1,128}$/.test(name) || name.startsWith("."))
    throw new TypeError(`targetId must be 1 to 128 characters of [A-Za-z0-9._-]: ${JSON.stringify(name)}`);
  return name;
}
