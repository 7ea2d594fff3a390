/**
 * The target machine's setup: its types, the step actors it invokes (each failing with
 * STEP_NOT_PROVIDED until provided), its guards and its actions. Actions only update the context
 * through the pure functions of updates.ts and arm the timer.
 */
import { assign, fromPromise, sendTo, setup } from "xstate";
import { clockNow, deadlineTimer, type TimerCommand } from "./clock.ts";
import { StepNotProvidedError } from "./errors.ts";
import type { StepActorTypes } from "./step-io.ts";
import type {
  StepError,
  StepName,
  TargetContext,
  TargetEvent,
  TargetMachineInput,
  TargetOutcome,
} from "./types.ts";
import * as u from "./updates.ts";

function notProvided<S extends StepName>(step: S) {
  return fromPromise<StepActorTypes[S][1], StepActorTypes[S][0]>(() =>
    Promise.reject(new StepNotProvidedError(step)),
  );
}

/** The setup every part of the target machine is built from. */
export const targetSetup = setup({
  types: {
    context: {} as TargetContext,
    events: {} as TargetEvent,
    input: {} as TargetMachineInput,
    output: {} as TargetOutcome,
  },
  actors: {
    connect: notProvided("connect"),
    pushAgent: notProvided("pushAgent"),
    allocatePorts: notProvided("allocatePorts"),
    startAgent: notProvided("startAgent"),
    hello: notProvided("hello"),
    inventory: notProvided("inventory"),
    stage: notProvided("stage"),
    install: notProvided("install"),
    logs: notProvided("logs"),
    stopAgent: notProvided("stopAgent"),
    removeFiles: notProvided("removeFiles"),
    closeFirewall: notProvided("closeFirewall"),
    releaseLeases: notProvided("releaseLeases"),
    disconnect: notProvided("disconnect"),
    deadlineTimer,
  },
  guards: {
    cancelRequested: ({ context }) => context.cancel !== "none",
    // A second CANCEL during an install, or one with force, stops the install at once.
    forceCancel: ({ context, event }) =>
      (event.type === "CANCEL" && event.force === true) || context.cancel !== "none",
    moreToInstall: ({ context }) => u.moreToInstall(context),
    failed: ({ context }) => context.failure !== null,
    // A timer event for a time no longer armed (replaced in the same tick) is ignored.
    deadlinePassed: ({ context, event }) => event.type === "target.timer" && event.at === context.deadlineAt,
    backoffOver: ({ context, event }) => event.type === "target.timer" && event.at === context.retryAt,
  },
  actions: {
    beginStep: assign(({ context, system }, params: { step: StepName }) =>
      u.beginStep(context, params.step, clockNow(system)),
    ),
    armBackoff: assign(({ context, system }, params: { error: StepError }) =>
      u.armBackoff(context, params.error, clockNow(system)),
    ),
    nextAttempt: assign(({ context, system }) => u.nextAttempt(context, clockNow(system))),
    nextComponent: assign(({ context, system }) => u.nextComponent(context, clockNow(system))),
    applyOutput: assign(({ context }, params: { step: StepName; output: unknown }) =>
      u.applyOutput(context, params.step, params.output),
    ),
    fail: assign(({ context, system }, params: { step: StepName; error: StepError }) =>
      u.recordFailure(context, params.step, params.error, clockNow(system)),
    ),
    cancel: assign(({ event }) => ({
      cancel: event.type === "CANCEL" && event.force === true ? ("force" as const) : ("graceful" as const),
    })),
    forceCancel: assign({ cancel: "force" as const }),
    // Arms the timer for the running attempt's deadline or the backoff's end, whichever is set.
    armTimer: sendTo("timer", ({ context }): TimerCommand => {
      const at = context.retryAt ?? context.deadlineAt;
      return at === null ? { type: "timer.disarm" } : { type: "timer.arm", at };
    }),
    settle: assign({ step: null, deadlineAt: null, retryAt: null }),
  },
});
