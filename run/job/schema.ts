/**
 * The job file's schema (zod 4): what a job file may hold and the defaults of what it leaves out.
 * Checks that span fields (one auth method, unique ids, files that exist) come after, in
 * `normalise.ts`, where the file's positions are at hand. `json-schema.ts` turns this into the JSON
 * Schema editors use, so every description here is what a user reads while typing.
 */
import { z } from "zod";
import { DEFAULT_LIMITS } from "../../agent/protocol/deadlines.ts";
import { MAIN_STEPS } from "../../machines/target/types.ts";
import { DEFAULT_OUTPUT_BUDGET } from "../events/output-budget.ts";
import {
  Command,
  ComponentId,
  described,
  Duration,
  FilePath,
  Fingerprint,
  Host,
  NetbiosServer,
  WindowsRunRoot,
  integer,
  Name,
  Os,
  Port,
  SecretRef,
  SudoPath,
  Tag,
  TargetName,
  size,
  sizeWords,
  User,
  Domain,
  Version,
} from "./schema-parts.ts";

/** The line an editor needs to validate a job file against the committed schema. */
export const SCHEMA_COMMENT_PREFIX = "# yaml-language-server: $schema=";

const Auth = described(
  z.strictObject({
    key: SecretRef.optional().meta({
      description: "A private key (OpenSSH or PEM): { file: path } or { env: NAME }.",
    }),
    passphrase: SecretRef.optional().meta({ description: "The private key's passphrase, when it has one." }),
    agent: z
      .literal(true)
      .optional()
      .meta({ description: "Use the keys of the running ssh-agent (SSH_AUTH_SOCK)." }),
    password: SecretRef.optional().meta({ description: "A password: { env: NAME } or { file: path }." }),
  }),
  "How to log in: exactly one of key, agent, password. Secrets are references, never values.",
  { expected: "one of { key: ... }, { agent: true }, { password: ... }", what: "auth" },
  { oneOf: [{ required: ["key"] }, { required: ["agent"] }, { required: ["password"] }] },
);

const Become = described(
  z.union([
    z.boolean(),
    z.strictObject({
      password: SecretRef.optional().meta({
        description: "The sudo password of the login user (none: sudo without a password).",
      }),
      sudoPath: SudoPath.optional(),
    }),
  ]),
  "Become root through sudo after logging in as a non-root user: true (sudo without a password) or { password: <secret>, sudoPath: <absolute path> } (each optional).",
  {
    expected: "true, false, or { password: { env: NAME }, sudoPath: /usr/bin/sudo }",
    what: "become setting",
  },
);

const TargetFields = {
  port: Port.optional().meta({ description: "The SSH port (default 22; 445 for windows)." }),
  os: Os.optional(),
  user: User.optional(),
  domain: Domain.optional(),
  auth: Auth.optional(),
  become: Become.optional(),
};

const Defaults = described(
  z.strictObject(TargetFields),
  "Values every remote target takes unless it sets its own (user, port, os, auth, become).",
  { expected: "a mapping of user, port, os, auth, become", what: "defaults" },
);

const Target = described(
  z.strictObject({
    host: Host,
    name: TargetName.optional(),
    ...TargetFields,
    hostKey: Fingerprint.optional(),
    tags: z.array(Tag).max(64).optional().meta({ description: "Tags to select targets by." }),
  }),
  "A server to deploy to.",
  { expected: "a mapping with at least host", what: "target" },
);

const Component = described(
  z.strictObject({
    id: ComponentId,
    version: Version,
    files: z
      .array(FilePath)
      .max(1000)
      .default([])
      .meta({ description: "Files to stage on the target, relative to the job file; staged by base name." }),
    detect: Command.meta({
      description:
        "Prints the installed version on its first line and exits 0, or exits with absentExitCode (default 1) when the component is not installed.",
    }),
    absentExitCode: integer(0, 255, "exit code")
      .default(1)
      .meta({ description: "The detect command's exit code that means 'not installed'." }),
    install: Command.meta({ description: "Installs the component; exit 0 is success." }),
    reboot: z
      .boolean()
      .default(false)
      .meta({ description: "A reboot is needed after this component installs." }),
    timeout: Duration.optional().meta({
      description: "The install's deadline (default: options.deadlines.install).",
    }),
  }),
  "A component: files, a detect command and an install command.",
  { expected: "a mapping with id, version, detect and install", what: "component" },
);

const Package = described(
  z.strictObject({
    name: Name.optional(),
    components: z.array(Component).min(1).max(1000),
  }),
  "What to deploy.",
  { expected: "a mapping with components", what: "package" },
);

const Deadlines = described(
  z.strictObject(Object.fromEntries(MAIN_STEPS.map((s) => [s, Duration.optional()]))),
  "Deadline of one attempt of a step, per step (connect, pushAgent, allocatePorts, startAgent, hello, inventory, stage, install, logs).",
  { expected: `a mapping of ${MAIN_STEPS.join(", ")} to durations`, what: "deadlines" },
);

const Ports = described(
  z.strictObject({
    workstation: Port.default(60000).meta({ description: "Base of the workstation's own ports." }),
    callback: Port.default(61000).meta({ description: "Base of the ports targets call back to." }),
    agent: Port.default(62286).meta({ description: "Base of the agent's port on a target." }),
    strategy: z.enum(["lowest", "next", "random"]).default("lowest").meta({
      description:
        "lowest (or next): the lowest free port from the base; random: a random free port in [base, base + window).",
    }),
    window: integer(1, 65535, "window")
      .default(1000)
      .meta({ description: "random only: the window's width." }),
  }),
  "Port bases and how ports are chosen from them.",
  { expected: "a mapping of workstation, callback, agent, strategy, window", what: "ports" },
);

const Output = described(
  z.strictObject({
    maxBytes: size(64 * 1024, 1024 ** 3, "output size")
      .default(sizeWords(DEFAULT_OUTPUT_BUDGET.maxBytes))
      .meta({
        description:
          "Install output shown and published per target over the run; beyond it, lines are counted.",
      }),
    rate: size(1024, 64 * 1024 ** 2, "output rate")
      .default(sizeWords(DEFAULT_OUTPUT_BUDGET.bytesPerSecond))
      .meta({
        description: `Install output per target and second, sustained (bursts of up to ${sizeWords(DEFAULT_OUTPUT_BUDGET.burstBytes)} above it).`,
      }),
    agentLog: size(64 * 1024, 1024 ** 3, "agent log size")
      .default(sizeWords(DEFAULT_LIMITS.maxLogFileBytes))
      .meta({
        description: "Cap of the agent's log file on each target; output past it is cut, with a marker.",
      }),
  }),
  "How much install output a target may send, and how large its agent's log may grow.",
  { expected: "a mapping of maxBytes, rate, agentLog", what: "output" },
);

const Smb = described(
  z.strictObject({
    encrypt: z.boolean().default(false).meta({
      description:
        "Encrypt every SMB message to Windows targets (SMB 3.0 and later), not only where the server or share requires it. Signing is always on.",
    }),
    runRoot: WindowsRunRoot.default("/ADMIN$/Temp/sumac"),
  }),
  "How Windows targets are reached over SMB.",
  { expected: "a mapping of encrypt, runRoot", what: "smb" },
);

/** Targets worked on at once unless the job says otherwise. */
export const DEFAULT_CONCURRENCY = 32;

const Options = described(
  z.strictObject({
    concurrency: integer(1, 10000, "concurrency")
      .default(DEFAULT_CONCURRENCY)
      .meta({ description: "Targets worked on at once." }),
    retries: integer(0, 20, "number of retries").optional().meta({
      description:
        "Retries of a step after a retryable error (a lost connection, a timeout). Default: per step.",
    }),
    deadlines: Deadlines.optional(),
    ports: Ports.prefault({}),
    firewall: z
      .enum(["auto", "nftables", "netsh", "none"])
      .default("auto")
      .meta({ description: "How ports in use are opened in the host firewall while a run lasts." }),
    hostKeyPolicy: z.enum(["strict", "accept-new"]).default("strict").meta({
      description:
        "strict: a host key must be pinned (hostKey) or known (known_hosts); accept-new: a host seen for the first time is trusted and remembered.",
    }),
    netbios: z.enum(["auto", "always", "never"]).default("auto").meta({
      description:
        "How Windows targets' host names are resolved: auto: DNS, then NetBIOS (netbiosServer, then broadcast) for a name DNS does not know; always: NetBIOS only; never: DNS only. IP addresses are used as they are.",
    }),
    netbiosServer: NetbiosServer.optional(),
    smb: Smb.prefault({}),
    agentCache: z.boolean().default(false).meta({
      description:
        "Keep the agent and its runtime on targets, by hash, for the next run (default: remove them).",
    }),
    output: Output.prefault({}),
  }),
  "How the run goes.",
  {
    expected:
      "a mapping of concurrency, retries, deadlines, ports, firewall, hostKeyPolicy, netbios, netbiosServer, smb, agentCache, output",
    what: "options",
  },
);

/** A whole job file. */
export const JobSchema = described(
  z.strictObject({
    name: Name.optional(),
    defaults: Defaults.optional(),
    targets: z.array(Target).min(1).max(100000).meta({ description: "The servers to deploy to." }),
    package: Package,
    options: Options.prefault({}),
  }),
  "A sumac job: targets, a package of components, and options.",
  { expected: "a mapping with targets and package", what: "job" },
  { title: "sumac job file" },
);

/** The job as the schema checked it, before the checks across fields and the defaults of `defaults:`. */
export type JobDocument = z.output<typeof JobSchema>;
