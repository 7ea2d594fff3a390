/**
 * What the target actors need of a remote host, whatever the transport (STYLE.md item 4): a shell
 * that runs commands (optionally as root) and a file channel that puts files into the run's
 * directory on the target and removes them again. The SSH transport (`actors/ssh/`) implements
 * both; tests of the machines provide fakes.
 *
 * Every call takes a deadline and an AbortSignal. Aborting rejects with the signal's reason and
 * stops the remote work; failures reject with a SumacError whose code says what happened
 * (remote-errors.ts, ssh/errors.ts): UNREACHABLE and CONNECTION_LOST are worth a retry, the host
 * key codes never are.
 */
import type { Readable, Writable } from "node:stream";

export interface ExecOptions {
  /** Bytes fed to the command's stdin, then end of file. Without it stdin is closed at once. */
  readonly stdin?: string | Buffer;
  /** The command is stopped on the target (TERM, then KILL) and the call fails with `TIMEOUT`. */
  readonly timeoutMs: number;
  /** Aborting stops the command on the target and rejects with the signal's reason. */
  readonly signal?: AbortSignal;
  /** Run as root (through `sudo` when the login is not root). */
  readonly become?: boolean;
  /** Cap on stdout and on stderr, each; past it the command is stopped (`OUTPUT_TOO_LARGE`). */
  readonly maxOutputBytes?: number;
}

export interface ExecResult {
  /** The command's exit status; null when it ended by a signal. */
  readonly exitCode: number | null;
  /** The signal that ended it (`"TERM"`, `"KILL"`, ...), or null. */
  readonly signal: string | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface SpawnOptions {
  /** Deadline for the process to start (login shell and, with `become`, sudo's answer). */
  readonly startTimeoutMs: number;
  /** Aborting stops the process (TERM) and closes its streams. */
  readonly signal?: AbortSignal;
  readonly become?: boolean;
}

/** A long-running remote process whose stdin and stdout stay open for a dialogue. */
export interface RemoteProcess {
  readonly stdin: Writable;
  readonly stdout: Readable;
  readonly stderr: Readable;
  /** Settles when the process has ended and its streams are closed. */
  readonly exited: Promise<{ exitCode: number | null; signal: string | null }>;
  /**
   * Sends a signal to the process (TERM by default) and closes its channel. Over SSH the signal is
   * a request the server may refuse (OpenSSH does for root logins), and a process that does not end
   * with its channel then keeps running: whoever must be sure it stops finds it on the target (the
   * agent: `stopAgentCommand` in actors/target/posix/agent-process.ts).
   */
  kill(signal?: "TERM" | "KILL" | "INT" | "HUP"): void;
}

/** Runs commands on a target. */
export interface RemoteShell {
  exec(command: string, options: ExecOptions): Promise<ExecResult>;
  spawn(command: string, options: SpawnOptions): Promise<RemoteProcess>;
  close(): Promise<void>;
}

export interface PutOptions {
  /** Permission bits the file ends up with (e.g. 0o755 for the agent bundle). */
  readonly mode: number;
  readonly signal?: AbortSignal;
  /** Deadline for the transfer and its verification (default 5 minutes). */
  readonly timeoutMs?: number;
  /** SHA-256 (hex) the content must have, e.g. from a package manifest. */
  readonly sha256?: string;
  /**
   * Whether the SHA-256 is checked on the target right after the upload (default true: one more
   * command run there). False when something on the target checks the file before using it (the
   * agent's Stage, the agent's start command): the hash of what was sent is still returned and
   * compared with `sha256`, and the mode is set over the file channel. Over SMB the default is
   * false (every message of the transfer is signed or encrypted): true reads the file back.
   */
  readonly checkOnTarget?: boolean;
}

export interface PutResult {
  readonly bytes: number;
  /** SHA-256 (hex) of what was sent, confirmed on the target. */
  readonly sha256: string;
}

/** Options of the small file operations. */
export interface FileOpOptions {
  readonly signal?: AbortSignal;
  /** Deadline (default 30 s). */
  readonly timeoutMs?: number;
}

/**
 * Puts files into the run's directory on a target. Every path must be inside the configured run
 * root (`/var/tmp/sumac` by default); anything else is refused with `PATH_REFUSED`.
 */
export interface FileChannel {
  /** The directory that holds every run's directory on the target. */
  readonly runRoot: string;
  /**
   * A directory of the login's own, beside the run's, that uploads pass through on their way to
   * root's copy (SSH with become, after `createRunDir`); removed with the run's files.
   */
  readonly uploadDir?: string;
  /**
   * Creates (or, when it exists and is safe, reuses) `<runRoot>/<run>`, private to the login user
   * and readable by root, and `subdirs` in it (plain names, same mode and owner), in one command;
   * returns its path.
   */
  createRunDir(run: string, options?: FileOpOptions & { subdirs?: readonly string[] }): Promise<string>;
  mkdir(remotePath: string, options?: FileOpOptions & { mode?: number }): Promise<void>;
  /** Uploads with several writes in flight, then checks the SHA-256 on the target. */
  put(source: string | Buffer, remotePath: string, options: PutOptions): Promise<PutResult>;
  /** Removes a file or a directory tree (as root with `become`); a missing path is no error. */
  remove(remotePath: string, options?: FileOpOptions & { become?: boolean }): Promise<void>;
  close(): Promise<void>;
}
