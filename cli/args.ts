/**
 * The options of `sumac deploy` and `sumac inventory`, and their `--help`. A small parser of our
 * own rather than `util.parseArgs`, so that every mistake gets sumac's own message (which option,
 * what it needs, where to look) and a stable code.
 */
import { errorClass } from "../base/errors.ts";
import { redactUrlCredentials } from "../bus/bus.ts";
import { INBOX_PREFIX } from "../bus/subject-rules.ts";
import type { NatsCredential, NatsSecurity, NatsTls } from "../bus/open.ts";
import { EXIT_CODES_HELP } from "../run/exit-codes.ts";

export type RunCommand = "deploy" | "inventory";

export interface RunArgs {
  readonly command: RunCommand;
  readonly jobFile: string;
  readonly rewrite: boolean;
  readonly downgrade: boolean;
  readonly json: boolean;
  readonly natsUrl?: string;
  /** `--nats-ca`, `--nats-cert`, `--nats-key`: paths, never the files' content. */
  readonly natsTls?: NatsTls;
  /** `--nats-creds`, `--nats-nkey` or `--nats-token-file`: a path, never a secret itself. */
  readonly natsCredential?: NatsCredential;
  /** `--nats-inbox-prefix`: where replies come to, for a user allowed its own inboxes only. */
  readonly natsInboxPrefix?: string;
  readonly stateDir?: string;
  /** `--retry RUN`: only the targets that did not succeed in that run (an id, or `last`). */
  readonly retry?: string;
}

/** A command line that cannot be run (sumac exits 254). */
export class UsageError extends errorClass("BAD_USAGE") {}

const SWITCHES = ["--rewrite", "--downgrade", "--json"] as const;
const VALUED = {
  "--nats": "URL",
  "--nats-ca": "FILE",
  "--nats-cert": "FILE",
  "--nats-key": "FILE",
  "--nats-creds": "FILE",
  "--nats-nkey": "FILE",
  "--nats-token-file": "FILE",
  "--nats-inbox-prefix": "PREFIX",
  "--state-dir": "DIR",
  "--retry": "RUN",
} as const;

/** The credential options, of which one at most may be given. */
const CREDENTIAL_FLAGS = {
  "--nats-creds": "creds",
  "--nats-nkey": "nkey",
  "--nats-token-file": "token",
} as const;

/**
 * The environment's counterparts of the NATS options. A variable names a file, except
 * `SUMAC_NATS_TOKEN` and `SUMAC_NATS_NKEY_SEED`, which hold the secret itself.
 */
export const NATS_ENV = {
  url: "SUMAC_NATS_URL",
  ca: "SUMAC_NATS_CA",
  cert: "SUMAC_NATS_CERT",
  key: "SUMAC_NATS_KEY",
  creds: "SUMAC_NATS_CREDS",
  nkey: "SUMAC_NATS_NKEY",
  nkeySeed: "SUMAC_NATS_NKEY_SEED",
  token: "SUMAC_NATS_TOKEN",
  tokenFile: "SUMAC_NATS_TOKEN_FILE",
  inboxPrefix: "SUMAC_NATS_INBOX_PREFIX",
} as const;

/** Variables that hold secrets (or a URL that may): the processes sumac starts must not inherit them. */
export const NATS_SECRET_ENV: readonly string[] = [NATS_ENV.url, NATS_ENV.token, NATS_ENV.nkeySeed];

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
  const credentials = Object.keys(CREDENTIAL_FLAGS).filter((flag) => seen.has(flag));
  if (credentials.length > 1)
    throw new UsageError(
      `sumac ${command}: one NATS credential at most, got ${credentials.join(" and ")}; ${see}`,
    );
  const natsCredential: NatsCredential | undefined =
    credentials[0] === undefined
      ? undefined
      : {
          kind: CREDENTIAL_FLAGS[credentials[0] as keyof typeof CREDENTIAL_FLAGS],
          file: value(credentials[0] as keyof typeof VALUED)!,
        };
  const natsTls = tlsOf(value("--nats-ca"), value("--nats-cert"), value("--nats-key"));
  if (natsTls !== undefined) checkClientPair(natsTls, "--nats-cert", "--nats-key", `sumac ${command}`, see);
  const natsInboxPrefix = value("--nats-inbox-prefix");
  if (natsInboxPrefix !== undefined)
    checkInboxPrefix(natsInboxPrefix, "--nats-inbox-prefix", `sumac ${command}`, see);
  const stateDir = value("--state-dir");
  const retry = value("--retry");
  return {
    command,
    jobFile: positionals[0]!,
    rewrite: seen.has("--rewrite"),
    downgrade: seen.has("--downgrade"),
    json: seen.has("--json"),
    ...(natsUrl === undefined ? {} : { natsUrl }),
    ...(natsTls === undefined ? {} : { natsTls }),
    ...(natsCredential === undefined ? {} : { natsCredential }),
    ...(natsInboxPrefix === undefined ? {} : { natsInboxPrefix }),
    ...(stateDir === undefined ? {} : { stateDir }),
    ...(retry === undefined ? {} : { retry }),
  };
}

function tlsOf(caFile?: string, certFile?: string, keyFile?: string): NatsTls | undefined {
  if (caFile === undefined && certFile === undefined && keyFile === undefined) return undefined;
  return {
    ...(caFile === undefined ? {} : { caFile }),
    ...(certFile === undefined ? {} : { certFile }),
    ...(keyFile === undefined ? {} : { keyFile }),
  };
}

function checkClientPair(tls: NatsTls, cert: string, key: string, who: string, see: string): void {
  if ((tls.certFile === undefined) !== (tls.keyFile === undefined))
    throw new UsageError(`${who}: ${cert} and ${key} go together (a client certificate and its key); ${see}`);
}

function checkInboxPrefix(prefix: string, from: string, who: string, see: string): void {
  if (!INBOX_PREFIX.test(prefix))
    throw new UsageError(
      `${who}: ${from} '${prefix.slice(0, 140)}' is not an inbox prefix (1 to 8 tokens of [A-Za-z0-9_-] joined by dots, e.g. _INBOX.worker); ${see}`,
    );
}

/** What the run gets to reach NATS: the URL and its TLS and credentials, or nothing (embedded). */
export interface NatsSettings {
  readonly natsUrl?: string;
  readonly natsSecurity?: NatsSecurity;
}

/**
 * The NATS URL, TLS and credential of a run, from its options or else the environment (each of
 * URL, CA, client certificate and credential taken from the command line when given there).
 * Without a URL the run is embedded: TLS or credential options are then a mistake, variables are
 * ignored. @throws {UsageError}
 */
export function natsSettings(args: RunArgs, env: Readonly<Record<string, string | undefined>>): NatsSettings {
  const see = `see 'sumac ${args.command} --help'`;
  const who = `sumac ${args.command}`;
  const get = (name: string): string | undefined => {
    const v = env[name];
    return v === undefined || v.trim() === "" ? undefined : v;
  };
  const natsUrl = args.natsUrl ?? get(NATS_ENV.url)?.trim();
  if (natsUrl === undefined) {
    if (args.natsTls !== undefined || args.natsCredential !== undefined || args.natsInboxPrefix !== undefined)
      throw new UsageError(
        `${who}: the NATS TLS, credential and inbox options need a NATS server: --nats URL or ${NATS_ENV.url}; ${see}`,
      );
    return {};
  }
  const flagTls = args.natsTls ?? {};
  const envCert = args.natsTls?.certFile === undefined && args.natsTls?.keyFile === undefined;
  const tls = tlsOf(
    flagTls.caFile ?? get(NATS_ENV.ca),
    envCert ? get(NATS_ENV.cert) : flagTls.certFile,
    envCert ? get(NATS_ENV.key) : flagTls.keyFile,
  );
  if (tls !== undefined) checkClientPair(tls, NATS_ENV.cert, NATS_ENV.key, who, see);
  let credential = args.natsCredential;
  if (credential === undefined) {
    const given: NatsCredential[] = [];
    const names: string[] = [];
    const add = (name: string, make: (v: string) => NatsCredential): void => {
      const v = get(name);
      if (v === undefined) return;
      names.push(name);
      given.push(make(v));
    };
    add(NATS_ENV.creds, (file) => ({ kind: "creds", file }));
    add(NATS_ENV.nkey, (file) => ({ kind: "nkey", file }));
    add(NATS_ENV.nkeySeed, (value) => ({ kind: "nkey", value, from: NATS_ENV.nkeySeed }));
    add(NATS_ENV.tokenFile, (file) => ({ kind: "token", file }));
    add(NATS_ENV.token, (value) => ({ kind: "token", value, from: NATS_ENV.token }));
    if (given.length > 1)
      throw new UsageError(
        `${who}: one NATS credential at most, but ${names.join(" and ")} are all set; ${see}`,
      );
    credential = given[0];
  }
  if (credential !== undefined && redactUrlCredentials(natsUrl) !== natsUrl)
    throw new UsageError(
      `${who}: the NATS URL carries a user, password or token, and a NATS credential is given too: use one; ${see}`,
    );
  const inboxPrefix = args.natsInboxPrefix ?? get(NATS_ENV.inboxPrefix)?.trim();
  if (inboxPrefix !== undefined) checkInboxPrefix(inboxPrefix, NATS_ENV.inboxPrefix, who, see);
  const plaintext = get("SUMAC_NATS_ALLOW_PLAINTEXT")?.trim();
  if (plaintext !== undefined && plaintext !== "" && plaintext !== "0" && plaintext !== "1")
    throw new UsageError(`${who}: SUMAC_NATS_ALLOW_PLAINTEXT is 1 or 0, not '${plaintext}'; ${see}`);
  const allowPlaintext = plaintext === "1";
  const natsSecurity: NatsSecurity | undefined =
    tls === undefined && credential === undefined && inboxPrefix === undefined && !allowPlaintext
      ? undefined
      : {
          ...(tls === undefined ? {} : { tls }),
          ...(credential === undefined ? {} : { credential }),
          ...(inboxPrefix === undefined ? {} : { inboxPrefix }),
          ...(allowPlaintext ? { allowPlaintext } : {}),
        };
  return { natsUrl, ...(natsSecurity === undefined ? {} : { natsSecurity }) };
}

const COMMON = `Options:
  --rewrite          install a component again even when its installed version is current
  --downgrade        install a component even when a newer version is installed
  --json             print the run's events as JSON, one object per line, on stdout
                     (the summary goes to stderr)
  --nats URL         run on a NATS JetStream server (or SUMAC_NATS_URL); without it the run is
                     embedded: in-process bus and lease service, no server needed. A URL with
                     a user or password goes in SUMAC_NATS_URL only, never on the command line
  --nats-ca FILE     verify the NATS server's certificate with this CA (PEM) and require TLS
                     (or SUMAC_NATS_CA)
  --nats-cert FILE, --nats-key FILE
                     client certificate and its key (PEM) for a server that verifies clients
                     (or SUMAC_NATS_CERT and SUMAC_NATS_KEY)
  --nats-creds FILE  a NATS creds file: user JWT and nkey seed (or SUMAC_NATS_CREDS)
  --nats-nkey FILE   a file holding a user nkey seed (or SUMAC_NATS_NKEY; the seed itself in
                     SUMAC_NATS_NKEY_SEED)
  --nats-token-file FILE
                     a file holding the token (or SUMAC_NATS_TOKEN_FILE; the token itself in
                     SUMAC_NATS_TOKEN)
  --nats-inbox-prefix PREFIX
                     where replies come to (default _INBOX), for a NATS user allowed its own
                     inboxes only, e.g. _INBOX.worker (or SUMAC_NATS_INBOX_PREFIX)
                     One credential at most. Secrets are never taken from the command line;
                     a file holding one (creds, seed, token, client key) must be readable by
                     its owner only (chmod 600), or sumac refuses it. A credential goes to a
                     server that is not on this machine over TLS only, unless
                     SUMAC_NATS_ALLOW_PLAINTEXT=1 (with a warning). See docs/nats.md
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
