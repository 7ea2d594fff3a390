/**
 * Test support for the target machine: scripted fake step actors, a simulated clock, and helpers
 * to drive an actor until it settles. No I/O and no real waiting.
 */
import {
  createActor,
  fromPromise,
  SimulatedClock,
  type Actor,
  type Snapshot,
  type SnapshotFrom,
} from "xstate";
import { targetMachine } from "../../machines/target/target.machine.ts";
import {
  CLEANUP_STEPS,
  MAIN_STEPS,
  type StepError,
  type StepName,
  type TargetMachineInput,
} from "../../machines/target/types.ts";
import type { StepActorTypes } from "../../machines/target/step-io.ts";

export const ALL_STEPS: readonly StepName[] = [...MAIN_STEPS, ...CLEANUP_STEPS];

/** Where each step runs, as a state path. */
export const STATE_OF: Record<StepName, string> = {
  connect: "connecting",
  pushAgent: "pushingAgent",
  allocatePorts: "allocatingPorts",
  startAgent: "startingAgent",
  hello: "exchanging.hello",
  inventory: "exchanging.inventory",
  stage: "exchanging.stage",
  install: "exchanging.install",
  logs: "exchanging.logs",
  stopAgent: "shuttingDown.stopAgent",
  removeFiles: "shuttingDown.removeFiles",
  closeFirewall: "shuttingDown.closeFirewall",
  releaseLeases: "shuttingDown.releaseLeases",
  disconnect: "shuttingDown.disconnect",
};

export const LEASES = {
  leaseIds: ["L1", "L2"],
  workstationPort: 60000,
  callbackPort: 61000,
  agentPort: 62286,
};

export const OUTPUTS: { [K in StepName]: StepActorTypes[K][1] } = {
  connect: { sessionId: "ssh-1" },
  pushAgent: { agentDir: "/tmp/sumac-agent" },
  allocatePorts: { leases: LEASES },
  startAgent: { agentPort: 62287 },
  hello: { agentVersion: "1.0.0" },
  inventory: { installed: {} },
  stage: { files: 2, bytes: 2048 },
  install: { rebootNeeded: false },
  logs: { location: "runs/r1/t1/logs", files: 3, bytes: 900 },
  stopAgent: undefined,
  removeFiles: undefined,
  closeFirewall: undefined,
  releaseLeases: undefined,
  disconnect: undefined,
};

/** A controllable result: the step's promise waits until the test resolves or rejects it. */
export interface Gate {
  promise: Promise<unknown>;
  resolve(value: unknown): void;
  reject(error: unknown): void;
}

export function gate(): Gate {
  let resolve!: (v: unknown) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<unknown>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/**
 * What one call of a step does: `ok` (default output), `hang` (until aborted), an error to throw,
 * `{ output }`, `{ throws }` (any value, as is), or a gate the test opens.
 */
export type Behaviour = "ok" | "hang" | StepError | { output: unknown } | { throws: unknown } | Gate;

export function stepError(code: string, retryable: boolean): StepError {
  return { code, retryable, message: `${code} from a fake` };
}

export interface Call {
  step: StepName;
  input: unknown;
}

/** Fake step actors following a script; every call and every abort is recorded. */
export class FakeSteps {
  readonly calls: Call[] = [];
  readonly aborted: StepName[] = [];
  private readonly script = new Map<StepName, Behaviour[]>();
  private readonly always = new Map<StepName, Behaviour>();

  constructor(script: Partial<Record<StepName, Behaviour[]>> = {}) {
    for (const [step, list] of Object.entries(script)) this.script.set(step as StepName, [...list]);
  }

  /** Every call of `step` from now on behaves this way (after scripted ones are used up). */
  setAlways(step: StepName, behaviour: Behaviour): this {
    this.always.set(step, behaviour);
    return this;
  }

  called(step: StepName): number {
    return this.calls.filter((c) => c.step === step).length;
  }

  steps(): StepName[] {
    return this.calls.map((c) => c.step);
  }

  private async run(step: StepName, input: unknown, signal: AbortSignal): Promise<unknown> {
    this.calls.push({ step, input });
    const behaviour = this.script.get(step)?.shift() ?? this.always.get(step) ?? "ok";
    signal.addEventListener("abort", () => this.aborted.push(step), { once: true });
    if (behaviour === "ok") return OUTPUTS[step];
    if (behaviour === "hang") {
      return new Promise((_, reject) => signal.addEventListener("abort", () => reject(new Error("aborted"))));
    }
    if ("promise" in behaviour) return behaviour.promise;
    if ("output" in behaviour) return behaviour.output;
    if ("throws" in behaviour) throw behaviour.throws;
    throw Object.assign(new Error(behaviour.message), behaviour);
  }

  private fake<S extends StepName>(step: S) {
    return fromPromise<StepActorTypes[S][1], StepActorTypes[S][0]>(
      ({ input, signal }) => this.run(step, input, signal) as Promise<StepActorTypes[S][1]>,
    );
  }

  /** The machine with these fakes provided. */
  machine() {
    return targetMachine.provide({
      actors: {
        connect: this.fake("connect"),
        pushAgent: this.fake("pushAgent"),
        allocatePorts: this.fake("allocatePorts"),
        startAgent: this.fake("startAgent"),
        hello: this.fake("hello"),
        inventory: this.fake("inventory"),
        stage: this.fake("stage"),
        install: this.fake("install"),
        logs: this.fake("logs"),
        stopAgent: this.fake("stopAgent"),
        removeFiles: this.fake("removeFiles"),
        closeFirewall: this.fake("closeFirewall"),
        releaseLeases: this.fake("releaseLeases"),
        disconnect: this.fake("disconnect"),
      },
    });
  }
}

/** Test policy: 1 s deadlines, 3 attempts, backoff 100, 200, 400 ms without jitter. */
export const TIMEOUT_MS = 1000;
export const BACKOFF = { initialMs: 100, factor: 2, maxMs: 1000, jitter: 0 };

export function input(over: Partial<TargetMachineInput> = {}): TargetMachineInput {
  return {
    runId: "r1",
    target: { id: "t1", host: "10.0.0.5", os: "linux" },
    components: [
      { id: "fw", version: "2.1.0" },
      { id: "nic", version: "1.4" },
    ],
    policy: { all: { timeoutMs: TIMEOUT_MS, maxAttempts: 3, backoff: BACKOFF } },
    ...over,
  };
}

export type TargetActor = Actor<typeof targetMachine>;
export type TargetSnapshot = SnapshotFrom<typeof targetMachine>;

/** Dotted path of the deepest active state, e.g. `exchanging.install.running`. */
export function pathOf(snapshot: { value: unknown }): string {
  const parts: string[] = [];
  let v = snapshot.value;
  while (typeof v === "object" && v !== null) {
    const [key, next] = Object.entries(v)[0] as [string, unknown];
    parts.push(key);
    v = next;
  }
  parts.push(String(v));
  return parts.join(".");
}

/** A clock at a non-zero time, so that absolute deadlines are visibly absolute. */
export function clockAt(ms = 1_000_000): SimulatedClock {
  const clock = new SimulatedClock();
  clock.set(ms);
  return clock;
}

export interface Run {
  actor: TargetActor;
  clock: SimulatedClock;
  /** Every state path the actor went through, in order, without repeats in a row. */
  paths: string[];
  /** `getPersistedSnapshot()` after every transition, as returned. */
  persisted: unknown[];
}

/** Starts a target actor (sending START unless told not to) and records its transitions. */
export function start(
  steps: FakeSteps,
  options: { input?: TargetMachineInput; clock?: SimulatedClock; snapshot?: unknown; send?: boolean } = {},
): Run {
  const clock = options.clock ?? clockAt();
  // xstate's types ask for the input even when restoring; a snapshot's context wins over it.
  const actor = createActor(steps.machine(), {
    clock,
    input: options.input ?? input(),
    ...(options.snapshot ? { snapshot: options.snapshot as Snapshot<unknown> } : {}),
  });
  const run: Run = { actor, clock, paths: [], persisted: [] };
  actor.subscribe({
    next: (s) => {
      const p = pathOf(s);
      if (run.paths.at(-1) !== p) run.paths.push(p);
      run.persisted.push(actor.getPersistedSnapshot());
    },
    error: () => {},
  });
  actor.start();
  if (options.send !== false && !options.snapshot) actor.send({ type: "START" });
  return run;
}

/** The actor's persisted snapshot as a store would give it back: through JSON text. */
export function persist(actor: TargetActor): unknown {
  return JSON.parse(JSON.stringify(actor.getPersistedSnapshot()));
}

/** Lets promises settle until the actor stops changing (bounded; no timers involved). */
export async function settle(actor: TargetActor): Promise<TargetSnapshot> {
  let last: unknown;
  for (let quiet = 0, i = 0; quiet < 3 && i < 500; i++) {
    await new Promise((r) => setImmediate(r));
    const now = actor.getSnapshot();
    quiet = now === last ? quiet + 1 : 0;
    last = now;
  }
  return actor.getSnapshot();
}

/** Drives the run until its deepest state path starts with `prefix`; throws if it never does. */
export async function until(run: Run, prefix: string): Promise<TargetSnapshot> {
  const s = await settle(run.actor);
  if (!pathOf(s).startsWith(prefix)) {
    throw new Error(`expected state ${prefix}, got ${pathOf(s)} after ${run.paths.join(" > ")}`);
  }
  return s;
}
