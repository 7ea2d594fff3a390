/**
 * Running a command as root through sudo, and the remote command line around every command.
 *
 * With a sudo password: `sudo -S -p PROMPT -- sh -c 'echo MARKER >&2; exec "$@"' ...`. sudo prints
 * PROMPT (a per-call random string) on stderr when, and only when, it wants the password; the
 * password line is written to stdin only then. So it never reaches the command's stdin (as it would
 * with a NOPASSWD rule or cached credentials if written blindly), and a second PROMPT means sudo
 * refused it. Without a password: `sudo -n`, which fails at once where one is needed.
 *
 * MARKER is printed by the shell sudo started, so seeing it means sudo is done: only then is the
 * command's own stdin written, and everything on stderr before it (prompts, sudo's lecture) is
 * sudo's, not the command's. The password goes over the encrypted channel's stdin only, never argv.
 *
 * sudo is run by its absolute path, never as found on the login's PATH (a `sudo` earlier there
 * would be handed the password): `become.sudoPath` when the job names one, else the first of
 * {@link SUDO_CANDIDATES}, found by `/bin/sh` under `/usr/bin/env -i`, so that nothing of the
 * login's environment (PATH, exported shell functions from `~/.ssh/environment`) takes part. As
 * root, `/bin/sh` sets {@link ROOT_PATH} before anything else runs: sudo keeps the caller's PATH
 * where sudoers has no `secure_path`, and the login's PATH must not pick what root runs.
 *
 * Every command also runs under coreutils `timeout` on the target, a backstop to the caller's
 * deadline when the connection is lost: `exec` makes it the session's process, so a TERM sent over
 * the channel reaches it (through sudo, which relays signals), and it ends the command's whole
 * process group, then KILLs what is left.
 */
import { randomBytes } from "node:crypto";

/** POSIX shell single quoting: safe for any string without NUL. */
export function shellQuote(s: string): string {
  if (s.includes("\0")) throw new TypeError("a shell argument cannot contain NUL");
  return /^[A-Za-z0-9_./:=@%+-]+$/.test(s) ? s : `'${s.replaceAll("'", `'\\''`)}'`;
}

/**
 * Where sudo is looked for, in order, when the job names none: the directories of root's own
 * `secure_path` and default PATH, which only root can write. Package managers install sudo in
 * `/usr/bin` (Debian, Ubuntu, RHEL, SUSE, Alpine); `/bin` is the same directory on merged-/usr
 * systems and the old place elsewhere; the `sbin` directories follow as root's PATH has them;
 * `/usr/local` comes last, for a sudo built on the site, since older systems let the `staff`
 * group write there.
 */
export const SUDO_CANDIDATES: readonly string[] = [
  "/usr/bin/sudo",
  "/bin/sudo",
  "/usr/sbin/sudo",
  "/sbin/sudo",
  "/usr/local/bin/sudo",
  "/usr/local/sbin/sudo",
];

/** The PATH of what runs as root (Debian's `secure_path`, which other distributions' contain). */
export const ROOT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/**
 * How to become root on the host: `password` is the login user's sudo password, if it needs one;
 * `sudoPath` the absolute path of sudo there, when not one of {@link SUDO_CANDIDATES}.
 */
export interface BecomeConfig {
  readonly password?: string;
  readonly sudoPath?: string;
}

/** Absolute, of plain names none of which starts with a dot (so no `.` or `..`). */
export const SUDO_PATH = /^(\/[A-Za-z0-9_+-][A-Za-z0-9._+-]*)+$/;
export const SUDO_PATH_MAX = 256;

/** A sudo path as a job may name it: absolute, normalised, plain characters. */
export function isSudoPath(path: string): boolean {
  return SUDO_PATH.test(path) && path.length <= SUDO_PATH_MAX;
}

/** The script, run by `/bin/sh`, that executes the first sudo of {@link SUDO_CANDIDATES}. */
const FIND_SUDO = [
  `for s in ${SUDO_CANDIDATES.join(" ")}; do if [ -f "$s" ] && [ -x "$s" ]; then exec "$s" "$@"; fi; done`,
  `echo "sumac: no sudo in ${SUDO_CANDIDATES.join(", ")} (set become.sudoPath)" >&2`,
  "exit 127",
].join("; ");

export interface WrapOptions {
  /** Run as root through sudo (false: as the login user). */
  readonly become: false | BecomeConfig;
  /** Remote backstop deadline; none for long-running processes. */
  readonly remoteTimeoutMs?: number;
  /** Grace between the backstop's TERM and KILL (default 5 s). */
  readonly killAfterMs?: number;
}

export interface WrappedCommand {
  /** The command line the login shell runs. */
  readonly line: string;
  /** Present with `become`: the strings to watch for on stderr. */
  readonly sudo?: { readonly prompt: string; readonly marker: string; readonly sendsPassword: boolean };
}

function seconds(ms: number): string {
  return `${(Math.max(ms, 1) / 1000).toFixed(3)}s`;
}

/** Builds the remote command line for `command` (run by `sh -c`). */
export function wrapCommand(command: string, options: WrapOptions): WrappedCommand {
  const inner =
    options.remoteTimeoutMs === undefined
      ? ["sh", "-c", command]
      : [
          "timeout",
          "-k",
          seconds(options.killAfterMs ?? 5_000),
          seconds(options.remoteTimeoutMs),
          "sh",
          "-c",
          command,
        ];
  if (options.become === false) return { line: `exec ${inner.map(shellQuote).join(" ")}` };
  const tag = randomBytes(9).toString("hex");
  const prompt = `[sumac-sudo-prompt-${tag}]`;
  const marker = `[sumac-sudo-ok-${tag}]`;
  const sendsPassword = options.become.password !== undefined;
  const { sudoPath } = options.become;
  if (sudoPath !== undefined && !isSudoPath(sudoPath))
    throw new TypeError(`sudo path ${JSON.stringify(sudoPath)} is not an absolute path`);
  const run =
    sudoPath === undefined
      ? ["/usr/bin/env", "-i", "/bin/sh", "-c", FIND_SUDO, "sumac-sudo"]
      : ["/usr/bin/env", "-i", sudoPath];
  const sudo = [...run, ...(sendsPassword ? ["-S", "-p", prompt, "--"] : ["-n", "--"])];
  const announce = [
    "/bin/sh",
    "-c",
    `PATH=${ROOT_PATH}; export PATH; printf '%s\\n' "$0" >&2; exec "$@"`,
    marker,
  ];
  return {
    line: `exec ${[...sudo, ...announce, ...inner].map(shellQuote).join(" ")}`,
    sudo: { prompt, marker, sendsPassword },
  };
}

/** What to do after a chunk of stderr arrived while sudo was still deciding. */
export type HandshakeStep =
  | { readonly kind: "wait" }
  | { readonly kind: "send-password" }
  /** sudo is done; `rest` is the command's own stderr that came in the same chunk. */
  | { readonly kind: "ready"; readonly rest: Buffer }
  | { readonly kind: "refused"; readonly reason: string };

/** Most sudo prints before the marker (lecture, prompts, complaints); more is refused. */
export const MAX_HANDSHAKE_BYTES = 64 * 1024;

/**
 * Follows sudo's stderr until the marker: pure, fed chunk by chunk (strings may span chunks).
 *
 * @example
 * const hs = new SudoHandshake(wrapped.sudo);
 * stream.stderr.on("data", (c) => { const step = hs.feed(c); ... });
 */
export class SudoHandshake {
  readonly #prompt: Buffer;
  readonly #marker: Buffer;
  readonly #sendsPassword: boolean;
  #seen = Buffer.alloc(0);
  #prompts = 0;
  #done = false;

  constructor(sudo: { prompt: string; marker: string; sendsPassword: boolean }) {
    this.#prompt = Buffer.from(sudo.prompt);
    this.#marker = Buffer.from(`${sudo.marker}\n`);
    this.#sendsPassword = sudo.sendsPassword;
  }

  feed(chunk: Buffer): HandshakeStep {
    if (this.#done) return { kind: "ready", rest: chunk };
    this.#seen = Buffer.concat([this.#seen, chunk]);
    const at = this.#seen.indexOf(this.#marker);
    if (at >= 0) {
      this.#done = true;
      return { kind: "ready", rest: this.#seen.subarray(at + this.#marker.length) };
    }
    if (this.#seen.length > MAX_HANDSHAKE_BYTES) {
      return {
        kind: "refused",
        reason: `sudo printed more than ${MAX_HANDSHAKE_BYTES} bytes without starting`,
      };
    }
    const prompts = count(this.#seen, this.#prompt);
    if (prompts > this.#prompts) {
      this.#prompts = prompts;
      if (!this.#sendsPassword)
        return { kind: "refused", reason: "sudo asked for a password and none is configured" };
      if (prompts === 1) return { kind: "send-password" };
      return { kind: "refused", reason: `sudo did not accept the sudo password (${this.said()})` };
    }
    return { kind: "wait" };
  }

  /** What sudo printed, without the prompt strings, for messages. */
  said(): string {
    const text = this.#seen.toString("utf8").replaceAll(this.#prompt.toString(), "").trim();
    const line = text.split("\n").filter(Boolean).slice(-2).join("; ");
    return line.length > 300 ? `${line.slice(0, 300)}...` : line || "no message";
  }
}

function count(haystack: Buffer, needle: Buffer): number {
  let n = 0;
  for (let i = haystack.indexOf(needle); i >= 0; i = haystack.indexOf(needle, i + needle.length)) n++;
  return n;
}
