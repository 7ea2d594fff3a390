/**
 * `sumac clean` on a Windows target: the services of sumac's runs (sweep.ts: stopped ones with a
 * run's marker), then every run directory under the run root: its agent, if its lines say it still
 * runs, is stopped as a forced stop does (the stop file, then the kill service, which also deletes
 * its firewall rule), and the directory is removed. The logs (`<run root>\logs`) are kept.
 */
import { posix } from "node:path";
import type { StepLog } from "../transport.ts";
import { RUN_ID_PATTERN } from "../posix/clean.ts";
import { removeRunDir } from "./agent-files.ts";
import { stopAgentOfRunDir } from "./agent-service.ts";
import type { WindowsLink } from "./link.ts";
import { describeSweep, sweepServices } from "./sweep.ts";

const CALL_MS = 30_000;
const RUN_ID = new RegExp(`^${RUN_ID_PATTERN}$`);

/** Cleans one Windows target; resolves with what was done, one line each. */
export async function cleanWindowsTarget(
  link: WindowsLink,
  targetId: string,
  log: StepLog,
  signal: AbortSignal,
): Promise<string[]> {
  const call = { timeoutMs: CALL_MS, signal };
  const done: string[] = [];
  const scm = await link.scm(call);
  for (const { line } of describeSweep(await sweepServices(scm, undefined, call))) done.push(line);
  const root = link.files.runRoot;
  for (const name of await link.files.list(root, call)) {
    if (!RUN_ID.test(name)) continue;
    const runDir = posix.join(root, name);
    const stopped = await stopAgentOfRunDir(link, runDir, targetId, log);
    if (stopped === "stopped") done.push(`agent of run ${name} stopped on its stop file`);
    else if (stopped === "ended") done.push(`agent of run ${name} ended (it did not stop on its stop file)`);
    try {
      await removeRunDir(link, runDir, signal);
      done.push(`run directory ${name} removed`);
    } catch (error) {
      signal.throwIfAborted();
      done.push(`run directory ${name} could not be removed: ${(error as Error).message}`);
    }
  }
  await link.closeScm();
  return done;
}
