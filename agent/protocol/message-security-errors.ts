/**
 * The failure kinds of message security (see `message-security.ts`), one class each. Every one is
 * `retryable: false`: sending the same bytes again fails the same way, and a sender that means to
 * retry must make a new message (new sequence number, nonce and MAC). The SOAP layer turns them into
 * faults carrying `code`, and logs them.
 */
import { AgentProtocolError } from "./errors.ts";

/** The stable codes, for guards and SOAP fault codes. */
export type MessageSecurityCode =
  | "MALFORMED_HEADER"
  | "UNKNOWN_SESSION"
  | "BAD_MAC"
  | "STALE_TIMESTAMP"
  | "FUTURE_TIMESTAMP"
  | "REPLAYED"
  | "OUT_OF_ORDER";

/** Any rejected message; branch on `code`. */
export abstract class MessageSecurityError extends AgentProtocolError {
  abstract override readonly code: MessageSecurityCode;
  readonly retryable = false;
}

/** The header is missing, has other fields, or a field has the wrong type, form or size. */
export class MalformedHeaderError extends MessageSecurityError {
  readonly code = "MALFORMED_HEADER";
}

/** The session id is not this connection's session, or the session was closed. */
export class UnknownSessionError extends MessageSecurityError {
  readonly code = "UNKNOWN_SESSION";
}

/** The MAC does not match: altered, forged, reflected or moved to another operation. */
export class BadMacError extends MessageSecurityError {
  readonly code = "BAD_MAC";
}

/** The timestamp is older than the allowed skew. */
export class StaleTimestampError extends MessageSecurityError {
  readonly code = "STALE_TIMESTAMP";
}

/** The timestamp is further ahead than the allowed skew. */
export class FutureTimestampError extends MessageSecurityError {
  readonly code = "FUTURE_TIMESTAMP";
}

/** The nonce was already accepted within the skew window. */
export class ReplayedMessageError extends MessageSecurityError {
  readonly code = "REPLAYED";
}

/** The sequence number is not exactly one more than the last accepted: a gap, repeat or reorder. */
export class OutOfOrderError extends MessageSecurityError {
  readonly code = "OUT_OF_ORDER";
}
