/**
 * The `sumac` command line, without process globals (testable). Today it answers `--help` and `--version`; `deploy` and `inventory` arrive
 * with the target machines (issue 5) and say so until then.
 */
import { readFileSync } from "node:fs";

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
  sumac deploy <job.yaml>      deploy a package to the job's targets (not available yet)
  sumac inventory <job.yaml>   report what would be installed, change nothing (not available yet)
  sumac --help | --version

Exit codes:
  0    success                         1    success, a reboot is needed
  3    nothing needed                  253  a component failed
  254  bad input (job file, options)   255  other failures (unreachable targets, ...)
`;

/** Runs the command line and resolves with the exit code; output goes to the given streams. */
export function main(argv: string[], out: (s: string) => void, err: (s: string) => void): number {
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
    err(`sumac: '${cmd}' is not available in this version yet${rest[0] ? ` (job: ${rest[0]})` : ""}\n`);
    return ExitCode.otherFailure;
  }
  err(`sumac: unknown command '${cmd}'; see 'sumac --help'\n`);
  return ExitCode.badInput;
}
