/**
 * `sumac deploy` and `sumac inventory` once their arguments are parsed: load the job (errors as
 * file:line:column, exit 254), pick the display, run, handle Ctrl-C (first: graceful cancel,
 * second: force), print the summary, and return the exit code.
 */
import { JobFileError, loadJob } from "../run/job/load.ts";
import type { Job } from "../run/job/types.ts";
import { natsSettings, type RunArgs } from "./args.ts";
import type { RunDisplay } from "./display.ts";
import { JsonDisplay } from "./display-json.ts";
import { LineDisplay } from "./display-lines.ts";
import { LiveDisplay } from "./display-live.ts";
import { ExitCode } from "../run/exit-codes.ts";
import type { CliIo } from "./io.ts";
import { resolveStateDir } from "../run/paths.ts";
import { RetryError, targetsToRetry } from "../run/retry.ts";
import { RunSetupError, runJob } from "../run/run-job.ts";
import type { StepsFactory } from "../run/types.ts";
import { printable } from "../base/text.ts";

/** Says what the third and later interrupts do: nothing more, cleanup is bounded by its deadlines. */
const CLEANUP_NOTICE =
  "cleanup is running on every target (each step has a deadline); sumac exits when it is done";

function pickDisplay(args: RunArgs, io: CliIo, job: Job): RunDisplay {
  const options = {
    out: (s: string) => io.out(s),
    err: (s: string) => io.err(s),
    command: args.command,
    targets: job.targets.map((t) => t.id),
    ...(io.columns === undefined ? {} : { columns: io.columns }),
    ...(io.rows === undefined ? {} : { rows: io.rows }),
  };
  if (args.json) return new JsonDisplay(options);
  return io.isTTY ? new LiveDisplay(options) : new LineDisplay(options);
}

/**
 * `--retry RUN`: the job cut down to the targets that did not succeed in run RUN, or the exit code
 * when there is nothing to run: 3 when all of them succeeded, 254 when the retry is refused (no
 * such run, no report) or none of its targets to retry is in the job.
 */
async function retryJob(job: Job, run: string, stateDir: string, io: CliIo): Promise<Job | number> {
  let selection;
  try {
    selection = await targetsToRetry(stateDir, run, job.name);
  } catch (error) {
    if (!(error instanceof RetryError)) throw error;
    io.err(`sumac: ${printable(error.message)}\n`);
    return ExitCode.badInput;
  }
  if (selection.jobName !== job.name)
    io.err(`sumac: --retry: run ${selection.runId} was of job '${selection.jobName}', not '${job.name}'\n`);
  const wanted = new Set(selection.targetIds);
  const targets = job.targets.filter((t) => wanted.has(t.id));
  const inJob = new Set(job.targets.map((t) => t.id));
  const gone = selection.targetIds.filter((id) => !inJob.has(id));
  if (gone.length > 0)
    io.err(
      `sumac: --retry: not in the job any more, not run: ${gone.slice(0, 20).join(", ")}${gone.length > 20 ? `, and ${gone.length - 20} more` : ""}\n`,
    );
  if (selection.targetIds.length === 0) {
    io.err(`sumac: run ${selection.runId}: every target succeeded; nothing to retry\n`);
    return ExitCode.nothingNeeded;
  }
  if (targets.length === 0) {
    io.err(`sumac: run ${selection.runId}: none of the targets that did not succeed is in this job\n`);
    return ExitCode.badInput;
  }
  io.err(
    `sumac: retrying ${targets.length} of the job's ${job.targets.length} target(s), those that did not succeed in run ${selection.runId}\n`,
  );
  return { ...job, targets };
}

/** The job in `file`, or, when it cannot be used, its problems said on stderr and exit 254. */
export async function loadJobOrSay(file: string, io: CliIo): Promise<Job | number> {
  try {
    return await loadJob(file);
  } catch (error) {
    if (!(error instanceof JobFileError)) throw error;
    io.err(`${error.format()}\n`);
    return ExitCode.badInput;
  }
}

/** Runs a parsed `deploy` or `inventory` command line; resolves with the exit code. */
export async function runCommand(args: RunArgs, io: CliIo, steps: StepsFactory | undefined): Promise<number> {
  const env = io.env ?? {};
  const nats = natsSettings(args, env);
  const loaded = await loadJobOrSay(args.jobFile, io);
  if (typeof loaded === "number") return loaded;
  let job: Job = loaded;
  const stateDir = resolveStateDir(args.stateDir, env);
  if (args.retry !== undefined) {
    const retried = await retryJob(job, args.retry, stateDir, io);
    if (typeof retried === "number") return retried;
    job = retried;
  }
  if (steps === undefined) {
    io.err(
      `sumac: ${args.jobFile}: a valid job (${job.targets.length} target(s), ` +
        `${job.package.components.length} component(s)), but running it is not wired in this build: ` +
        `no step implementations were given to main() (run/compose.ts)\n`,
    );
    return ExitCode.otherFailure;
  }
  const display = pickDisplay(args, io, job);
  const run = runJob({
    job,
    flags: { inventoryOnly: args.command === "inventory", rewrite: args.rewrite, downgrade: args.downgrade },
    steps,
    stateDir,
    ...nats,
    ...(io.now === undefined ? {} : { now: io.now }),
    onEvent: (event) => display.event(event),
  });
  let interrupts = 0;
  const stop = io.onInterrupt?.(() => {
    interrupts++;
    if (interrupts <= 2) run.cancel(interrupts === 2);
    else display.notice(CLEANUP_NOTICE);
  });
  try {
    const result = await run.result;
    display.finish(result);
    return result.exitCode;
  } catch (error) {
    display.close();
    if (!(error instanceof RunSetupError)) throw error;
    io.err(`sumac: ${printable(error.message)}\n`);
    return ExitCode.otherFailure;
  } finally {
    stop?.();
  }
}
