/**
 * `--retry RUN`: a run of the job's targets that did not succeed in an earlier run (failed, or
 * cancelled before they finished), read from that run's report. The retried run is a new run with
 * a report of its own; the earlier one is left as it was.
 */
import { errorClass } from "../base/errors.ts";
import { open, readdir } from "node:fs/promises";
import { join } from "node:path";
import { z } from "zod";
import { runDirOf } from "./paths.ts";

/** A report is read whole; 10,000 targets write about 33 MiB. */
export const MAX_REPORT_BYTES = 256 * 1024 * 1024;

/** The shape of a run id (`newRunId`): also keeps `RUN` from naming a path outside `runs/`. */
const RUN_ID = /^[0-9]{8}-[0-9]{6}-[0-9]{3}-[0-9a-f]{6}$/;

/** What a retry reads of a report. */
const ReportTargets = z.object({
  runId: z.string(),
  job: z.object({ name: z.string() }),
  targets: z.array(z.object({ id: z.string(), status: z.enum(["succeeded", "failed", "cancelled"]) })),
});

/** `--retry` cannot be done as asked: a bad run, or no report to read (exit 254). */
export class RetryError extends errorClass("BAD_RETRY") {}

export interface RetrySelection {
  /** The earlier run's id (`last` resolved). */
  readonly runId: string;
  /** The name of the job it ran. */
  readonly jobName: string;
  /** Targets that did not succeed there, in its report's order. */
  readonly targetIds: readonly string[];
}

/** The newest run under `stateDir` with a report of the job named `jobName`, or undefined. */
async function lastRun(stateDir: string, jobName: string): Promise<RetrySelection | undefined> {
  const runs = await readdir(join(stateDir, "runs")).catch((error: NodeJS.ErrnoException) => {
    if (error.code === "ENOENT") return [];
    throw new RetryError(`--retry last: cannot list ${join(stateDir, "runs")}: ${error.message}`);
  });
  // Run ids sort by start time.
  for (const id of runs
    .filter((r) => RUN_ID.test(r))
    .sort()
    .reverse()) {
    const path = join(runDirOf(stateDir, id), "report.json");
    const report = await readReport(path, "last").catch(() => undefined);
    if (report?.job.name === jobName) return selection(id, report);
  }
  return undefined;
}

function selection(runId: string, report: z.infer<typeof ReportTargets>): RetrySelection {
  return {
    runId,
    jobName: report.job.name,
    targetIds: report.targets.filter((t) => t.status !== "succeeded").map((t) => t.id),
  };
}

/** Reads and checks a report, refusing one over {@link MAX_REPORT_BYTES}. */
async function readReport(path: string, run: string): Promise<z.infer<typeof ReportTargets>> {
  let handle;
  try {
    handle = await open(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new RetryError(
      code === "ENOENT"
        ? `--retry ${run}: ${path} does not exist (no such run, or it ended before writing its report)`
        : `--retry ${run}: cannot read ${path}: ${(error as Error).message}`,
    );
  }
  let text: string;
  try {
    const { size } = await handle.stat();
    if (size > MAX_REPORT_BYTES)
      throw new RetryError(
        `--retry ${run}: ${path} is ${size} bytes, over the ${MAX_REPORT_BYTES}-byte limit`,
      );
    text = await handle.readFile("utf8");
  } finally {
    await handle.close();
  }
  try {
    return ReportTargets.parse(JSON.parse(text));
  } catch (error) {
    throw new RetryError(
      `--retry ${run}: ${path} is not a sumac report: ${(error as Error).message.slice(0, 300)}`,
    );
  }
}

/**
 * The targets of run `run` that did not succeed: `run` is a run id, or `last` for the newest run
 * of the job named `jobName` (a run of another job in between is passed over). Throws
 * {@link RetryError} with a message for the operator.
 */
export async function targetsToRetry(
  stateDir: string,
  run: string,
  jobName: string,
): Promise<RetrySelection> {
  if (run === "last") {
    const last = await lastRun(stateDir, jobName);
    if (last === undefined)
      throw new RetryError(
        `--retry last: no run of job '${jobName}' with a report in ${join(stateDir, "runs")}`,
      );
    return last;
  }
  if (!RUN_ID.test(run))
    throw new RetryError(
      `--retry ${JSON.stringify(run).slice(0, 80)}: expected a run id such as 20261205-223000-123-3fa9c1 (the name of its directory under ${join(stateDir, "runs")}) or 'last'`,
    );
  return selection(run, await readReport(join(runDirOf(stateDir, run), "report.json"), run));
}
