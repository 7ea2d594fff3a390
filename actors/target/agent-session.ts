/**
 * The workstation's end of a target's agent, as the steps use it: the signed SOAP calls of a
 * session with the agent (agent/client/client.ts's AgentClient) and the callback listener the
 * agent reports to (agent/client/callback-listener.ts). The steps are given factories of these,
 * so that tests can run them against fakes.
 */
import type { AgentClientOptions } from "../../agent/client/client.ts";
import type { CallbackListenerOptions } from "../../agent/client/callback-listener.ts";
import type { ResultOf } from "../../agent/client/results.ts";
import type { XmlFields } from "../../agent/protocol/soap-envelope.ts";
import type { OperationName } from "../../agent/protocol/wire.ts";

/**
 * A session with one agent: one call at a time, each signed and its answer verified. A call
 * without `timeoutMs` waits as long as the agent allows the operation, plus a margin; a call whose
 * signal aborts closes the session (its connection cannot be reused).
 */
export interface AgentCalls {
  call<Op extends OperationName>(
    operation: Op,
    fields: XmlFields,
    options?: { timeoutMs?: number; signal?: AbortSignal },
  ): Promise<ResultOf<Op>>;
  /** True once the connection is gone: a step then opens a new session (agent-link.ts). */
  readonly closed: boolean;
  /**
   * The agent's clock minus this workstation's, in ms, as measured on the first answer of the
   * session (Hello's); undefined before it.
   */
  readonly clockOffsetMs?: number | undefined;
  close(): void;
}

/** Opens a session with an agent (AgentClient.connect). */
export type ConnectAgent = (options: AgentClientOptions) => Promise<AgentCalls>;

/** A callback listener, bound. */
export interface CallbackListenerHandle {
  readonly port: number;
  /**
   * Resolves true once a message from the agent whose callback certificate is `fingerprint256`
   * was accepted (now or before), false when none comes within `timeoutMs` or `signal` aborts.
   */
  heardFrom(fingerprint256: string, options: { timeoutMs: number; signal?: AbortSignal }): Promise<boolean>;
  close(): Promise<void>;
}

/** Starts a callback listener (startCallbackListener). */
export type StartCallbackListener = (options: CallbackListenerOptions) => Promise<CallbackListenerHandle>;
