/**
 * `sumac deploy` and `sumac inventory` once their arguments are parsed: load the job (errors as
 * file:line:column, exit 254), pick the display, run, handle Ctrl-C (first: graceful cancel,
 * second: force), print the summary, and return the exit code.
 */
import { JobFileError, loadJob } from "../job/load.ts";
import type { Job } from "../job/types.ts";
import type { RunArgs } from "./args.ts";
import type { RunDisplay } from "./display.ts";
import { JsonDisplay } from "./display-json.ts";
import { LineDisplay } from "./display-lines.ts";
import { LiveDisplay } from "./display-live.ts";
import { ExitCode } from "./exit-codes.ts";
import type { CliIo } from "./io.ts";
import { resolveStateDir } from "./paths.ts";
import { RunSetupError, runJob } from "./run-job.ts";
import type { StepsFactory } from "./types.ts";

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

/** Runs a parsed `deploy` or `inventory` command line; resolves with the exit code. */
export async function runCommand(args: RunArgs, io: CliIo, steps: StepsFactory | undefined): Promise<number> {
  let job: Job;
  try {
    job = await loadJob(args.jobFile);
  } catch (error) {
    if (!(error instanceof JobFileError)) throw error;
    io.err(`${error.format()}\n`);
    return ExitCode.badInput;
  }
  if (steps === undefined) {
    io.err(
      `sumac: ${args.jobFile}: a valid job (${job.targets.length} target(s), ` +
        `${job.package.components.length} component(s)), but running it is not wired in this build: ` +
        `no step implementations were given to main() (actors/target/compose.ts)\n`,
    );
    return ExitCode.otherFailure;
  }
  const env = io.env ?? {};
  const natsUrl = args.natsUrl ?? (env.SUMAC_NATS_URL?.trim() || undefined);
  const display = pickDisplay(args, io, job);
  const run = runJob({
    job,
    flags: { inventoryOnly: args.command === "inventory", rewrite: args.rewrite, downgrade: args.downgrade },
    steps,
    stateDir: resolveStateDir(args.stateDir, env),
    ...(natsUrl === undefined ? {} : { natsUrl }),
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
    io.err(`sumac: ${error.message}\n`);
    return ExitCode.otherFailure;
  } finally {
    stop?.();
  }
}
