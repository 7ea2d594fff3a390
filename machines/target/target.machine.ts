/**
 * The life of one target as an XState v5 machine, with no I/O of its own:
 * queued → connecting → pushingAgent → allocatingPorts → startingAgent → exchanging (hello,
 * inventory, stage, install, logs) → shuttingDown → succeeded | failed | cancelled.
 *
 * Every step is an actor named in `setup({ actors })` and provided later with
 * `targetMachine.provide({ actors })`. Each attempt has a deadline kept in the context as an
 * absolute time and watched by the `deadlineTimer` actor on the system's clock, so a machine
 * restored from a persisted snapshot re-arms it. See docs/target-machine.md.
 */
import type { StateValueFrom } from "xstate";
import { initialContext, outcome } from "./context.ts";
import { targetSetup } from "./setup.ts";
import {
  cancelToShutdown,
  cleanupStates,
  installState,
  inventoryState,
  SHUTDOWN,
  stepState,
  TO_LOGS_UNLESS_CANCELLED,
} from "./step-state.ts";

/**
 * The target machine. Start it with `{ input: TargetMachineInput }`, send `START` to leave
 * `queued`; its output is a `TargetOutcome` (types.ts).
 *
 * @example
 * const actor = createActor(targetMachine.provide({ actors }), { input, clock });
 * actor.subscribe(() => store.save(actor.getPersistedSnapshot()));
 * actor.start();
 * actor.send({ type: "START" });
 */
export const targetMachine = targetSetup.createMachine({
  id: "target",
  context: ({ input }) => initialContext(input),
  initial: "queued",
  // One timer for the machine's whole life (see deadlineTimer for why not one per state).
  invoke: { id: "timer", src: "deadlineTimer" },
  output: ({ context }) => outcome(context),
  states: {
    queued: {
      on: { START: "connecting", ...cancelToShutdown },
    },
    connecting: {
      ...stepState("connect", [{ target: "#target.pushingAgent" }], [{ target: SHUTDOWN }]),
      on: cancelToShutdown,
    },
    pushingAgent: {
      ...stepState("pushAgent", [{ target: "#target.allocatingPorts" }], [{ target: SHUTDOWN }]),
      on: cancelToShutdown,
    },
    allocatingPorts: {
      ...stepState("allocatePorts", [{ target: "#target.startingAgent" }], [{ target: SHUTDOWN }]),
      on: cancelToShutdown,
    },
    startingAgent: {
      ...stepState("startAgent", [{ target: "#target.exchanging" }], [{ target: SHUTDOWN }]),
      on: cancelToShutdown,
    },
    exchanging: {
      initial: "hello",
      on: cancelToShutdown,
      states: {
        hello: stepState("hello", [{ target: "#target.exchanging.inventory" }], [{ target: SHUTDOWN }]),
        inventory: inventoryState(),
        stage: stepState("stage", [{ target: "#target.exchanging.install" }], TO_LOGS_UNLESS_CANCELLED),
        install: installState(),
        logs: stepState("logs", [{ target: SHUTDOWN }], [{ target: SHUTDOWN }]),
      },
    },
    shuttingDown: {
      // CANCEL is not handled here: cleanup runs to its end whatever is asked.
      initial: "stopAgent",
      states: {
        ...cleanupStates(),
        finish: {
          always: [
            { guard: "failed", target: "#target.failed" },
            { guard: "cancelRequested", target: "#target.cancelled" },
            { target: "#target.succeeded" },
          ],
        },
      },
    },
    succeeded: { type: "final", entry: ["settle", "armTimer"] },
    failed: { type: "final", entry: ["settle", "armTimer"] },
    cancelled: { type: "final", entry: ["settle", "armTimer"] },
  },
});

/** A top-level state of the target machine (a step is a sub-state of exchanging and shuttingDown). */
export type TargetStateName = TopLevel<StateValueFrom<typeof targetMachine>>;
type TopLevel<V> = V extends string ? V : keyof V & string;

/**
 * The machine's top-level states in the order it defines them: what event schemas and displays
 * list (run/events/target-schemas.ts), taken from the machine so that they cannot drift from it.
 */
export const TARGET_STATES = Object.keys(targetMachine.config.states ?? {}) as [
  TargetStateName,
  ...TargetStateName[],
];
