/**
 * The `sumac` command line, without process globals (testable). It answers `--help` and
 * `--version`; `deploy` and `inventory` check the job file (errors as file:line:column, exit 254),
 * and the run itself arrives with issue 5's step actors: until then a valid job is reported and
 * the command says that deploying is not available yet.
 */
import { readFileSync } from "node:fs";
import { JobFileError, loadJob } from "./job/load.ts";

/** Exit codes, following HP SUM's (see README). */
export const ExitCode = {
  ok: 0,
  okRebootNeeded: 1,
  nothingNeeded: 3,
  componentFailed: 253,
  badInput: 254,
  otherFailure: 255,
} as const;

const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as {
  version: string;
};

export const usage = `sumac ${pkg.version}: remote update and deployment for server fleets

Usage:
  sumac deploy <job.yaml>      deploy a package to the job's targets (checks the job; the run
                               itself is not available yet)
  sumac inventory <job.yaml>   report what would be installed, change nothing (as above)
  sumac --help | --version

Exit codes:
  0    success                         1    success, a reboot is needed
  3    nothing needed                  253  a component failed
  254  bad input (job file, options)   255  other failures (unreachable targets, ...)
`;

/** Runs the command line and resolves with the exit code; output goes to the given streams. */
export async function main(
  argv: string[],
  out: (s: string) => void,
  err: (s: string) => void,
): Promise<number> {
  const [cmd, ...rest] = argv;
  if (cmd === undefined || cmd === "--help" || cmd === "-h" || cmd === "help") {
    out(usage);
    return cmd === undefined ? ExitCode.badInput : ExitCode.ok;
  }
  if (cmd === "--version" || cmd === "-V") {
    out(`${pkg.version}\n`);
    return ExitCode.ok;
  }
  if (cmd === "deploy" || cmd === "inventory") {
    const file = rest[0];
    if (file === undefined || file.startsWith("-")) {
      err(`sumac: '${cmd}' needs a job file: sumac ${cmd} <job.yaml>; see 'sumac --help'\n`);
      return ExitCode.badInput;
    }
    try {
      const job = await loadJob(file);
      const components = job.package.components.length;
      err(
        `sumac: ${file}: a valid job (${job.targets.length} target(s), ${components} component(s)); ` +
          `'${cmd}' itself is not available in this version yet\n`,
      );
      return ExitCode.otherFailure;
    } catch (error) {
      if (!(error instanceof JobFileError)) throw error;
      err(`${error.format()}\n`);
      return ExitCode.badInput;
    }
  }
  err(`sumac: unknown command '${cmd}'; see 'sumac --help'\n`);
  return ExitCode.badInput;
}
