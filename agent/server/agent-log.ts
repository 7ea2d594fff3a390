/**
 * The agent's log: one file per run and target, `<logDir>/<targetId>.log`, one line per event with
 * an ISO 8601 timestamp. It is the one thing the agent leaves on the target, so it records every
 * rejected message (code, reason, peer) and why the agent stopped.
 *
 * Lines are appended synchronously: the agent writes little, and a line written just before the
 * process exits (or is killed) must be on disk. Secrets never reach it: callers pass reasons and
 * peers, never keys, MACs or certificates' private halves.
 */
import { appendFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { oneLine } from "../../base/text.ts";

export type LogLevel = "info" | "warn" | "error";

/** Where log lines go; the server and operations take this, tests may pass a recording one. */
export interface AgentLog {
  /** The log file's absolute path. */
  readonly path: string;
  /** The directory holding this run's log files. */
  readonly dir: string;
  write(level: LogLevel, message: string): void;
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
  /** Also receives every line (e.g. stderr of a local agent); optional. */
  readonly mirror?: (line: string) => void;
}): AgentLog {
  const { dir, now = () => new Date(), mirror } = options;
  mkdirSync(dir, { recursive: true, mode: 0o750 });
  const path = join(dir, `${safeFileName(options.targetId)}.log`);
  return {
    path,
    dir,
    write(level, message) {
      const line = `${now().toISOString()} ${level} ${oneLine(message)}\n`;
      appendFileSync(path, line, { mode: 0o640 });
      mirror?.(line);
    },
  };
}

function safeFileName(name: string): string {
  if (!/^[A-Za-z0-9._-]{1,128}$/.test(name) || name.startsWith("."))
    throw new TypeError(`targetId must be 1 to 128 characters of [A-Za-z0-9._-]: ${JSON.stringify(name)}`);
  return name;
}
