/**
 * The agent's own failure kinds (besides message security's, in `message-security-errors.ts`), one
 * class each with a stable `code`. The SOAP layer turns every one into a fault whose AgentFault
 * detail carries that code, and logs it.
 */
import { AgentProtocolError } from "./errors.ts";

/** The request body is over the agent's cap (HTTP 413). */
export class BodyTooLargeError extends AgentProtocolError {
  readonly code = "BODY_TOO_LARGE";
  readonly retryable = false;
}

/** The body holds a DOCTYPE or ENTITY declaration: entity expansion and external entities are refused. */
export class XmlForbiddenError extends AgentProtocolError {
  readonly code = "XML_FORBIDDEN";
  readonly retryable = false;
}

/** The body is not well-formed XML, or not a SOAP 1.1 envelope with one body element. */
export class MalformedXmlError extends AgentProtocolError {
  readonly code = "MALFORMED_XML";
  readonly retryable = false;
}

/** The SOAPAction names no operation of the WSDL, or the body element disagrees with it. */
export class UnknownOperationError extends AgentProtocolError {
  readonly code = "UNKNOWN_OPERATION";
  readonly retryable = false;
}

/** A request field is missing, of the wrong type, or out of range. */
export class InvalidRequestError extends AgentProtocolError {
  readonly code = "INVALID_REQUEST";
  readonly retryable = false;
}

/** A file name resolves outside the staging directory (`..`, absolute, or through a symlink). */
export class PathEscapesStagingError extends AgentProtocolError {
  readonly code = "PATH_ESCAPES_STAGING";
  readonly retryable = false;
}

/** The file to verify is not in the staging directory, or is not a regular file. */
export class StagedFileMissingError extends AgentProtocolError {
  readonly code = "STAGED_FILE_MISSING";
  readonly retryable = true;
}

/** The staged file's size or SHA-256 is not what the workstation sent. */
export class StagedFileMismatchError extends AgentProtocolError {
  readonly code = "STAGED_FILE_MISMATCH";
  readonly retryable = true;
}

/** An operation ran past its deadline; its child process, if any, was killed. */
export class DeadlineExceededError extends AgentProtocolError {
  readonly code = "DEADLINE_EXCEEDED";
  readonly retryable = true;
}

/** Another install is running: the agent never runs two at once. */
export class InstallInProgressError extends AgentProtocolError {
  readonly code = "INSTALL_IN_PROGRESS";
  readonly retryable = true;
}

/** The agent is shutting down and takes no more work. */
export class ShuttingDownError extends AgentProtocolError {
  readonly code = "SHUTTING_DOWN";
  readonly retryable = false;
}

/** A command could not be started (no shell, bad working directory). */
export class CommandFailedError extends AgentProtocolError {
  readonly code = "COMMAND_FAILED";
  readonly retryable = false;
}

/** An unexpected failure inside the agent; the message says what. */
export class InternalAgentError extends AgentProtocolError {
  readonly code = "INTERNAL";
  readonly retryable = false;
}

/** The path of a request that has no route (HTTP 404). */
export class NotFoundError extends AgentProtocolError {
  readonly code = "NOT_FOUND";
  readonly retryable = false;
}
