/**
 * The start-up dialogue over files (start-up.ts), for a Windows target: the service control
 * manager starts the agent through cmd with no channel to it, and the workstation reaches the
 * target's files over SMB only. Every file is in the bundle's directory (the run directory):
 *
 * 1. the workstation writes {@link DIALOGUE_FILES.config}; the agent reads it and deletes it at once;
 * 2. the agent appends one {@link AgentEvent} per line to {@link DIALOGUE_FILES.out}, each line in
 *    one append call, so that a reader that parses complete lines only ({@link completeEvents})
 *    never sees half of one;
 * 3. the workstation writes {@link DIALOGUE_FILES.certPart} and renames it to
 *    {@link DIALOGUE_FILES.cert}, so that it appears whole; the agent polls for it, reads it and
 *    deletes it;
 * 4. the workstation may write {@link DIALOGUE_FILES.stop}: the agent deletes it and stops as on
 *    SIGTERM (the install in progress stopped, its firewall rule removed, its log kept).
 */
import { clip } from "../../base/text.ts";
import type { AgentEvent } from "./start-up.ts";

/** The dialogue's file names, in the bundle's directory. */
export const DIALOGUE_FILES = {
  config: "agent-config.json",
  out: "agent-out.jsonl",
  cert: "agent-cert.json",
  certPart: "agent-cert.json.part",
  stop: "agent-stop",
} as const;

/** The config file is one JSON document; more is not a workstation. */
export const MAX_CONFIG_FILE_BYTES = 256 * 1024;
/** The certificate file holds two PEM leaves. */
export const MAX_CERT_FILE_BYTES = 64 * 1024;
/** Every line of the out file is shorter than this, its `\n` included. */
export const MAX_OUT_LINE_BYTES = 64 * 1024;
/** How long the agent waits for the certificate file, and how often it looks. */
export const CERT_FILE_DEADLINE_MS = 60_000;
export const CERT_FILE_POLL_MS = 100;
/** How often the running agent looks for the stop file. */
export const STOP_FILE_POLL_MS = 1_000;
/**
 * A `failed` message or `stopped` reason is cut to this many characters: JSON escapes at most six
 * bytes per character, so the line stays under {@link MAX_OUT_LINE_BYTES}.
 */
const MAX_TEXT_CHARS = 8 * 1024;

/**
 * One line of the out file: `event` as JSON and `\n`, under {@link MAX_OUT_LINE_BYTES}; a failure's
 * message and a stop's reason are cut to fit. Throws RangeError for any other event that does not.
 */
export function eventLine(event: AgentEvent): string {
  const fitted: AgentEvent =
    event.event === "failed"
      ? { ...event, message: clip(event.message, MAX_TEXT_CHARS) }
      : event.event === "stopped"
        ? { ...event, reason: clip(event.reason, MAX_TEXT_CHARS) }
        : event;
  const line = `${JSON.stringify(fitted)}\n`;
  const bytes = Buffer.byteLength(line);
  if (bytes >= MAX_OUT_LINE_BYTES)
    throw new RangeError(`the ${event.event} line is ${bytes} bytes, over ${MAX_OUT_LINE_BYTES - 1}`);
  return line;
}

/**
 * The events of an out file read while the agent may still be appending: its complete lines
 * (ending in `\n`) that are JSON objects with a string `event`; a last line without its `\n` is
 * not read yet, and a line that is not such an object is skipped.
 */
export function completeEvents(text: string): Array<Readonly<Record<string, unknown>> & { event: string }> {
  const lines = text.split("\n");
  lines.pop();
  const events: Array<Record<string, unknown> & { event: string }> = [];
  for (const line of lines) {
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      continue;
    }
    if (typeof value !== "object" || value === null || Array.isArray(value)) continue;
    const record = value as Record<string, unknown>;
    if (typeof record.event === "string") events.push(record as Record<string, unknown> & { event: string });
  }
  return events;
}
