/**
 * The file operations of an SSH session, all confined to the run root (`/var/tmp/sumac` by
 * default): creating a run's directory, uploads verified by SHA-256 on the target, and removal.
 *
 * A root login makes `<root>/<run>` (mode 0700) and uploads into it, the root directory checked
 * (owner root or the login user, writable by no one else, no symbolic link).
 *
 * Any other login reaches root through sudo (`become`), and what root runs must be beyond its
 * reach: the login's files could be swapped after a check by whoever holds the
 * account, which need not know the sudo password. So root makes `<root>/<run>` root's own (mode
 * 0700) in a root that is root's, as is every directory above it; the login uploads into a spool
 * of its own beside it, `<root>/.upload-<run>`, and root copies each file from there into place and hashes the
 * copy, which only root can change, before renaming it to its name. A difference from what was
 * sent is HASH_MISMATCH and nothing is put in place.
 */
import { randomBytes } from "node:crypto";
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
  /** Whether root makes run directories and copies uploads into them (the login is not root). */
  useBecomeForRunDir(signal?: AbortSignal): Promise<boolean>;
  /** The login user's numeric uid. */
  uid(signal?: AbortSignal): Promise<number>;
  /** With become: the login's upload spool of the run whose directory this session made last. */
  uploadDir?: string;
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

/** Fails unless DIR and every directory above it are root's and writable by no one else. */
const ROOT_CHAIN = `rootchain() {
  d=$(cd -P -- "$1" 2>/dev/null && pwd -P) || { echo "$1 is not a directory" >&2; exit 21; }
  while :; do
    o=$(stat -c %u -- "$d") && m=$(stat -c %a -- "$d") || exit 20
    if [ "$o" != 0 ]; then echo "$d belongs to uid $o, not root: what root runs must lie where only root can change it" >&2; exit 21; fi
    if [ $(( 0$m & 022 )) -ne 0 ] && { [ "$d" = "$2" ] || [ $(( 0$m & 01000 )) -eq 0 ]; }; then echo "$d is writable by group or others (mode $m)" >&2; exit 21; fi
    [ "$d" = / ] && return 0
    d=$(dirname -- "$d")
  done
}`;

/**
 * As root: the run root and `<root>/<run>` (and its subdirectories) root's own, the run's 0700,
 * every directory above them root's; the login's upload spool, its own, 0700.
 */
const ROOT_RUN_DIR_SCRIPT = `set -u
root=$1 dir=$2 uid=$3 spool=$4
shift 4
umask 077
${ROOT_CHAIN}
if [ ! -e "$root" ] && [ ! -L "$root" ]; then mkdir -p -m 0755 -- "$root" || exit 20; fi
if [ -L "$root" ] || [ ! -d "$root" ]; then echo "$root is a symbolic link or not a directory" >&2; exit 21; fi
real=$(cd -P -- "$root" && pwd -P) || exit 20
rootchain "$root" "$real"
rootdir() {
  if [ -L "$1" ] || { [ -e "$1" ] && { [ ! -d "$1" ] || [ "$(stat -c %u -- "$1")" != 0 ]; }; }; then echo "$1 exists and is not root's directory" >&2; exit 21; fi
  if [ ! -e "$1" ]; then mkdir -m 0700 -- "$1" || exit 20; fi
  chmod 0700 -- "$1" || exit 20
}
rootdir "$dir"
for sub in "$@"; do rootdir "$dir/$sub"; done
if [ -L "$spool" ] || { [ -e "$spool" ] && { [ ! -d "$spool" ] || [ "$(stat -c %u -- "$spool")" != "$uid" ]; }; }; then rm -rf -- "$spool" || exit 20; fi
if [ ! -e "$spool" ]; then mkdir -m 0700 -- "$spool" && chown -- "$uid" "$spool" || exit 20; fi
echo "uid $uid"`;

/**
 * As root: copies the login's upload into place through a root-owned `.part`, whose SHA-256 must
 * be what was sent (prints it; exit 3 when not); the upload is removed either way.
 */
const ROOT_COPY_SCRIPT = `set -u
src=$1 dst=$2 mode=$3 want=$4 root=$5
${ROOT_CHAIN}
dir=$(dirname -- "$dst")
rootchain "$dir" "$(cd -P -- "$root" && pwd -P)"
part=$dst.part
umask 077
rm -f -- "$part"
if ! cat < "$src" > "$part"; then rm -f -- "$src" "$part"; exit 20; fi
rm -f -- "$src"
h=$(sha256sum -b < "$part") || { rm -f -- "$part"; exit 20; }
h=\${h%% *}
echo "sha256 $h"
if [ "$h" != "$want" ]; then rm -f -- "$part"; exit 3; fi
chmod "$mode" -- "$part" && mv -f -- "$part" "$dst" || { rm -f -- "$part"; exit 20; }`;

/** As root: makes a directory under the run root, root's own, with root's directories above it. */
const ROOT_MKDIR_SCRIPT = `set -u
p=$1 mode=$2 root=$3
${ROOT_CHAIN}
mkdir -p -m "$mode" -- "$p" || exit 20
rootchain "$p" "$(cd -P -- "$root" && pwd -P)"`;

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
  const command = become
    ? script(ROOT_RUN_DIR_SCRIPT, "sumac-run-dir", [host.runRoot, dir, uid, uploadSpoolOf(dir), ...subdirs])
    : script(RUN_DIR_SCRIPT, "sumac-run-dir", [host.runRoot, dir, uid, ...subdirs]);
  const result = await host.exec(command, {
    timeoutMs: options.timeoutMs ?? DEFAULT_OP_TIMEOUT_MS,
    become,
    ...(signal ? { signal } : {}),
  });
  if (result.exitCode !== 0) throw scriptError(`cannot prepare ${dir} on ${host.label}`, result);
  const learnt = /^uid (\d{1,10})$/m.exec(result.stdout)?.[1];
  if (!become && learnt !== undefined) host.learnUid(Number(learnt));
  if (become) host.uploadDir = uploadSpoolOf(dir);
  return dir;
}

/**
 * With become, the login's upload spool for the run directory `runDir`: beside it, named as no run
 * can be (run names do not start with `.`). Removed with the run's files (agent-files.ts).
 */
export function uploadSpoolOf(runDir: string): string {
  return `${posix.dirname(runDir)}/.upload-${posix.basename(runDir)}`;
}

export async function makeDir(
  host: FilesHost,
  path: string,
  options: FileOpOptions & { mode?: number } = {},
): Promise<void> {
  const p = insideRunRoot(host.runRoot, path);
  const mode = (options.mode ?? 0o700).toString(8);
  const become = await host.useBecomeForRunDir(options.signal);
  const command = become
    ? script(ROOT_MKDIR_SCRIPT, "sumac-mkdir", [p, mode, host.runRoot])
    : ["mkdir", "-p", "-m", mode, "--", p].map(shellQuote).join(" ");
  const result = await host.exec(command, {
    timeoutMs: options.timeoutMs ?? DEFAULT_OP_TIMEOUT_MS,
    become,
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
  const become = await host.useBecomeForRunDir(signal);
  if (become && host.uploadDir === undefined)
    throw new RemoteCommandError(`no run directory was made on ${host.label} to upload ${p} through`);
  const uploadTo = become ? `${host.uploadDir}/${randomBytes(12).toString("hex")}` : p;
  const sftp = await host.sftp(signal).catch((e: unknown) => {
    throw signal.aborted ? reason() : e;
  });
  // Ending the SFTP session is what stops writes in flight when the deadline or abort comes.
  const onAbort = (): void => host.dropSftp(sftp);
  signal.addEventListener("abort", onAbort, { once: true });
  let sent: { bytes: number; sha256: string };
  try {
    sent = await uploadPipelined(sftp, source, uploadTo, { mode: become ? 0o600 : options.mode, signal });
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
  if (become) {
    await copyAsRoot(host, uploadTo, p, sent, options.mode, { timeoutMs, signal, reason });
    return sent;
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

/** With become: root copies the upload from the login's spool into place, checked by SHA-256. */
async function copyAsRoot(
  host: FilesHost,
  upload: string,
  path: string,
  sent: { bytes: number; sha256: string },
  mode: number,
  options: { timeoutMs: number; signal: AbortSignal; reason: () => Error },
): Promise<void> {
  await host.hooks?.beforeVerify?.(upload);
  const copied = await host
    .exec(
      script(ROOT_COPY_SCRIPT, "sumac-put", [upload, path, mode.toString(8), sent.sha256, host.runRoot]),
      {
        timeoutMs: Math.min(options.timeoutMs, DEFAULT_OP_TIMEOUT_MS * 4),
        signal: options.signal,
        become: true,
      },
    )
    .catch((e: unknown) => {
      throw options.signal.aborted ? options.reason() : e;
    });
  const remote = /^sha256 ([0-9a-f]{64})$/m.exec(copied.stdout)?.[1];
  if (copied.exitCode === 3 && remote !== undefined)
    throw new RemoteHashMismatchError(
      `${path} on ${host.label} has SHA-256 ${remote} as root copied it from the upload, but ${sent.sha256} was sent (${sent.bytes} bytes)`,
    );
  if (copied.exitCode !== 0) throw scriptError(`cannot put ${path} in place on ${host.label}`, copied);
}
