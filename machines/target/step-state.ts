/**
 * The states of the target machine's steps. Every step has the same shape, `running` (its actor,
 * under a deadline) and `retrying` (waiting out a backoff); the builders here differ only in
 * where a step goes on success and on failure.
 */
import { and } from "xstate";
import { CLEANUP_HOLDS, stepInput } from "./context.ts";
import { timeoutError, toStepError } from "./errors.ts";
import { policyFor } from "./policy.ts";
import { targetSetup } from "./setup.ts";
import {
  CLEANUP_STEPS,
  type CleanupStep,
  type StepError,
  type StepName,
  type TargetContext,
} from "./types.ts";
import * as u from "./updates.ts";

/** A transition out of a step, without its actions (the step adds them). */
interface Exit {
  target: string;
  guard?: "cancelRequested" | "moreToInstall";
  reenter?: boolean;
}

export const SHUTDOWN = "#target.shuttingDown";
const LOGS = "#target.exchanging.logs";
// Once the agent's session is up, a failure still collects the agent's logs before shutting down.
export const TO_LOGS_UNLESS_CANCELLED: Exit[] = [
  { guard: "cancelRequested", target: SHUTDOWN },
  { target: LOGS },
];

/** Variations of a step: a cleanup step, or ways out that need more than an {@link Exit}. */
interface StepExtras {
  skipUnlessHeld?: boolean;
  onDone?: typeof inventoryDone;
  runningOn?: { CANCEL: typeof installCancel };
}

/**
 * One step: `running` (the step's actor and its deadline) and `retrying` (waiting out a backoff).
 * `done` are the ways out on success (first match), `failTo` on a failure that is not retried.
 */
export function stepState(step: StepName, done: Exit[], failTo: Exit[], extra: StepExtras = {}) {
  const timeout = (c: TargetContext) => timeoutError(step, policyFor(c.job.policy, step).timeoutMs);
  const onDone =
    extra.onDone ??
    done.map((exit) => ({
      ...exit,
      actions: [
        {
          type: "applyOutput" as const,
          params: ({ event }: { event: { output: unknown } }) => ({ step, output: event.output }),
        },
        ...(exit.guard === "moreToInstall" ? (["nextComponent", "armTimer"] as const) : []),
      ],
    }));
  const failWith = (error: (args: { context: TargetContext; event: unknown }) => StepError) =>
    failTo.map((exit) => ({
      ...exit,
      actions: {
        type: "fail" as const,
        params: (args: { context: TargetContext; event: unknown }) => ({ step, error: error(args) }),
      },
    }));
  const errorOf = ({ event }: { event: unknown }) => toStepError((event as { error: unknown }).error);
  // The deadline is set and the timer armed by the transitions into `running` (beginStep,
  // nextAttempt, nextComponent) rather than by an entry action: one context update per start.
  const running = targetSetup.createStateConfig({
    invoke: [
      {
        // One state config serves every step, but xstate types `src` per actor name: the cast
        // names one of them. At run time `src` is the step, and stepInput gives that step's input.
        src: step as "connect",
        input: ({ context }) => stepInput(step, context),
        onDone,
        onError: [
          {
            guard: ({ context, event }) => u.canRetry(context, toStepError(event.error)),
            target: "retrying",
            actions: [
              { type: "armBackoff", params: ({ event }) => ({ error: toStepError(event.error) }) },
              "armTimer",
            ],
          },
          ...failWith(errorOf),
        ],
      },
    ],
    on: {
      ...extra.runningOn,
      "target.timer": [
        {
          guard: and(["deadlinePassed", ({ context }) => u.canRetry(context, timeout(context))]),
          target: "retrying",
          actions: [
            { type: "armBackoff", params: ({ context }) => ({ error: timeout(context) }) },
            "armTimer",
          ],
        },
        ...failWith(({ context }) => timeout(context)).map((exit) => ({
          ...exit,
          guard: exit.guard ? and(["deadlinePassed", exit.guard]) : ("deadlinePassed" as const),
        })),
      ],
    },
  });
  const retrying = targetSetup.createStateConfig({
    on: { "target.timer": { guard: "backoffOver", target: "running", actions: ["nextAttempt", "armTimer"] } },
  });
  if (extra.skipUnlessHeld) {
    // Cleanup: run only when what this step undoes may exist; `check` is left in the same
    // macrostep, so no snapshot is ever taken in it.
    const held = CLEANUP_HOLDS[step as CleanupStep];
    const skip = done[0]?.target ?? SHUTDOWN;
    return targetSetup.createStateConfig({
      initial: "check",
      states: {
        check: {
          always: [
            {
              guard: ({ context }) => context.held[held],
              target: "running",
              actions: [{ type: "beginStep", params: { step } }, "armTimer"],
            },
            { target: skip },
          ],
        },
        running,
        retrying,
      },
    });
  }
  return targetSetup.createStateConfig({
    initial: "running",
    entry: [{ type: "beginStep", params: { step } }, "armTimer"],
    states: { running, retrying },
  });
}

const applyInventory = {
  type: "applyOutput" as const,
  params: ({ event }: { event: { output: unknown } }) => ({
    step: "inventory" as const,
    output: event.output,
  }),
};

type Done = { context: TargetContext; event: { output: unknown } };

const inventoryDone = [
  {
    guard: ({ context, event }: Done) => u.inventoryError(context, event.output) !== null,
    target: LOGS,
    actions: [
      {
        type: "fail" as const,
        params: ({ context, event }: Done) => ({
          step: "inventory" as const,
          error: u.inventoryError(context, event.output) ?? toStepError(null),
        }),
      },
    ],
  },
  {
    guard: ({ context, event }: Done) =>
      context.job.inventoryOnly || !u.inventoryNeedsInstall(context, event.output),
    target: LOGS,
    actions: [applyInventory],
  },
  { target: "#target.exchanging.stage", actions: [applyInventory] },
];

const installCancel = [
  { guard: "forceCancel" as const, target: SHUTDOWN, actions: "forceCancel" as const },
  { actions: "cancel" as const },
];

/** CANCEL anywhere but install and shuttingDown: straight to shuttingDown. */
export const cancelToShutdown = { CANCEL: { target: SHUTDOWN, actions: "cancel" as const } };

/** shuttingDown's steps, in order; each is skipped when it has nothing to undo. */
export function cleanupStates() {
  const states: Record<string, ReturnType<typeof stepState>> = {};
  CLEANUP_STEPS.forEach((step, i) => {
    const next = CLEANUP_STEPS[i + 1];
    const to = next ? `#target.shuttingDown.${next}` : "#target.shuttingDown.finish";
    states[step] = stepState(step, [{ target: to }], [{ target: to }], { skipUnlessHeld: true });
  });
  return states;
}

// inventory: a plan that cannot be made (a version that cannot be compared) is the step's
// failure; a dry run, or nothing to install, goes straight to the logs.
export function inventoryState() {
  return stepState("inventory", [], TO_LOGS_UNLESS_CANCELLED, { onDone: inventoryDone });
}

// install: one component at a time. A first CANCEL lets the running install finish (HP SUM's
// abort); a second one, or CANCEL with force, stops it at once. Both end in shuttingDown.
export function installState() {
  return stepState(
    "install",
    [
      { guard: "cancelRequested", target: SHUTDOWN },
      { guard: "moreToInstall", target: "running", reenter: true },
      { target: LOGS },
    ],
    TO_LOGS_UNLESS_CANCELLED,
    { runningOn: { CANCEL: installCancel } },
  );
}
