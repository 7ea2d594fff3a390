/**
 * The file operations of an SSH session, all confined to the run root (`/var/tmp/sumac` by
 * default): creating a run's directory, uploads verified by SHA-256 on the target, and removal.
 *
 * Files are uploaded as the login user into `<root>/<run>`, a directory it owns with mode 0700.
 * With `become`, root creates that directory (and the root itself, 0755 and root-owned, when
 * missing) and hands it to the login user; root then reads the files where they are (no copy,
 * no second hash). Only the login user, who may become root anyway, and root can change them,
 * and the root directory is checked (owner root or the login user, writable by no one else, no
 * symbolic link), so no other account can swap a file root will run.
 */
import { posix } from "node:path";
import type { SFTPWrapper } from "ssh2";
import type { ExecOptions, ExecResult, FileOpOptions, PutOptions, PutResult } from "../remote.ts";
import { shellQuote } from "./become.ts";
import {
  RemoteCommandError,
  RemoteHashMismatchError,
  RemotePathRefusedError,
  RemoteTimeoutError,
} from "../remote-errors.ts";
import { uploadPipelined } from "./upload.ts";

/** Where runs' directories go unless configured otherwise. */
export const DEFAULT_RUN_ROOT = "/var/tmp/sumac";
const DEFAULT_OP_TIMEOUT_MS = 30_000;
const DEFAULT_PUT_TIMEOUT_MS = 5 * 60_000;

/** Test hooks; production code passes none. */
export interface FileHooks {
  /** Runs after an upload, before the hash is checked on the target (tests corrupt the file here). */
  readonly beforeVerify?: (remotePath: string) => Promise<void>;
}

/** What the file operations need of the session. */
export interface FilesHost {
  readonly label: string;
  readonly runRoot: string;
  /** Whether root should create run directories (the login is not root and become is configured). */
  useBecomeForRunDir(signal?: AbortSignal): Promise<boolean>;
  /** The login user's numeric uid. */
  uid(signal?: AbortSignal): Promise<number>;
  /** Tells the session the login user's uid, learnt by a command that ran anyway. */
  learnUid(uid: number): void;
  exec(command: string, options: ExecOptions): Promise<ExecResult>;
  sftp(signal?: AbortSignal): Promise<SFTPWrapper>;
  /** Ends an SFTP session (so its requests in flight fail) and forgets it. */
  dropSftp(sftp: SFTPWrapper): void;
  readonly hooks?: FileHooks;
}

/** Checks a run root: absolute, normalised, not `/`, no control characters. */
export function checkRunRoot(root: string): string {
  if (
    !root.startsWith("/") ||
    posix.normalize(root) !== root ||
    root === "/" ||
    root.endsWith("/") ||
    /[\0-\x1f]/.test(root)
  ) {
    throw new RemotePathRefusedError(
      `run root ${JSON.stringify(root)} must be an absolute, normalised directory other than /`,
    );
  }
  return root;
}

/** The normalised `path`, or `PATH_REFUSED` unless it lies strictly inside `root`. */
export function insideRunRoot(root: string, path: string): string {
  if (/[\0-\x1f]/.test(path))
    throw new RemotePathRefusedError(`path ${JSON.stringify(path)} contains control characters`);
  const p = posix.normalize(path);
  if (!p.startsWith("/") || !p.startsWith(`${root}/`) || p.length === root.length + 1) {
    throw new RemotePathRefusedError(
      `${JSON.stringify(path)} is not inside the run root ${root}; refusing to touch it`,
    );
  }
  return p.endsWith("/") ? p.slice(0, -1) : p;
}

/** A run's name becomes a directory name: letters, digits, `.`, `_`, `-`; not starting with `.`. */
export function checkRunName(run: string): string {
  if (!/^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$/.test(run)) {
    throw new RemotePathRefusedError(
      `run name ${JSON.stringify(run)} is not a safe directory name ([A-Za-z0-9._-], not starting with '.')`,
    );
  }
  return run;
}

/** Exit statuses of the scripts below: 21 means refused (unsafe), 20 a failure to act. */
const REFUSED = 21;

const RUN_DIR_SCRIPT = `set -u
root=$1 dir=$2 uid=$3
shift 3
if [ -z "$uid" ]; then uid=$(id -u) || exit 20; fi
umask 022
if [ ! -e "$root" ] && [ ! -L "$root" ]; then mkdir -p -m 0755 -- "$root" || exit 20; fi
if [ -L "$root" ] || [ ! -d "$root" ]; then echo "$root is a symbolic link or not a directory" >&2; exit 21; fi
owner=$(stat -c %u -- "$root") && mode=$(stat -c %a -- "$root") || exit 20
if [ "$owner" != 0 ] && [ "$owner" != "$uid" ]; then echo "$root belongs to uid $owner, neither root nor the login user" >&2; exit 21; fi
if [ $(( 0$mode & 022 )) -ne 0 ]; then echo "$root is writable by group or others (mode $mode)" >&2; exit 21; fi
if [ -e "$dir" ] || [ -L "$dir" ]; then
  if [ -L "$dir" ] || [ ! -d "$dir" ] || [ "$(stat -c %u -- "$dir")" != "$uid" ]; then echo "$dir exists and is not the login user's directory" >&2; exit 21; fi
else
  mkdir -m 0700 -- "$dir" || exit 20
  if [ "$(id -u)" != "$uid" ]; then chown -- "$uid" "$dir" || exit 20; fi
fi
chmod 0700 -- "$dir" || exit 20
for sub in "$@"; do
  if [ -L "$dir/$sub" ] || { [ -e "$dir/$sub" ] && [ ! -d "$dir/$sub" ]; }; then echo "$dir/$sub exists and is not a directory" >&2; exit 21; fi
  mkdir -p -m 0700 -- "$dir/$sub" || exit 20
  if [ "$(id -u)" != "$uid" ]; then chown -- "$uid" "$dir/$sub" || exit 20; fi
done
echo "uid $uid"`;

const REMOVE_SCRIPT = `set -u
p=$1 root=$2
if [ ! -e "$p" ] && [ ! -L "$p" ]; then exit 0; fi
r=$(cd -P -- "$root" && pwd -P) || exit 21
d=$(cd -P -- "$(dirname -- "$p")" && pwd -P) || exit 21
case "$d/" in "$r"/*) ;; *) echo "$p resolves outside $root ($d)" >&2; exit 21;; esac
rm -rf -- "$p" || exit 20`;

function script(body: string, name: string, args: readonly string[]): string {
  return ["sh", "-c", body, name, ...args].map(shellQuote).join(" ");
}

function complaint(result: ExecResult): string {
  const text = (result.stderr || result.stdout).trim().split("\n").slice(-2).join("; ");
  return text.length > 300 ? `${text.slice(0, 300)}...` : text || `exit status ${String(result.exitCode)}`;
}

function scriptError(what: string, result: ExecResult): Error {
  return result.exitCode === REFUSED
    ? new RemotePathRefusedError(`${what}: ${complaint(result)}`)
    : new RemoteCommandError(`${what}: ${complaint(result)}`);
}

export async function createRunDir(
  host: FilesHost,
  run: string,
  options: FileOpOptions & { subdirs?: readonly string[] } = {},
): Promise<string> {
  const dir = `${host.runRoot}/${checkRunName(run)}`;
  const subdirs = (options.subdirs ?? []).map(checkRunName);
  const { signal } = options;
  const become = await host.useBecomeForRunDir(signal);
  // Without become the script runs as the login user and asks `id -u` itself: no command of its
  // own for the uid (each costs a round trip and a session on the target).
  const uid = become ? String(await host.uid(signal)) : "";
  const result = await host.exec(
    script(RUN_DIR_SCRIPT, "sumac-run-dir", [host.runRoot, dir, uid, ...subdirs]),
    {
      timeoutMs: options.timeoutMs ?? DEFAULT_OP_TIMEOUT_MS,
      become,
      ...(signal ? { signal } : {}),
    },
  );
  if (result.exitCode !== 0) throw scriptError(`cannot prepare ${dir} on ${host.label}`, result);
  const learnt = /^uid (\d{1,10})$/m.exec(result.stdout)?.[1];
  if (!become && learnt !== undefined) host.learnUid(Number(learnt));
  return dir;
}

export async function makeDir(
  host: FilesHost,
  path: string,
  options: FileOpOptions & { mode?: number } = {},
): Promise<void> {
  const p = insideRunRoot(host.runRoot, path);
  const mode = (options.mode ?? 0o700).toString(8);
  const result = await host.exec(["mkdir", "-p", "-m", mode, "--", p].map(shellQuote).join(" "), {
    timeoutMs: options.timeoutMs ?? DEFAULT_OP_TIMEOUT_MS,
    ...(options.signal ? { signal: options.signal } : {}),
  });
  if (result.exitCode !== 0) throw scriptError(`cannot create ${p} on ${host.label}`, result);
}

export async function removePath(
  host: FilesHost,
  path: string,
  options: FileOpOptions & { become?: boolean } = {},
): Promise<void> {
  const p = insideRunRoot(host.runRoot, path);
  const result = await host.exec(script(REMOVE_SCRIPT, "sumac-remove", [p, host.runRoot]), {
    timeoutMs: options.timeoutMs ?? DEFAULT_OP_TIMEOUT_MS,
    become: options.become ?? false,
    ...(options.signal ? { signal: options.signal } : {}),
  });
  if (result.exitCode !== 0) throw scriptError(`cannot remove ${p} on ${host.label}`, result);
}

/**
 * Uploads, sets the mode, and compares the SHA-256 `sha256sum` reports on the target (unless
 * `checkOnTarget` is false: see `PutOptions`).
 */
export async function putFile(
  host: FilesHost,
  source: string | Buffer,
  path: string,
  options: PutOptions,
): Promise<PutResult> {
  const p = insideRunRoot(host.runRoot, path);
  const timeoutMs = options.timeoutMs ?? DEFAULT_PUT_TIMEOUT_MS;
  const timeout = new RemoteTimeoutError(
    `upload to ${p} on ${host.label} did not finish within ${timeoutMs} ms`,
  );
  const deadline = AbortSignal.timeout(timeoutMs);
  const signal = options.signal ? AbortSignal.any([options.signal, deadline]) : deadline;
  const reason = (): Error => (deadline.aborted ? timeout : (options.signal?.reason as Error));
  if (!Number.isInteger(options.mode) || options.mode < 0 || options.mode > 0o7777) {
    throw new RemoteCommandError(`mode ${String(options.mode)} for ${p} is not a permission mode`);
  }
  const sftp = await host.sftp(signal).catch((e: unknown) => {
    throw signal.aborted ? reason() : e;
  });
  // Ending the SFTP session is what stops writes in flight when the deadline or abort comes.
  const onAbort = (): void => host.dropSftp(sftp);
  signal.addEventListener("abort", onAbort, { once: true });
  let sent: { bytes: number; sha256: string };
  try {
    sent = await uploadPipelined(sftp, source, p, { mode: options.mode, signal });
  } catch (error) {
    throw signal.aborted ? reason() : error;
  } finally {
    signal.removeEventListener("abort", onAbort);
  }
  const expected = options.sha256?.toLowerCase();
  if (expected !== undefined && expected !== sent.sha256) {
    throw new RemoteHashMismatchError(
      `the content sent to ${p} has SHA-256 ${sent.sha256}, expected ${expected}`,
    );
  }
  if (options.checkOnTarget === false) {
    // Checked later by what uses the file; the mode is set over the file channel, no command.
    // Under the same deadline: ending the SFTP session fails the request if no answer comes.
    signal.addEventListener("abort", onAbort, { once: true });
    try {
      await new Promise<void>((resolve, reject) => {
        if (signal.aborted) return reject(reason());
        sftp.chmod(p, options.mode, (error) => (error ? reject(error) : resolve()));
      });
    } catch (e) {
      throw signal.aborted
        ? reason()
        : new RemoteCommandError(`cannot set the mode of ${p} on ${host.label}`, { cause: e });
    } finally {
      signal.removeEventListener("abort", onAbort);
    }
    return sent;
  }
  await host.hooks?.beforeVerify?.(p);
  const check = await host
    .exec(
      `chmod ${shellQuote(options.mode.toString(8))} -- ${shellQuote(p)} && sha256sum -b -- ${shellQuote(p)}`,
      { timeoutMs: Math.min(timeoutMs, DEFAULT_OP_TIMEOUT_MS * 4), signal },
    )
    .catch((e: unknown) => {
      throw signal.aborted ? reason() : e;
    });
  const remote = /^\\?([0-9a-f]{64}) /.exec(check.stdout)?.[1];
  if (check.exitCode !== 0 || remote === undefined) {
    throw new RemoteCommandError(`cannot check the SHA-256 of ${p} on ${host.label}: ${complaint(check)}`);
  }
  if (remote !== sent.sha256) {
    throw new RemoteHashMismatchError(
      `${p} on ${host.label} has SHA-256 ${remote} after the upload, but ${sent.sha256} was sent (${sent.bytes} bytes)`,
    );
  }
  return sent;
}
