/**
 * The job as the rest of sumac sees it once loaded: checked, with every default filled in, every
 * path absolute and every secret a reference (read only when used, see `secret.ts`).
 */
import type { FirewallMode } from "../../actors/firewall/select.ts";
import type { PolicyOptions } from "../../machines/target/types.ts";

/** Where a secret is; its value is read when it is needed, never kept in the job. */
export type SecretRef =
  | { readonly kind: "file"; /** Absolute. */ readonly path: string }
  | { readonly kind: "env"; readonly name: string };

/** How a remote target is logged in to. */
export type TargetAuth =
  | { readonly method: "key"; readonly key: SecretRef; readonly passphrase?: SecretRef }
  | { readonly method: "agent" }
  | { readonly method: "password"; readonly password: SecretRef };

/** Root through sudo after logging in; `password` when sudo asks for one. */
export interface Become {
  readonly method: "sudo";
  readonly password?: SecretRef;
  /** sudo's absolute path on the target; default: the first found of SUDO_CANDIDATES. */
  readonly sudoPath?: string;
}

interface TargetCommon {
  /** Unique in the job: `name`, or host, or host:port when the port is not the default. */
  readonly id: string;
  readonly tags: readonly string[];
}

/** This machine (`host: local`): the agent runs as a local process, no login. */
export interface LocalTarget extends TargetCommon {
  readonly transport: "local";
  readonly host: "local";
  readonly os: "linux";
}

/** A Linux server reached over SSH. */
export interface SshTarget extends TargetCommon {
  readonly transport: "ssh";
  readonly host: string;
  readonly port: number;
  readonly os: "linux";
  readonly user: string;
  readonly auth: TargetAuth;
  readonly become?: Become;
  /** Pinned host key fingerprint, `SHA256:` and 43 base64 characters (no padding). */
  readonly hostKey?: string;
}

/** A Windows server reached through ADMIN$ over SMB, its agent run as a service (docs/windows.md). */
export interface SmbTarget extends TargetCommon {
  readonly transport: "smb";
  readonly host: string;
  readonly port: number;
  readonly os: "windows";
  readonly user: string;
  /** The login's domain; empty for the server's own accounts (or carried by `user`). */
  readonly domain: string;
  readonly auth: Extract<TargetAuth, { method: "password" }>;
}

export type JobTarget = LocalTarget | SshTarget | SmbTarget;

/** A file to stage: read from `source`, staged as `name` in the staging directory. */
export interface ComponentFile {
  /** Absolute path on this machine; it existed and was a regular file when the job was loaded. */
  readonly source: string;
  /** Its base name: unique in the package, since all files share one staging directory. */
  readonly name: string;
}

export interface JobComponent {
  readonly id: string;
  readonly version: string;
  readonly files: readonly ComponentFile[];
  /** Prints the installed version (first line) and exits 0, or exits `absentExitCode` when absent. */
  readonly detect: string;
  readonly absentExitCode: number;
  readonly install: string;
  /** A reboot is needed once it is installed. */
  readonly reboot: boolean;
  /** The install's own deadline; absent: the install step's. */
  readonly timeoutMs?: number;
}

/** One port range: ports are chosen from `base` up, `lowest` first or `random` in [base, base + window). */
export interface PortRange {
  readonly base: number;
  readonly strategy: "lowest" | "random";
  readonly window: number;
}

export interface JobOptions {
  /** Targets worked on at once; default 32. */
  readonly concurrency: number;
  /** Deadlines and retries of the target machine's steps, from `retries` and `deadlines`. */
  readonly policy: PolicyOptions;
  readonly ports: {
    readonly workstation: PortRange;
    readonly callback: PortRange;
    /** The agent's port on a target; the agent calls `lowest` `next`. */
    readonly agent: PortRange;
  };
  readonly firewall: FirewallMode;
  readonly hostKeyPolicy: "strict" | "accept-new";
  /** How Windows targets' names are resolved (actors/netbios/resolve.ts); default auto. */
  readonly netbios: "auto" | "always" | "never";
  /** A WINS server asked before broadcasting, when the job names one. */
  readonly netbiosServer?: string;
  /** SMB to Windows targets: encryption asked for, and where runs' directories go (actors/smb/files.ts). */
  readonly smb: { readonly encrypt: boolean; readonly runRoot: string };
  /** Keep the agent and runtime on targets by hash; default false. */
  readonly agentCache: boolean;
  /** Install output per target (run/events/output-budget.ts) and the agent's log cap, in bytes. */
  readonly output: {
    readonly maxBytes: number;
    readonly bytesPerSecond: number;
    readonly agentLogBytes: number;
  };
}

/** A loaded job file. */
export interface Job {
  /** The job file, absolute. */
  readonly file: string;
  /** `name:`, or the file's name without its extension. */
  readonly name: string;
  readonly targets: readonly JobTarget[];
  readonly package: { readonly name: string; readonly components: readonly JobComponent[] };
  readonly options: JobOptions;
}
