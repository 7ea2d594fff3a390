/**
 * The one base of sumac's errors (STYLE.md item 6): a stable `code` from the table in
 * error-codes.ts, the `retryable` flag the table gives that code, a message for people, and a cause
 * chained through ErrorOptions. Guards branch on `code`, never on the message.
 *
 * A failure kind is a class: {@link errorClass} makes one for a code, so that `instanceof` and
 * `err.code === "BAD_MAC"` both narrow to it, and its `name` (in stacks and logs) is the class's.
 *
 * @example
 * export class NoGzipError extends errorClass("NO_GZIP") {}
 * throw new NoGzipError(`${target} has no gzip: install it, or Node 18, there`);
 */
import { ERROR_CODES, type ErrorCode } from "./error-codes.ts";

export class SumacError<C extends ErrorCode = ErrorCode> extends Error {
  readonly code: C;
  readonly retryable: boolean;

  constructor(code: C, message: string, options?: ErrorOptions) {
    super(message, options);
    // new.target is the concrete subclass, so stacks and logs name the failure kind.
    this.name = new.target.name;
    this.code = code;
    this.retryable = ERROR_CODES[code].retryable;
  }
}

/** The base class of one failure kind: its code is fixed, so its constructor takes the message only. */
export function errorClass<C extends ErrorCode>(code: C) {
  return class extends SumacError<C> {
    constructor(message: string, options?: ErrorOptions) {
      super(code, message, options);
    }
  };
}

/**
 * A test for a family of failure kinds (the lease client's, message security's), by their codes.
 *
 * @example
 * export const isLeaseError = errorGuard(["LEASE_EXHAUSTED", "LEASE_UNKNOWN"]);
 */
export function errorGuard<const C extends ErrorCode>(
  codes: readonly C[],
): (error: unknown) => error is SumacError<C> {
  const family: ReadonlySet<string> = new Set(codes);
  return (error): error is SumacError<C> => isSumacError(error) && family.has(error.code);
}

/** True for sumac's errors, so that callers can tell them from programming errors. */
export function isSumacError(error: unknown): error is SumacError {
  return error instanceof SumacError;
}
