/**
 * The failure kinds of the agent protocol, one class each with its code from base/error-codes.ts
 * (STYLE.md item 6): what the agent refuses or fails at (sent back in a fault whose AgentFault
 * detail carries the code, and logged), what message security rejects, and what the caller of a
 * signed call sees (the workstation's client of an agent, and the agent's client of the
 * workstation's callback listener).
 */
import type { ErrorCode } from "../../base/error-codes.ts";
import { errorClass, errorGuard, SumacError } from "../../base/errors.ts";

// What the agent refuses or fails at.

/** The request body is over the agent's cap (HTTP 413). */
export class BodyTooLargeError extends errorClass("BODY_TOO_LARGE") {}

/** The body holds a DOCTYPE or ENTITY declaration: entity expansion and external entities are refused. */
export class XmlForbiddenError extends errorClass("XML_FORBIDDEN") {}

/** The body is not well-formed XML, or not a SOAP 1.1 envelope with one body element. */
export class MalformedXmlError extends errorClass("MALFORMED_XML") {}

/** The SOAPAction names no operation of the WSDL, or the body element disagrees with it. */
export class UnknownOperationError extends errorClass("UNKNOWN_OPERATION") {}

/** A request field is missing, of the wrong type, or out of range. */
export class InvalidRequestError extends errorClass("INVALID_REQUEST") {}

/** A file name resolves outside the staging directory (`..`, absolute, or through a symlink). */
export class PathEscapesStagingError extends errorClass("PATH_ESCAPES_STAGING") {}

/** The file to verify is not in the staging directory, or is not a regular file. */
export class StagedFileMissingError extends errorClass("STAGED_FILE_MISSING") {}

/** The staged file's size or SHA-256 is not what the workstation sent. */
export class StagedFileMismatchError extends errorClass("STAGED_FILE_MISMATCH") {}

/** An operation ran past its deadline; its child process, if any, was killed. */
export class DeadlineExceededError extends errorClass("DEADLINE_EXCEEDED") {}

/** Another install is running: the agent never runs two at once. */
export class InstallInProgressError extends errorClass("INSTALL_IN_PROGRESS") {}

/** The install was stopped before its end: a forced Shutdown, or the agent stopped by a signal. */
export class InstallStoppedError extends errorClass("INSTALL_STOPPED") {}

/** The agent is shutting down and takes no more work. */
export class ShuttingDownError extends errorClass("SHUTTING_DOWN") {}

/** A command could not be started (no shell, bad working directory). */
export class CommandFailedError extends errorClass("COMMAND_FAILED") {}

/** An unexpected failure inside the agent; the message says what. */
export class InternalAgentError extends errorClass("INTERNAL") {}

/** The path of a request that has no route (HTTP 404). */
export class NotFoundError extends errorClass("NOT_FOUND") {}

// Message security (message-security.ts). Every one is never retried as it is: sending the same
// bytes again fails the same way, and a sender that means to retry makes a new message (new
// sequence number, nonce and MAC).

const MESSAGE_SECURITY_CODES = [
  "MALFORMED_HEADER",
  "UNKNOWN_SESSION",
  "BAD_MAC",
  "STALE_TIMESTAMP",
  "FUTURE_TIMESTAMP",
  "REPLAYED",
  "OUT_OF_ORDER",
] as const;

/** Whether `error` is a rejection by message security; branch on `code`. */
export const isMessageSecurityError = errorGuard(MESSAGE_SECURITY_CODES);

/** The header is missing, has other fields, or a field has the wrong type, form or size. */
export class MalformedHeaderError extends errorClass("MALFORMED_HEADER") {}

/** The session id is not this connection's session, or the session was closed. */
export class UnknownSessionError extends errorClass("UNKNOWN_SESSION") {}

/** The MAC does not match: altered, forged, reflected or moved to another operation. */
export class BadMacError extends errorClass("BAD_MAC") {}

/** The timestamp is older than the allowed skew from the sender's clock (offset measured at Hello). */
export class StaleTimestampError extends errorClass("STALE_TIMESTAMP") {}

/** The timestamp is further ahead than the allowed skew from the sender's clock (offset measured at Hello). */
export class FutureTimestampError extends errorClass("FUTURE_TIMESTAMP") {}

/** The nonce is one of the latest accepted in this session. */
export class ReplayedMessageError extends errorClass("REPLAYED") {}

/** The sequence number is not exactly one more than the last accepted: a gap, repeat or reorder. */
export class OutOfOrderError extends errorClass("OUT_OF_ORDER") {}

// What the caller of a signed call sees.

/**
 * The codes a peer may put in a fault: what the agent refuses or fails at, what message security
 * rejects, and the callback listener's refusal of an agent it does not know. Any other code in a
 * fault (a target claiming a host key mismatch or a lease failure of the workstation's) is not
 * believed.
 */
const FAULT_CODES: ReadonlySet<string> = new Set<ErrorCode>([
  "BODY_TOO_LARGE",
  "XML_FORBIDDEN",
  "MALFORMED_XML",
  "UNKNOWN_OPERATION",
  "INVALID_REQUEST",
  "PATH_ESCAPES_STAGING",
  "STAGED_FILE_MISSING",
  "STAGED_FILE_MISMATCH",
  "DEADLINE_EXCEEDED",
  "INSTALL_IN_PROGRESS",
  "INSTALL_STOPPED",
  "SHUTTING_DOWN",
  "COMMAND_FAILED",
  "INTERNAL",
  "NOT_FOUND",
  ...MESSAGE_SECURITY_CODES,
  "UNKNOWN_AGENT",
]);

/**
 * The peer answered with a fault. `code` is the code the fault carries when a peer may send it
 * (BAD_MAC, REPLAYED, ...), else AGENT_RESPONSE; whether it is retried is this side's table's say,
 * not the peer's.
 */
export class AgentFaultError extends SumacError {
  /** The HTTP status the fault came with. */
  readonly status: number;

  constructor(fault: { code: string; message: string; status: number }) {
    super(
      FAULT_CODES.has(fault.code) ? (fault.code as ErrorCode) : "AGENT_RESPONSE",
      `agent fault ${fault.code}: ${fault.message}`,
    );
    this.status = fault.status;
  }
}

/**
 * A client of the run's CA that is not the agent's workstation: the agent refuses it when its TLS
 * handshake is done, before reading anything (logged, never sent: the connection just closes).
 */
export class UnknownWorkstationError extends errorClass("UNKNOWN_WORKSTATION") {}

/** The agent's certificate is not the pinned one, or the connection is not TLS 1.3. */
export class AgentIdentityError extends errorClass("AGENT_IDENTITY") {}

/** The connection to the agent failed, closed, or a call ran past its deadline. */
export class AgentConnectionError extends errorClass("AGENT_CONNECTION") {}

/** The agent's answer is not what the protocol says (no body element, wrong response element). */
export class AgentResponseError extends errorClass("AGENT_RESPONSE") {}
