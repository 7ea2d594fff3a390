/**
 * Failures seen by the workstation's agent client, one class each (STYLE.md item 6).
 */
import { AgentProtocolError } from "./errors.ts";

/** The agent answered with a fault; `code` is the agent's stable code (BAD_MAC, REPLAYED, ...). */
export class AgentFaultError extends AgentProtocolError {
  readonly code: string;
  readonly retryable: boolean;
  /** The HTTP status the fault came with. */
  readonly status: number;

  constructor(fault: { code: string; retryable: boolean; message: string; status: number }) {
    super(`agent fault ${fault.code}: ${fault.message}`);
    this.code = fault.code;
    this.retryable = fault.retryable;
    this.status = fault.status;
  }
}

/** The agent's certificate is not the pinned one, or the connection is not TLS 1.3. */
export class AgentIdentityError extends AgentProtocolError {
  readonly code = "AGENT_IDENTITY";
  readonly retryable = false;
}

/** The connection to the agent failed, closed, or a call ran past its deadline. */
export class AgentConnectionError extends AgentProtocolError {
  readonly code = "AGENT_CONNECTION";
  readonly retryable = true;
}

/** The agent's answer is not what the protocol says (no body element, wrong response element). */
export class AgentResponseError extends AgentProtocolError {
  readonly code = "AGENT_RESPONSE";
  readonly retryable = false;
}
