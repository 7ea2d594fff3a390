/**
 * Test support for the run tests (run-*.test.ts, cli-run-*.test.ts): jobs made from a few lines,
 * fake step implementations scripted per target (no network), a manual clock the fake steps
 * advance, and gates a test opens to hold a step.
 */
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stringify } from "yaml";
import type { StepImpls } from "../../actors/target/steps.ts";
import { parseJob } from "../../run/job/load.ts";
import type { Job } from "../../run/job/types.ts";
import type { RunContext, StepsFactory } from "../../run/types.ts";
import type { StepError, StepName } from "../../machines/target/types.ts";

/** A clock the fake steps move: each step takes the time the script gives it. */
export class ManualClock {
  t = 1_700_000_000_000;
  now = (): number => this.t;
  advance(ms: number): void {
    this.t += ms;
  }
}

/** A step held until the test opens it. */
export interface Gate {
  readonly promise: Promise<void>;
  open(): void;
  /** Resolves when the step reached the gate. */
  readonly reached: Promise<void>;
  arrive(): void;
}

export function gate(): Gate {
  let open!: () => void;
  let arrive!: () => void;
  const promise = new Promise<void>((r) => (open = r));
  const reached = new Promise<void>((r) => (arrive = r));
  return { promise, open, reached, arrive };
}

/** What one target's fake steps do. */
export interface TargetScript {
  /** Inventory's answer: installed version per component id (absent: not installed). */
  installed?: Record<string, string>;
  /** Steps that fail for good with this error. */
  fail?: Partial<Record<StepName, StepError>>;
  rebootNeeded?: boolean;
  /** A step waits at this gate (after advancing the clock). */
  gates?: Partial<Record<StepName, Gate>>;
  /** A step that never ends unless aborted. */
  hang?: StepName;
}

/** Time each step takes on the manual clock. */
export const STEP_MS: Record<StepName, number> = {
  connect: 100,
  pushAgent: 200,
  allocatePorts: 10,
  startAgent: 300,
  hello: 20,
  inventory: 50,
  stage: 60,
  install: 500,
  logs: 40,
  stopAgent: 5,
  removeFiles: 6,
  closeFirewall: 7,
  releaseLeases: 8,
  disconnect: 9,
};

export interface FakeRecord {
  /** `target:step` in call order. */
  calls: string[];
  /** `target:step` of steps whose signal aborted. */
  aborted: string[];
  /** Targets between their connect and their disconnect, now and at most. */
  active: number;
  maxActive: number;
  closed: boolean;
  context?: RunContext;
}

function error(e: StepError): Error {
  return Object.assign(new Error(e.message), { code: e.code, retryable: e.retryable });
}

/**
 * A steps factory whose steps follow `scripts[targetId]` (default: everything succeeds), moving
 * `clock` by {@link STEP_MS} when they end. `onContext` sees the run's context before any target starts.
 */
export function fakeSteps(
  scripts: Record<string, TargetScript>,
  clock: ManualClock,
  onContext?: (context: RunContext) => void | Promise<void>,
): { factory: StepsFactory; record: FakeRecord } {
  const record: FakeRecord = { calls: [], aborted: [], active: 0, maxActive: 0, closed: false };
  const factory: StepsFactory = async (context) => {
    record.context = context;
    context.events.note("firewall: none (fake steps)");
    await onContext?.(context);
    const run =
      <S extends StepName>(step: S, body: (id: string, index: number) => unknown) =>
      async (input: { target: { id: string } }, signal: AbortSignal): Promise<never> => {
        const id = input.target.id;
        const script = scripts[id] ?? {};
        record.calls.push(`${id}:${step}`);
        signal.addEventListener("abort", () => record.aborted.push(`${id}:${step}`), { once: true });
        if (step === "connect") record.maxActive = Math.max(record.maxActive, ++record.active);
        // The step starts inside the machine's transition: let the run see that first.
        await new Promise((r) => setImmediate(r));
        const g = script.gates?.[step];
        if (g) {
          g.arrive();
          await g.promise;
        }
        if (script.hang === step)
          await new Promise((_, reject) =>
            signal.addEventListener("abort", () =>
              reject(error({ code: "ABORTED", retryable: false, message: "aborted" })),
            ),
          );
        clock.advance(STEP_MS[step]);
        if (step === "disconnect") record.active--;
        const failure = script.fail?.[step];
        if (failure) throw error(failure);
        const index = context.job.targets.findIndex((t) => t.id === id);
        return (await body(id, index)) as never;
      };
    const steps = {
      connect: run("connect", (id) => ({ sessionId: `s-${id}` })),
      pushAgent: run("pushAgent", (id) => ({ agentDir: `/var/tmp/sumac/run/${id}` })),
      allocatePorts: run("allocatePorts", (_id, i) => ({
        leases: {
          leaseIds: [`w${i}`, `c${i}`],
          workstationPort: 60000 + i,
          callbackPort: 61000 + i,
          agentPort: 62286,
        },
      })),
      startAgent: run("startAgent", (_id, i) => ({ agentPort: 62286 + (i % 2) })),
      hello: run("hello", () => ({ agentVersion: "0.1.0" })),
      inventory: run("inventory", (id) => {
        const installed: Record<string, string | null> = {};
        for (const c of context.job.package.components)
          installed[c.id] = scripts[id]?.installed?.[c.id] ?? null;
        return { installed };
      }),
      stage: run("stage", () => ({ files: 1, bytes: 10 })),
      install: run("install", (id) => {
        context.events.progress(id, "app", 50);
        context.events.log(id, "info", "installing app", { source: "agent", step: "install" });
        return { rebootNeeded: scripts[id]?.rebootNeeded ?? false };
      }),
      logs: run("logs", async (id) => {
        const dir = await context.targetLogDir(id);
        await writeFile(join(dir, "agent.log"), `log of ${id}\n`);
        return { location: dir, files: 1, bytes: `log of ${id}\n`.length };
      }),
      stopAgent: run("stopAgent", () => undefined),
      removeFiles: run("removeFiles", () => undefined),
      closeFirewall: run("closeFirewall", () => undefined),
      releaseLeases: run("releaseLeases", () => undefined),
      disconnect: run("disconnect", () => undefined),
    } as unknown as StepImpls;
    return {
      steps,
      close: () => {
        record.closed = true;
        return Promise.resolve();
      },
    };
  };
  return { factory, record };
}

/** A job of remote targets `ids` (never contacted: the steps are fakes) and components `id@version`. */
export function jobText(
  ids: readonly string[],
  components: readonly string[] = ["app@2.0"],
  concurrency = 32,
): string {
  return stringify({
    name: "test-job",
    targets: ids.map((id, i) => ({ name: id, host: `192.0.2.${i + 1}`, auth: { agent: true } })),
    package: {
      components: components.map((c) => {
        const [id, version] = c.split("@");
        return { id, version, detect: "true", install: "true" };
      }),
    },
    options: { concurrency },
  });
}

export async function makeJob(
  dir: string,
  ids: readonly string[],
  components?: readonly string[],
  concurrency?: number,
): Promise<{ job: Job; file: string }> {
  await mkdir(dir, { recursive: true });
  const file = join(dir, "job.yaml");
  const text = jobText(ids, components, concurrency);
  await writeFile(file, text);
  return { job: await parseJob(text, file), file };
}

/** A temporary directory removed by `cleanup`. */
export async function tempDir(): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), "sumac-run-"));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}
