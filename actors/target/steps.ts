/**
 * The step actors of the target machine, as plain async functions, and the one place they become
 * XState actors (`provideSteps`). Each group of steps is written as a factory over the interfaces
 * it needs (`connect-steps.ts`, `file-steps.ts`, `port-steps.ts`, `agent-steps.ts`,
 * `exchange-steps.ts`); run/compose.ts puts them together for a run.
 */
import { fromPromise } from "xstate";
import { targetMachine } from "../../machines/target/target.machine.ts";
import type { StepActorTypes } from "../../machines/target/step-io.ts";
import type { StepName } from "../../machines/target/types.ts";

/**
 * One step: its input, and a signal that aborts when the machine stops the step (deadline passed,
 * cancel forced, run stopped). A step throws an error with a string `code` and a `retryable` flag;
 * anything else is an unexpected error and is not retried (machines/target/errors.ts).
 */
export type StepImpl<S extends StepName> = (
  input: StepActorTypes[S][0],
  signal: AbortSignal,
) => Promise<StepActorTypes[S][1]>;

/** Every step the target machine invokes. */
export type StepImpls = { [S in StepName]: StepImpl<S> };

/** The target machine with the given steps as its actors. */
export function provideSteps(impls: StepImpls) {
  const actor = <S extends StepName>(step: S) =>
    fromPromise<StepActorTypes[S][1], StepActorTypes[S][0]>(({ input, signal }) =>
      impls[step](input, signal),
    );
  return targetMachine.provide({
    actors: {
      connect: actor("connect"),
      pushAgent: actor("pushAgent"),
      allocatePorts: actor("allocatePorts"),
      startAgent: actor("startAgent"),
      hello: actor("hello"),
      inventory: actor("inventory"),
      stage: actor("stage"),
      install: actor("install"),
      logs: actor("logs"),
      stopAgent: actor("stopAgent"),
      removeFiles: actor("removeFiles"),
      closeFirewall: actor("closeFirewall"),
      releaseLeases: actor("releaseLeases"),
      disconnect: actor("disconnect"),
    },
  });
}
