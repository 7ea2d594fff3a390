/**
 * Errors as the target machine keeps them: plain `{ code, retryable, message }` (a snapshot must be
 * JSON), taken from whatever a step actor threw, and classified for the operator.
 */
import { ERROR_CODES } from "../../base/error-codes.ts";
import { errorClass } from "../../base/errors.ts";
import type { FailureKind, StepError, StepName } from "./types.ts";

/** Longest message kept in the context; actors' messages can quote remote output. */
export const MAX_MESSAGE_LENGTH = 500;

function clip(message: string): string {
  return message.length > MAX_MESSAGE_LENGTH ? `${message.slice(0, MAX_MESSAGE_LENGTH - 1)}…` : message;
}

/**
 * The `{ code, retryable, message }` of an error thrown by a step actor. Anything without a string
 * `code` is an unexpected error and is not retried.
 */
export function toStepError(error: unknown): StepError {
  if (typeof error === "object" && error !== null) {
    const e = error as { code?: unknown; retryable?: unknown; message?: unknown };
    const message =
      typeof e.message === "string" ? e.message : `thrown ${Object.prototype.toString.call(error)}`;
    if (typeof e.code === "string" && e.code.length > 0) {
      return { code: e.code, retryable: e.retryable === true, message: clip(message) };
    }
    return {
      code: "UNEXPECTED_ERROR",
      retryable: ERROR_CODES.UNEXPECTED_ERROR.retryable,
      message: clip(message),
    };
  }
  return {
    code: "UNEXPECTED_ERROR",
    retryable: ERROR_CODES.UNEXPECTED_ERROR.retryable,
    message: clip(String(error)),
  };
}

/**
 * The error of an attempt that passed its deadline: `STEP_TIMEOUT`, retried, for every step but
 * `install`, whose is `INSTALL_TIMEOUT`, never retried: an install that did not answer in time may
 * still be running on the target, and running it again blindly could overlap it.
 */
export function timeoutError(step: StepName, timeoutMs: number): StepError {
  const code = step === "install" ? "INSTALL_TIMEOUT" : "STEP_TIMEOUT";
  return {
    code,
    retryable: ERROR_CODES[code].retryable,
    message: `${step} did not finish within ${timeoutMs} ms`,
  };
}

const KINDS: Record<StepName, FailureKind> = {
  connect: "connection",
  pushAgent: "connection",
  allocatePorts: "ports",
  startAgent: "agent",
  hello: "agent",
  inventory: "agent",
  stage: "agent",
  install: "component",
  logs: "agent",
  stopAgent: "cleanup",
  removeFiles: "cleanup",
  closeFirewall: "cleanup",
  releaseLeases: "cleanup",
  disconnect: "cleanup",
};

/** Which kind of failure a step's failure is, for the outcome. */
export function failureKind(step: StepName): FailureKind {
  return KINDS[step];
}

/** A step actor the machine was not given (`machine.provide({ actors })` was not called for it). */
export class StepNotProvidedError extends errorClass("STEP_NOT_PROVIDED") {
  constructor(step: StepName) {
    super(`no actor provided for step ${step}; give one with machine.provide({ actors })`);
  }
}
