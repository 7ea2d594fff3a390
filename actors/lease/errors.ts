/**
 * Errors of the lease client (STYLE.md item 6): one class per failure kind, a stable `code` to
 * branch on and a `retryable` flag. Codes of the service's replies (`exhausted`, ...) map to these.
 */
import type { LeaseErrorCode } from "../../bus/schemas/lease.ts";

export abstract class LeaseError extends Error {
  abstract readonly code: string;
  abstract readonly retryable: boolean;

  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    // new.target is the concrete subclass, so stacks and logs name the failure kind.
    this.name = new.target.name;
  }
}

/** Every port of the range up to its cap is leased or busy; retry once some are released. */
export class LeaseExhaustedError extends LeaseError {
  readonly code = "LEASE_EXHAUSTED";
  readonly retryable = true;
}

/** The request named a range the service does not have configured. */
export class LeaseUnknownRangeError extends LeaseError {
  readonly code = "LEASE_UNKNOWN_RANGE";
  readonly retryable = false;
}

/** The lease is not held any more (it expired and was reclaimed, or was released). */
export class LeaseUnknownError extends LeaseError {
  readonly code = "LEASE_UNKNOWN";
  readonly retryable = false;
}

/** The service refused the request as malformed (or the reply was malformed). */
export class LeaseInvalidRequestError extends LeaseError {
  readonly code = "LEASE_INVALID_REQUEST";
  readonly retryable = false;
}

/** No active lease service answered before the deadline (none running, failover, overload). */
export class LeaseUnavailableError extends LeaseError {
  readonly code = "LEASE_UNAVAILABLE";
  readonly retryable = true;
}

/** The service failed internally. */
export class LeaseServiceError extends LeaseError {
  readonly code = "LEASE_SERVICE_FAILED";
  readonly retryable = true;
}

/** Binding a granted port failed for a reason other than EADDRINUSE (`cause` has it). */
export class LeaseBindError extends LeaseError {
  readonly code = "LEASE_BIND_FAILED";
  readonly retryable = false;
}

/** Too many granted ports in a row were found taken; `busy` lists them. */
export class LeaseConflictLimitError extends LeaseError {
  readonly code = "LEASE_CONFLICT_LIMIT";
  readonly retryable = true;
  readonly busy: readonly number[];

  constructor(message: string, busy: readonly number[], options?: ErrorOptions) {
    super(message, options);
    this.busy = busy;
  }
}

/** The error a client throws for a failure reply of the service. */
export function errorOfReply(code: LeaseErrorCode, message: string): LeaseError {
  switch (code) {
    case "exhausted":
      return new LeaseExhaustedError(message);
    case "unknown-range":
      return new LeaseUnknownRangeError(message);
    case "unknown-lease":
      return new LeaseUnknownError(message);
    case "invalid-request":
      return new LeaseInvalidRequestError(message);
    case "not-active":
      return new LeaseUnavailableError(message);
    case "internal":
      return new LeaseServiceError(message);
  }
}
