/**
 * What the operations need from the agent, passed in (STYLE.md item 8): settings from the agent's
 * config, the log, and the facts of the request's session. No module-level state.
 */
import type { AgentLog } from "../agent-log.ts";
import type { CallbackMessage } from "../../protocol/callback-messages.ts";
import type { AgentLimits } from "../../protocol/deadlines.ts";

// The limits are the protocol's: the workstation's call deadlines are read from the same table.
export { type AgentLimits, DEFAULT_LIMITS } from "../../protocol/deadlines.ts";

/** The agent's identity and places, from its config. */
export interface AgentSettings {
  readonly agentVersion: string;
  readonly runId: string;
  readonly targetId: string;
  readonly stagingDir: string;
  readonly limits: AgentLimits;
}

/** One request's facts: which session sent it and over which port. */
export interface RequestFacts {
  readonly sessionId: string;
  readonly peer: string;
  readonly port: number;
}

/**
 * Tracks the one install that may run, so that Shutdown can wait for it (HP SUM: finish the
 * component), or stop it when the stop is forced.
 */
export interface InstallSlot {
  current: Promise<unknown> | undefined;
  /** Stops the install in progress: its process group gets SIGTERM, then SIGKILL. */
  stop?: ((reason: Error) => void) | undefined;
}

/** Everything an operation handler may use. */
export interface OperationContext {
  readonly settings: AgentSettings;
  readonly log: AgentLog;
  readonly installs: InstallSlot;
  /** Sends messages to the workstation's callback listener, best effort; absent without a callback. */
  readonly callback?: CallbackSink;
}

/** Where operations send callback messages; sending never throws and never blocks the operation. */
export interface CallbackSink {
  send(message: CallbackMessage): unknown;
}

/** An operation: the parsed arguments in, the response object out (its fields as in the WSDL). */
export type OperationHandler = (
  args: unknown,
  facts: RequestFacts,
  signal: AbortSignal,
) => Promise<Record<string, unknown>>;
