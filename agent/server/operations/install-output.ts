/**
 * What becomes of an install command's output lines: the reboot and progress markers are read,
 * each line goes to the agent's log (capped there, `agent-log.ts`) and to the workstation's
 * callback listener (bounded there, `callback-client.ts`). Nothing here keeps the lines.
 */
import type { AgentLog } from "../agent-log.ts";
import type { CallbackSink } from "./context.ts";

/** A stdout line that says "installed, reboot to finish" from a command that cannot choose its exit code. */
export const REBOOT_MARKER = "sumac:reboot-required";
/**
 * A stdout line `sumac:progress <0-100>` from an install command is sent back as its progress; the
 * agent itself only knows the start (0) and the end (100).
 */
export const PROGRESS_MARKER = /^sumac:progress (\d{1,3})$/;

export interface InstallOutput {
  /** Takes one output line. */
  line(stream: "stdout" | "stderr", line: string): void;
  /** Whether a stdout line said a reboot is needed. */
  readonly rebootMarker: boolean;
  /** Logs how much output the log's cap kept out during this install, if any. */
  finish(): void;
}

export function installOutput(options: {
  readonly componentId: string;
  /** The component's id as it may be logged. */
  readonly logId: string;
  readonly log: AgentLog;
  readonly callback: CallbackSink | undefined;
}): InstallOutput {
  const { componentId, logId, log, callback } = options;
  const before = { ...log.dropped };
  let marker = false;
  return {
    get rebootMarker() {
      return marker;
    },
    line(stream, line) {
      const trimmed = line.trim();
      if (stream === "stdout" && trimmed === REBOOT_MARKER) marker = true;
      const progress = stream === "stdout" ? PROGRESS_MARKER.exec(trimmed) : null;
      const percent = Number(progress?.[1] ?? NaN);
      if (percent >= 0 && percent <= 100)
        callback?.send({ kind: "progress", step: `install ${componentId}`, percent });
      log.output(`install ${logId} ${stream}: ${line}`);
      callback?.send({ kind: "log", line: `${stream}: ${line}` });
    },
    finish() {
      const lines = log.dropped.lines - before.lines;
      const bytes = log.dropped.bytes - before.bytes;
      if (lines > 0)
        log.write(
          "warn",
          `install ${logId}: ${lines} output lines (${bytes} bytes) not written here (the log's cap)`,
        );
    },
  };
}
