/**
 * The options of `sumac deploy` and `sumac inventory`, and their `--help`. A small parser of our
 * own rather than `util.parseArgs`, so that every mistake gets sumac's own message (which option,
 * what it needs, where to look) and a stable code.
 */
import { errorClass } from "../base/errors.ts";
import { redactUrlCredentials } from "../bus/bus.ts";
import { EXIT_CODES_HELP } from "../run/exit-codes.ts";

export type RunCommand = "deploy" | "inventory";

export interface RunArgs {
  readonly command: RunCommand;
  readonly jobFile: string;
  readonly rewrite: boolean;
  readonly downgrade: boolean;
  readonly json: boolean;
  readonly natsUrl?: string;
  readonly stateDir?: string;
  /** `--retry RUN`: only the targets that did not succeed in that run (an id, or `last`). */
  readonly retry?: string;
}

/** A command line that cannot be run (sumac exits 254). */
export class UsageError extends errorClass("BAD_USAGE") {}

const SWITCHES = ["--rewrite", "--downgrade", "--json"] as const;
const VALUED = { "--nats": "URL", "--state-dir": "DIR", "--retry": "RUN" } as const;

/** What `args` ask for: the run's arguments, or help. @throws {UsageError} */
export function parseRunArgs(command: RunCommand, args: readonly string[]): RunArgs | "help" {
  const see = `see 'sumac ${command} --help'`;
  const positionals: string[] = [];
  const seen = new Map<string, string | true>();
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === "--") {
      positionals.push(...args.slice(i + 1));
      break;
    }
    if (arg === "--help" || arg === "-h") return "help";
    if (!arg.startsWith("-") || arg === "-") {
      positionals.push(arg);
      continue;
    }
    const eq = arg.indexOf("=");
    const name = eq > 0 ? arg.slice(0, eq) : arg;
    if ((SWITCHES as readonly string[]).includes(name)) {
      if (eq > 0) throw new UsageError(`sumac ${command}: option '${name}' takes no value; ${see}`);
      seen.set(name, true);
      continue;
    }
    if (name in VALUED) {
      const what = VALUED[name as keyof typeof VALUED];
      const value = eq > 0 ? arg.slice(eq + 1) : args[++i];
      if (value === undefined || value === "" || (eq < 0 && value.startsWith("-")))
        throw new UsageError(`sumac ${command}: option '${name}' needs a value: ${name} ${what}; ${see}`);
      seen.set(name, value);
      continue;
    }
    throw new UsageError(`sumac ${command}: unknown option '${name}'; ${see}`);
  }
  if (positionals.length === 0)
    throw new UsageError(`sumac: '${command}' needs a job file: sumac ${command} <job.yaml>; ${see}`);
  if (positionals.length > 1)
    throw new UsageError(
      `sumac ${command}: one job file expected, got ${positionals.length} (${positionals.join(" ")}); ${see}`,
    );
  const value = (name: keyof typeof VALUED) => {
    const v = seen.get(name);
    return typeof v === "string" ? v : undefined;
  };
  const natsUrl = value("--nats");
  // Any process on the machine can read another's argv (ps, /proc/PID/cmdline).
  if (natsUrl !== undefined && redactUrlCredentials(natsUrl) !== natsUrl)
    throw new UsageError(
      `sumac ${command}: --nats must not carry a user or password (anyone on this machine can read a command line): put the URL in SUMAC_NATS_URL instead; ${see}`,
    );
  const stateDir = value("--state-dir");
  const retry = value("--retry");
  return {
    command,
    jobFile: positionals[0]!,
    rewrite: seen.has("--rewrite"),
    downgrade: seen.has("--downgrade"),
    json: seen.has("--json"),
    ...(natsUrl === undefined ? {} : { natsUrl }),
    ...(stateDir === undefined ? {} : { stateDir }),
    ...(retry === undefined ? {} : { retry }),
  };
}

const COMMON = `Options:
  --rewrite          install a component again even when its installed version is current
  --downgrade        install a component even when a newer version is installed
  --json             print the run's events as JSON, one object per line, on stdout
                     (the summary goes to stderr)
  --nats URL         run on a NATS JetStream server (or SUMAC_NATS_URL); without it the run is
                     embedded: in-process bus and lease service, no server needed. A URL with
                     a user or password goes in SUMAC_NATS_URL only, never on the command line
  --state-dir DIR    where runs and the embedded bus are kept; default $XDG_STATE_HOME/sumac,
                     else ~/.local/state/sumac
  --retry RUN        run only the job's targets that did not succeed in an earlier run: RUN is
                     its id (its directory under DIR/runs/) or 'last' for the newest run with
                     a report. Exit 3 when all of them succeeded there
  -h, --help         this help

Each run gets a directory DIR/runs/<run-id>/ (mode 0700) holding report.json (every target's
steps with durations, components before and after, ports, exit code, where its logs are) and the
targets' logs under targets/<target>/logs/. Its path is printed at the end.

Progress: a live view on a terminal, one line per state change otherwise, JSON lines with --json.
Ctrl-C: installs in progress finish, then every target is cleaned up; a second Ctrl-C stops the
installs at once (cleanup still runs). Exit code 130 then.
`;

/** `sumac deploy --help`. */
export const DEPLOY_HELP = `Usage: sumac deploy <job.yaml> [options]

Deploys the job's package to its targets: connect, push the agent, take inventory, install what
is needed (current components are skipped), collect the logs, remove the agent.

${COMMON}
${EXIT_CODES_HELP}`;

/** `sumac inventory --help`. */
export const INVENTORY_HELP = `Usage: sumac inventory <job.yaml> [options]

A dry run: connects to every target, takes inventory and reports what would be installed,
changing nothing (no staging, no install). --rewrite and --downgrade change what would be.

${COMMON}
${EXIT_CODES_HELP.replace("something was installed (dry run: would be)", "something would be installed")}`;
