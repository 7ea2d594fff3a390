/**
 * Time for the target machine: the current time and a timer, both from the actor system's clock,
 * so that `createActor(machine, { clock: new SimulatedClock() })` runs every deadline and backoff
 * without real waiting.
 *
 * Why a timer actor and not `after`: XState v5 does not re-arm `after` delays when an actor is
 * restored from a persisted snapshot, but it does restore and start its children again. The
 * machine therefore keeps absolute times in its context (`deadlineAt`, `retryAt`) and arms
 * {@link deadlineTimer} with them; a restored timer arms again for the time that is left.
 */
import type { ActorLogic, ActorScope, ActorSystem } from "xstate";

// xstate does not export its Clock and AnyActorSystem types by name; these are the same types.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyActorSystem = ActorSystem<any>;
/** XState's clock: what `createActor(logic, { clock })` takes. */
export type Clock = AnyActorSystem["_clock"];

/** A clock that can also tell the time, as XState's `SimulatedClock` can. */
export interface TimeClock extends Clock {
  now(): number;
}

function hasNow(clock: Clock): clock is TimeClock {
  return typeof (clock as Partial<TimeClock>).now === "function";
}

// XState keeps the `clock` given to createActor as `system._clock` (declared in its public
// ActorSystem type). Its own default clock has no now(): it wraps the global timers, so Date.now()
// is the matching time. A custom clock without now() would not match; use one that has it.
function systemClock(system: AnyActorSystem): Clock {
  return system._clock;
}

/** Current time on the clock of the actor system (ms). */
export function clockNow(system: AnyActorSystem): number {
  const clock = systemClock(system);
  return hasNow(clock) ? clock.now() : Date.now();
}

/** Commands the machine sends to its timer. */
export type TimerCommand = { type: "timer.arm"; at: number } | { type: "timer.disarm" };

/** Event the timer sends to the machine when the armed time comes; `at` is the time armed. */
export interface TimerEvent {
  type: "target.timer";
  at: number;
}

/** The timer's snapshot: the time it is armed for, persisted with the machine's snapshot. */
export interface TimerSnapshot {
  status: "active" | "done" | "error" | "stopped";
  output: undefined;
  error: undefined;
  at: number | null;
}

type Scope = ActorScope<TimerSnapshot, TimerCommand | { type: "xstate.stop" }>;

// Clock handles live outside the snapshot (it must stay JSON), keyed by the timer actor.
const handles = new WeakMap<object, unknown>();

function disarm(scope: Scope): void {
  const handle = handles.get(scope.self);
  if (handle === undefined) return;
  handles.delete(scope.self);
  systemClock(scope.system).clearTimeout(handle);
}

function arm(scope: Scope, at: number | null): void {
  disarm(scope);
  if (at === null) return;
  const { self, system } = scope;
  const delay = Math.max(0, at - clockNow(system));
  const handle: unknown = systemClock(system).setTimeout(() => {
    handles.delete(self);
    if (self.getSnapshot().status === "active")
      self._parent?.send({ type: "target.timer", at } satisfies TimerEvent);
  }, delay);
  handles.set(self, handle);
}

/**
 * One timer per target machine, armed for an absolute time (`timer.arm`), sending `target.timer`
 * to the machine when that time comes on the system's clock. Arming again replaces the time. The
 * armed time is the timer's snapshot, persisted with the machine's: a restored machine restarts
 * its children, and this one then arms again for the time that is left.
 *
 * (A timer actor invoked per state would also be restarted on restore, but creating and stopping
 * an actor for every step costs more than sending it an event: measured, about a third of the
 * machine's throughput.)
 */
export const deadlineTimer: ActorLogic<TimerSnapshot, TimerCommand | { type: "xstate.stop" }> = {
  getInitialSnapshot: () => ({ status: "active", output: undefined, error: undefined, at: null }),
  start: (snapshot, scope) => arm(scope, snapshot.at),
  transition: (snapshot, event, scope) => {
    switch (event.type) {
      case "timer.arm":
        arm(scope, event.at);
        return { ...snapshot, at: event.at };
      case "timer.disarm":
        disarm(scope);
        return { ...snapshot, at: null };
      case "xstate.stop":
        disarm(scope);
        return { ...snapshot, status: "stopped", at: null };
      default:
        return snapshot;
    }
  },
  getPersistedSnapshot: (snapshot) => snapshot,
};
