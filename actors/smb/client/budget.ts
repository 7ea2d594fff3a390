/**
 * One deadline shared by the several requests of an operation (an upload is CREATE, many WRITEs
 * and CLOSE): each request gets the time left, so the operation as a whole ends by its deadline.
 */
import type { CallOptions } from "./connection.ts";

/** The time left of an operation's deadline, handed out request by request. */
export class Budget {
  private readonly deadline: number;
  readonly signal: AbortSignal | undefined;

  constructor(options: CallOptions) {
    this.deadline = performance.now() + options.timeoutMs;
    this.signal = options.signal;
  }

  /** Options for the next request: what is left of the deadline (at least 1 ms) and the signal. */
  next(): CallOptions {
    return { timeoutMs: Math.max(1, Math.ceil(this.deadline - performance.now())), signal: this.signal };
  }
}
