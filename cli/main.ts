/**
 * The `sumac` command line, without process globals (testable): `deploy` and `inventory` run a
 * job (command.ts, over the run engine in run/), `--help` and `--version` answer. Output goes to the injected streams and the
 * exit code is returned, never passed to `process.exit`.
 *
 * The step implementations of a run are given by the caller (`cli/sumac.ts` passes the real ones
 * from run/compose.ts; tests pass fakes). Without them a valid job is reported and the
 * command says that running it is not wired.
 */
import { readFileSync } from "node:fs";
import { DEPLOY_HELP, INVENTORY_HELP, parseRunArgs, UsageError } from "./args.ts";
import { runCommand } from "./command.ts";
import { CLEAN_HELP, cleanCommand, type CleanFactory } from "./clean.ts";
import { EXIT_CODES_HELP, ExitCode } from "../run/exit-codes.ts";
import type { CliIo } from "./io.ts";
import type { StepsFactory } from "../run/types.ts";
import { printable } from "../base/text.ts";

export { ExitCode } from "../run/exit-codes.ts";
export type { CliIo } from "./io.ts";

const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as {
  version: string;
};

export const usage = `sumac ${pkg.version}: remote update and deployment for server fleets

Usage:
  sumac deploy <job.yaml> [options]      deploy a package to the job's targets
  sumac inventory <job.yaml> [options]   report what would be installed, change nothing
  sumac clean <job.yaml>                 remove what crashed runs left on the targets (logs kept)
  sumac <command> --help                 the command's options, where its report goes
  sumac --help | --version

Options of deploy and inventory: --rewrite, --downgrade, --json, --nats URL, --state-dir DIR, --retry RUN,
and for NATS --nats-ca, --nats-cert, --nats-key, --nats-creds, --nats-nkey, --nats-token-file FILE,
--nats-inbox-prefix PREFIX.
Without --nats (or SUMAC_NATS_URL) everything runs in this process (embedded default), keeping
its state in $XDG_STATE_HOME/sumac (default ~/.local/state/sumac).

${EXIT_CODES_HELP}`;

/**
 * Runs the command line and resolves with the exit code.
 *
 * @param steps makes the step implementations of a run; without it `deploy` and `inventory` stop
 *   after checking the job (exit 255, saying so).
 * @example
 * const code = await main(["deploy", "job.yaml", "--json"], { out, err }, createRunSteps);
 */
export async function main(
  argv: readonly string[],
  io: CliIo,
  steps?: StepsFactory,
  clean?: CleanFactory,
): Promise<number> {
  const [cmd, ...rest] = argv;
  if (cmd === undefined || cmd === "--help" || cmd === "-h" || cmd === "help") {
    const topic = cmd === "help" ? rest[0] : undefined;
    if (topic === "deploy" || topic === "inventory" || topic === "clean") {
      io.out(topic === "deploy" ? DEPLOY_HELP : topic === "clean" ? CLEAN_HELP : INVENTORY_HELP);
      return ExitCode.ok;
    }
    io.out(usage);
    return cmd === undefined ? ExitCode.badInput : ExitCode.ok;
  }
  if (cmd === "--version" || cmd === "-V") {
    io.out(`${pkg.version}\n`);
    return ExitCode.ok;
  }
  if (cmd === "deploy" || cmd === "inventory") {
    try {
      const args = parseRunArgs(cmd, rest);
      if (args === "help") {
        io.out(cmd === "deploy" ? DEPLOY_HELP : INVENTORY_HELP);
        return ExitCode.ok;
      }
      return await runCommand(args, io, steps);
    } catch (error) {
      if (error instanceof UsageError) {
        io.err(`${error.message}\n`);
        return ExitCode.badInput;
      }
      // A bug in sumac: say so with what is known, and exit as for any other failure.
      io.err(
        `sumac: internal error: ${(error instanceof Error ? (error.stack ?? error.message) : String(error)).split("\n").map(printable).join("\n")}\n`,
      );
      return ExitCode.otherFailure;
    }
  }
  if (cmd === "clean") {
    try {
      return await cleanCommand(rest, io, clean);
    } catch (error) {
      if (error instanceof UsageError) {
        io.err(`${error.message}\n`);
        return ExitCode.badInput;
      }
      throw error;
    }
  }
  if (cmd.startsWith("-")) {
    io.err(`sumac: unknown option '${cmd}'; see 'sumac --help'\n`);
    return ExitCode.badInput;
  }
  io.err(`sumac: unknown command '${cmd}'; see 'sumac --help'\n`);
  return ExitCode.badInput;
}
