/**
 * Deadlines for the agent's operations (STYLE.md item 7): the timeout error is created when the
 * timer is armed, so its stack names the operation that timed out, and the work gets an
 * AbortSignal that fires at the deadline so child processes are killed, not left running.
 */
import { DeadlineExceededError } from "../protocol/errors.ts";

/**
 * Runs `work` with a signal that aborts after `ms`, and rejects with DEADLINE_EXCEEDED then, even
 * when `work` ignores the signal.
 *
 * @example
 * const out = await withDeadline("Inventory", 10_000, (signal) => runCommand(cmd, { signal }));
 */
export async function withDeadline<T>(
  what: string,
  ms: number,
  work: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  const error = new DeadlineExceededError(`${what} did not finish within ${ms} ms`);
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      controller.abort(error);
      reject(error);
    }, ms);
  });
  try {
    return await Promise.race([work(controller.signal), expired]);
  } finally {
    clearTimeout(timer);
  }
}
