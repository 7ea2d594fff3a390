/**
 * The start-up dialogue on the agent's stdin and stdout (Linux: the push channel that started the
 * agent, an SSH session). One JSON document per line; more than {@link DIALOGUE_MAX_BYTES} on stdin
 * during start-up, or a line that does not come within {@link DIALOGUE_LINE_DEADLINE_MS}, fails it.
 */
import { createInterface } from "node:readline";
import { withDeadline } from "../../base/deadline.ts";
import { DeadlineExceededError } from "../protocol/errors.ts";
import type { DialogueChannel } from "./dialogue.ts";

/** The start-up dialogue is two short lines: more than this on stdin is not a workstation. */
export const DIALOGUE_MAX_BYTES = 256 * 1024;
/** A workstation that started the agent answers at once; without it the agent must not linger. */
export const DIALOGUE_LINE_DEADLINE_MS = 60_000;

/** The dialogue over `process.stdin` and `process.stdout`. */
export function createStdioDialogue(): DialogueChannel {
  // A workstation that gave up closes the channel: writing the listening or stopped line then
  // fails with EPIPE, which must not crash the agent before it has removed its files and rule.
  process.stdout.on("error", () => undefined);
  const lines = createInterface({ input: process.stdin, crlfDelay: Infinity })[Symbol.asyncIterator]();
  let seen = 0;
  let onData: ((chunk: Buffer) => void) | undefined;
  const overflow = new Promise<never>((_, reject) => {
    onData = (chunk) => {
      seen += chunk.byteLength;
      if (seen > DIALOGUE_MAX_BYTES)
        reject(new Error(`over ${DIALOGUE_MAX_BYTES} bytes on stdin during start-up`));
    };
    process.stdin.on("data", onData);
  });
  overflow.catch(() => undefined);
  const next = async (what: string): Promise<unknown> => {
    const ms = DIALOGUE_LINE_DEADLINE_MS;
    const timeout = new DeadlineExceededError(`the ${what} line did not finish within ${ms} ms`);
    const line = await withDeadline({ ms, timeout }, () => Promise.race([lines.next(), overflow]));
    if (line.done === true) throw new Error(`stdin closed before the ${what}`);
    try {
      return JSON.parse(line.value) as unknown;
    } catch (cause) {
      throw new Error(`the ${what} is not one line of JSON`, { cause });
    }
  };
  return {
    readConfig: () => next("config"),
    async readCertificate() {
      const certificate = await next("certificate");
      // The dialogue's input is over: what stdin brings later is not counted against its cap.
      if (onData !== undefined) process.stdin.off("data", onData);
      return certificate;
    },
    send(event) {
      process.stdout.write(`${JSON.stringify(event)}\n`);
    },
  };
}
