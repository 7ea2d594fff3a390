/**
 * Reads one line at a time from a stream with a size limit and a deadline: the agent's start-up
 * lines on the push channel (a few KiB; anything longer is not the agent talking).
 */
import { errorClass } from "../../base/errors.ts";
import type { Readable } from "node:stream";

export class LineReaderError extends errorClass("AGENT_START_FAILED") {}

export class LineReader {
  readonly #stream: Readable;
  readonly #maxLineBytes: number;
  #buffer = "";
  #lines: string[] = [];
  #ended = false;
  #error: Error | undefined;
  #wake: (() => void) | undefined;

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
        this.#error = new LineReaderError(`a line of more than ${this.#maxLineBytes} bytes`);
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
  async next(what: string, timeoutMs: number, signal?: AbortSignal): Promise<string> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const line = this.#lines.shift();
      if (line !== undefined) return line;
      if (this.#error !== undefined) throw new LineReaderError(`reading ${what}: ${this.#error.message}`);
      if (this.#ended) throw new LineReaderError(`the output ended before ${what}`);
      signal?.throwIfAborted();
      const left = until - Date.now();
      if (left <= 0) throw new LineReaderError(`no ${what} within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        const onAbort = () => resolve();
        signal?.addEventListener("abort", onAbort, { once: true });
        this.#wake = () => {
          clearTimeout(timer);
          signal?.removeEventListener("abort", onAbort);
          resolve();
        };
      });
      this.#wake = undefined;
    }
  }

  /** Hands every further line to `onLine` (after start-up, to keep the pipe drained). */
  drain(onLine: (line: string) => void): void {
    for (const line of this.#lines.splice(0)) onLine(line);
    this.#wake = () => {
      for (const line of this.#lines.splice(0)) onLine(line);
    };
    this.#stream.resume();
  }
}
