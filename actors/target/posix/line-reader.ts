/**
 * Reads one line at a time from a stream with a size limit and a deadline: the agent's start-up
 * lines on the push channel (a few KiB; anything longer is not the agent talking). Lines not yet
 * read are capped too ({@link MAX_WAITING_LINES}): a target that floods them is cut off, not kept.
 */
import type { Readable } from "node:stream";
import { withDeadline } from "../../../base/deadline.ts";
import { AgentStartError } from "../errors.ts";

/** Lines a reader holds before they are asked for; the start-up dialogue needs two. */
export const MAX_WAITING_LINES = 64;

export class LineReader {
  readonly #stream: Readable;
  readonly #maxLineBytes: number;
  #buffer = "";
  #lines: string[] = [];
  #ended = false;
  #error: Error | undefined;
  #wake: (() => void) | undefined;
  #draining = false;

  constructor(stream: Readable, maxLineBytes = 64 * 1024) {
    this.#stream = stream;
    this.#maxLineBytes = maxLineBytes;
    stream.setEncoding("utf8");
    stream.on("data", (chunk: string) => {
      this.#buffer += chunk;
      let nl: number;
      while ((nl = this.#buffer.indexOf("\n")) >= 0) {
        this.#lines.push(this.#buffer.slice(0, nl));
        this.#buffer = this.#buffer.slice(nl + 1);
      }
      if (this.#buffer.length > this.#maxLineBytes) {
        this.#error = new AgentStartError(`a line of more than ${this.#maxLineBytes} bytes`);
        stream.destroy();
      } else if (!this.#draining && this.#lines.length > MAX_WAITING_LINES) {
        this.#error = new AgentStartError(`more than ${MAX_WAITING_LINES} lines before they were read`);
        this.#lines = [];
        stream.destroy();
      }
      this.#wake?.();
    });
    stream.on("end", () => {
      this.#ended = true;
      this.#wake?.();
    });
    stream.on("error", (error) => {
      this.#error ??= error;
      this.#wake?.();
    });
  }

  /** The next line; rejects at the deadline, on abort, or when the stream ends first. */
  next(what: string, timeoutMs: number, signal?: AbortSignal): Promise<string> {
    const timeout = new AgentStartError(`no ${what} within ${timeoutMs} ms`);
    return withDeadline({ ms: timeoutMs, timeout, signal }, async (stop) => {
      for (;;) {
        const line = this.#lines.shift();
        if (line !== undefined) return line;
        if (this.#error !== undefined) throw new AgentStartError(`reading ${what}: ${this.#error.message}`);
        if (this.#ended) throw new AgentStartError(`the output ended before ${what}`);
        if (stop.aborted) throw stop.reason as Error;
        await new Promise<void>((resolve) => {
          const wake = (): void => {
            stop.removeEventListener("abort", wake);
            resolve();
          };
          stop.addEventListener("abort", wake, { once: true });
          this.#wake = wake;
        });
        this.#wake = undefined;
      }
    });
  }

  /** Hands every further line to `onLine` (after start-up, to keep the pipe drained). */
  drain(onLine: (line: string) => void): void {
    this.#draining = true;
    for (const line of this.#lines.splice(0)) onLine(line);
    this.#wake = () => {
      for (const line of this.#lines.splice(0)) onLine(line);
    };
    this.#stream.resume();
  }
}
