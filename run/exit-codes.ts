/**
 * sumac's exit codes (HP SUM's, plus 130 for an interrupted run), the code of each target from its
 * outcome, and the run's code when targets differ. docs/cli.md is the description for operators.
 */
import type { TargetOutcome } from "../machines/target/types.ts";

/** Exit codes of `sumac`. */
export const ExitCode = {
  /** Every target succeeded (and something was installed, or, for a dry run, would be). */
  ok: 0,
  /** As `ok`, and a component installed needs the target to restart. */
  okRebootNeeded: 1,
  /** Every target succeeded and nothing was needed (every component current). */
  nothingNeeded: 3,
  /** A component's install failed on some target. */
  componentFailed: 253,
  /** Bad input: job file errors, unknown options. Nothing ran. */
  badInput: 254,
  /** Other failures: unreachable targets, refused host keys, agent failures, sumac's own. */
  otherFailure: 255,
  /** The operator interrupted the run (Ctrl-C): targets were cancelled and cleaned up. */
  interrupted: 130,
} as const;

export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

/**
 * Which code wins when targets end differently, strongest first: an interruption, then any other
 * failure, then a component failure, then success with a reboot, success, and nothing needed.
 * So 3 means every target had nothing to do, and 0 that at least one installed something.
 */
export const EXIT_PRECEDENCE: readonly ExitCodeValue[] = [
  ExitCode.interrupted,
  ExitCode.otherFailure,
  ExitCode.componentFailed,
  ExitCode.okRebootNeeded,
  ExitCode.ok,
  ExitCode.nothingNeeded,
];

/**
 * A target's exit code from its outcome. On a dry run (`inventoryOnly`) a success is 0 when
 * something would be installed and 3 when nothing would.
 */
export function targetExitCode(outcome: TargetOutcome, inventoryOnly: boolean): ExitCodeValue {
  switch (outcome.status) {
    case "cancelled":
      return ExitCode.interrupted;
    case "failed":
      return outcome.failure.kind === "component" ? ExitCode.componentFailed : ExitCode.otherFailure;
    case "succeeded": {
      if (inventoryOnly) {
        const wouldInstall = (outcome.plan ?? []).some((p) => p.action !== "skip");
        return wouldInstall ? ExitCode.ok : ExitCode.nothingNeeded;
      }
      if (!outcome.installed) return ExitCode.nothingNeeded;
      return outcome.rebootNeeded ? ExitCode.okRebootNeeded : ExitCode.ok;
    }
  }
}

/** The run's exit code from its targets' codes ({@link EXIT_PRECEDENCE}); 3 for no targets. */
export function runExitCode(codes: Iterable<number>): ExitCodeValue {
  let best = EXIT_PRECEDENCE.length - 1;
  for (const code of codes) {
    const rank = EXIT_PRECEDENCE.indexOf(code as ExitCodeValue);
    // A code outside the list (a bug) counts as another failure rather than being lost.
    const r = rank < 0 ? EXIT_PRECEDENCE.indexOf(ExitCode.otherFailure) : rank;
    if (r < best) best = r;
  }
  return EXIT_PRECEDENCE[best]!;
}

/** What a code means, in a few words (summary line, help). */
export function describeExitCode(code: number): string {
  switch (code) {
    case ExitCode.ok:
      return "success";
    case ExitCode.okRebootNeeded:
      return "success, a reboot is needed";
    case ExitCode.nothingNeeded:
      return "nothing needed";
    case ExitCode.componentFailed:
      return "a component failed";
    case ExitCode.badInput:
      return "bad input";
    case ExitCode.otherFailure:
      return "a target failed (not a component)";
    case ExitCode.interrupted:
      return "interrupted";
    default:
      return "unknown";
  }
}

/** The exit code section of `--help`. */
export const EXIT_CODES_HELP = `Exit codes:
  0    success: every target succeeded, something was installed (dry run: would be)
  1    success, and a reboot is needed to finish installing
  3    nothing needed: every target succeeded, every component already current
  253  a component failed to install (on at least one target)
  254  bad input: job file errors, unknown options; nothing ran
  255  other failures: unreachable target, refused host key, agent or sumac failure
  130  interrupted (Ctrl-C): targets were cancelled and cleaned up
  When targets end differently: 130 over 255 over 253 over 1 over 0 over 3.
`;
