/**
 * Errors of the lease client (STYLE.md item 6): one class per failure kind, its code from
 * base/error-codes.ts. The statuses of the service's replies (`exhausted`, ...) map to these.
 */
import { errorClass, errorGuard, type SumacError } from "../../base/errors.ts";
import type { LeaseErrorCode } from "../../bus/schemas/lease.ts";

const LEASE_CODES = [
  "LEASE_EXHAUSTED",
  "LEASE_UNKNOWN_RANGE",
  "LEASE_UNKNOWN",
  "LEASE_NOT_HOLDER",
  "LEASE_INVALID_REQUEST",
  "LEASE_UNAVAILABLE",
  "LEASE_SERVICE_FAILED",
  "LEASE_BIND_FAILED",
  "LEASE_CONFLICT_LIMIT",
] as const;

/** Any failure of the lease client. */
export type LeaseError = SumacError<(typeof LEASE_CODES)[number]>;

/** Whether `error` is a failure of the lease client (rather than of the bus under it, or a bug). */
export const isLeaseError = errorGuard(LEASE_CODES);

/** Every port of the range up to its cap is leased or busy; retry once some are released. */
export class LeaseExhaustedError extends errorClass("LEASE_EXHAUSTED") {}

/** The request named a range the service does not have configured. */
export class LeaseUnknownRangeError extends errorClass("LEASE_UNKNOWN_RANGE") {}

/** The lease is not held any more (it expired and was reclaimed, or was released). */
export class LeaseUnknownError extends errorClass("LEASE_UNKNOWN") {}

/** The request did not show the lease's secret: only the client that acquired a lease can renew or release it. */
export class LeaseNotHolderError extends errorClass("LEASE_NOT_HOLDER") {}
/** The service refused the request as malformed (or the reply was malformed). */
export class LeaseInvalidRequestError extends errorClass("LEASE_INVALID_REQUEST") {}

/** No active lease service answered before the deadline (none running, failover, overload). */
export class LeaseUnavailableError extends errorClass("LEASE_UNAVAILABLE") {}

/** The service failed internally. */
export class LeaseServiceError extends errorClass("LEASE_SERVICE_FAILED") {}

/** Binding a granted port failed for a reason other than EADDRINUSE (`cause` has it). */
export class LeaseBindError extends errorClass("LEASE_BIND_FAILED") {}

/** Too many granted ports in a row were found taken; `busy` lists them. */
export class LeaseConflictLimitError extends errorClass("LEASE_CONFLICT_LIMIT") {
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
    case "not-holder":
      return new LeaseNotHolderError(message);
    case "invalid-request":
      return new LeaseInvalidRequestError(message);
    case "not-active":
      return new LeaseUnavailableError(message);
    case "internal":
      return new LeaseServiceError(message);
  }
}
