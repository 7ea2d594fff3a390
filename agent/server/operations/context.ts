/**
 * What the operations need from the agent, passed in (STYLE.md item 8): settings from the agent's
 * config, the log, and the facts of the request's session. No module-level state.
 */
import { type AgentLog, DEFAULT_LOG_FILE_BYTES } from "../agent-log.ts";
import type { CallbackMessage } from "../../protocol/callback-messages.ts";

/** The limits every operation works within; defaults in `DEFAULT_LIMITS`. */
export interface AgentLimits {
  /** Deadline of operations that name none of their own (Hello, Stage, Logs, Shutdown). */
  readonly operationTimeoutMs: number;
  /** Default and cap of a detect command's deadline. */
  readonly detectTimeoutMs: number;
  /** Default install deadline; a request may ask for up to maxInstallTimeoutMs. */
  readonly installTimeoutMs: number;
  readonly maxInstallTimeoutMs: number;
  /** Bytes of a command's stdout and of its stderr that are kept. */
  readonly maxOutputBytes: number;
  /** Bytes of each log file returned by Logs (the last ones), and of all together. */
  readonly maxLogBytesPerFile: number;
  readonly maxLogBytesTotal: number;
  /** Cap of the agent's own log file on the target (agent-log.ts); the job's `output.agentLog`. */
  readonly maxLogFileBytes: number;
}

export const DEFAULT_LIMITS: AgentLimits = {
  operationTimeoutMs: 30_000,
  detectTimeoutMs: 30_000,
  installTimeoutMs: 30 * 60_000,
  maxInstallTimeoutMs: 4 * 60 * 60_000,
  maxOutputBytes: 64 * 1024,
  maxLogBytesPerFile: 256 * 1024,
  maxLogBytesTotal: 512 * 1024,
  maxLogFileBytes: DEFAULT_LOG_FILE_BYTES,
};

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

/** Tracks the one install that may run, so Shutdown can wait for it (HP SUM: finish the component). */
export interface InstallSlot {
  current: Promise<unknown> | undefined;
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
