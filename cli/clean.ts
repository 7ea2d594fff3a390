/**
 * `sumac clean <job.yaml> [--state-dir DIR] [--json]`: removes what earlier runs left on the
 * job's targets (run/clean.ts), one line per thing done, a summary, and the exit code: 0 when every
 * target was cleaned, 255 when one could not be, 254 for bad input.
 */
import { printable } from "../base/text.ts";
import { ExitCode } from "../run/exit-codes.ts";
import type { Job } from "../run/job/types.ts";
import { resolveStateDir } from "../run/paths.ts";
import type { CleanedTarget, CleanOptions } from "../run/clean.ts";
import { UsageError } from "./args.ts";
import { loadJobOrSay } from "./command.ts";
import type { CliIo } from "./io.ts";

/** What cleans a job's targets (run/clean.ts `cleanJob`), given by the caller as the steps are. */
export type CleanFactory = (job: Job, options: CleanOptions) => Promise<CleanedTarget[]>;

export const CLEAN_HELP = `Usage: sumac clean <job.yaml> [--state-dir DIR] [--json]

Removes what earlier runs of sumac left on the job's targets, as a crashed or killed workstation
leaves it: agents still running (asked to stop, then ended), run directories, the agents' firewall
rules (nftables on Linux, Windows Firewall on Windows), and on Windows the sumac-* services a run
left (stopped ones carrying a run's marker). The agents' logs and the opt-in agent cache are kept.
A deploy already does the Windows service sweep at its start; clean does only the sweep.

Run it when no run deploys to these targets: it cannot tell another workstation's run in
progress from one that crashed.

Options:
  --state-dir DIR   where the agent bundle and runtimes are cached (default as for deploy)
  --json            one JSON object per target on stdout instead of lines

Exit codes: 0 every target cleaned, 255 some target could not be reached or cleaned, 254 bad input.
`;

interface CleanArgs {
  readonly jobFile: string;
  readonly stateDir?: string;
  readonly json: boolean;
}

function parseCleanArgs(argv: readonly string[]): CleanArgs | "help" {
  let jobFile: string | undefined;
  let stateDir: string | undefined;
  let json = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "--help" || arg === "-h") return "help";
    if (arg === "--json") json = true;
    else if (arg === "--state-dir" || arg.startsWith("--state-dir=")) {
      stateDir = arg.includes("=") ? arg.slice(arg.indexOf("=") + 1) : argv[++i];
      if (stateDir === undefined || stateDir === "")
        throw new UsageError("sumac clean: --state-dir needs a directory");
    } else if (arg.startsWith("-"))
      throw new UsageError(`sumac clean: unknown option '${arg}'; see 'sumac clean --help'`);
    else if (jobFile === undefined) jobFile = arg;
    else throw new UsageError(`sumac clean: one job file only ('${arg}' is a second)`);
  }
  if (jobFile === undefined) throw new UsageError("sumac clean: which job? Usage: sumac clean <job.yaml>");
  return { jobFile, json, ...(stateDir === undefined ? {} : { stateDir }) };
}

export async function cleanCommand(
  argv: readonly string[],
  io: CliIo,
  clean: CleanFactory | undefined,
): Promise<number> {
  const args = parseCleanArgs(argv);
  if (args === "help") {
    io.out(CLEAN_HELP);
    return ExitCode.ok;
  }
  const job = await loadJobOrSay(args.jobFile, io);
  if (typeof job === "number") return job;
  if (clean === undefined) {
    io.err(`sumac: ${args.jobFile}: a valid job, but cleaning is not wired in this build (run/clean.ts)\n`);
    return ExitCode.otherFailure;
  }
  const env = io.env ?? {};
  const results = await clean(job, {
    stateDir: resolveStateDir(args.stateDir, env),
    env,
    log: (targetId, level, line) => {
      if (!args.json && (level === "warn" || level === "error")) io.err(`${targetId}: ${printable(line)}\n`);
    },
    onTarget: (result) => {
      if (args.json) io.out(`${JSON.stringify(result)}\n`);
      else if (!result.ok) io.err(`${result.id}: not cleaned: ${printable(result.error ?? "")}\n`);
      else if (result.done.length === 0) io.out(`${result.id}: nothing left by earlier runs\n`);
      else for (const line of result.done) io.out(`${result.id}: ${printable(line)}\n`);
    },
  });
  const failed = results.filter((r) => !r.ok).length;
  if (!args.json)
    io.out(
      `cleaned ${results.length - failed} of ${results.length} target(s)${failed === 0 ? "" : `; ${failed} could not be cleaned`}\n`,
    );
  return failed === 0 ? ExitCode.ok : ExitCode.otherFailure;
}
