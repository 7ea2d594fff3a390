/**
 * `sumac clean <job.yaml>`: for every target of the job, what earlier runs of sumac left there,
 * removed: agent processes (asked to stop, then ended), run directories, the agents' firewall
 * rules, and on Windows the `sumac-*` services of crashed runs. The logs and the opt-in agent cache
 * are kept. Each kind of target does its own (actors/target/transports: `clean`); nothing of a run
 * is started. Meant for when no run deploys to those targets: it cannot tell another
 * workstation's run in progress from one that crashed.
 */
import { closeQuietly, connectError } from "../actors/target/connect-steps.ts";
import type { StepLog, TargetAccess, TargetTransport } from "../actors/target/transport.ts";
import { createTransports } from "./compose.ts";
import type { Job } from "./job/types.ts";
import { targetAccess } from "./target-access.ts";

/** What the clean of one target did. */
export interface CleanedTarget {
  readonly id: string;
  readonly transport: TargetAccess["transport"];
  /** False when the target could not be reached or its clean did not finish (`error` says why). */
  readonly ok: boolean;
  /** What was removed or stopped, one line each (empty: nothing was left). */
  readonly done: readonly string[];
  readonly error?: string;
}

export interface CleanOptions {
  readonly stateDir: string;
  readonly env?: NodeJS.ProcessEnv;
  /** The targets' own log lines while they are cleaned (warnings of a forced stop, ...). */
  readonly log?: StepLog;
  /** Told of each target once it is done, in the order they finish. */
  readonly onTarget?: (result: CleanedTarget) => void;
  readonly signal?: AbortSignal;
}

/** `work` over `items`, at most `limit` at once, results in the items' order. */
async function mapWithConcurrency<T, R>(
  items: readonly T[],
  limit: number,
  work: (item: T) => Promise<R>,
): Promise<R[]> {
  const results: R[] = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      results[i] = await work(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  return results;
}

/** Cleans the job's targets, at most `options.concurrency` of the job at once. */
export async function cleanJob(job: Job, options: CleanOptions): Promise<CleanedTarget[]> {
  const env = options.env ?? process.env;
  const log: StepLog = options.log ?? (() => undefined);
  const transports = createTransports(job, options.stateDir, log, env);
  const signal = options.signal ?? new AbortController().signal;
  return mapWithConcurrency(job.targets, job.options.concurrency, async (target) => {
    const access = targetAccess(target, env);
    const transport = transports[access.transport] as TargetTransport;
    let result: CleanedTarget;
    try {
      const connection = await transport.open(access, signal).catch((error: unknown) => {
        throw connectError(access.id, error);
      });
      try {
        const done = await transport.clean(connection, access.id, signal);
        result = { id: access.id, transport: access.transport, ok: true, done };
      } finally {
        await closeQuietly(connection);
      }
    } catch (error) {
      result = {
        id: access.id,
        transport: access.transport,
        ok: false,
        done: [],
        error: error instanceof Error ? error.message : String(error),
      };
    }
    options.onTarget?.(result);
    return result;
  });
}
