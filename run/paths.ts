/**
 * Where a run keeps its files: the state directory (`--state-dir`, else `$XDG_STATE_HOME/sumac`,
 * else `~/.local/state/sumac`), and in it `runs/<runId>/` (mode 0700) with `report.json`,
 * and `targets/<target>/logs/`.
 */
import { randomBytes } from "node:crypto";
import { chmod, mkdir } from "node:fs/promises";
import { homedir } from "node:os";
import { isAbsolute, join, resolve } from "node:path";

/**
 * The state directory: the flag, else `$XDG_STATE_HOME/sumac` (when it is an absolute path, as the
 * XDG spec asks), else `~/.local/state/sumac`.
 */
export function resolveStateDir(
  flag: string | undefined,
  env: Readonly<Record<string, string | undefined>>,
  home: string = homedir(),
): string {
  if (flag !== undefined && flag !== "") return resolve(flag);
  const xdg = env.XDG_STATE_HOME;
  if (xdg !== undefined && isAbsolute(xdg)) return join(xdg, "sumac");
  return join(home, ".local", "state", "sumac");
}

const pad = (n: number, width = 2): string => String(n).padStart(width, "0");

/**
 * A new run id: UTC time to the millisecond and a random part, e.g. `20250612-153012-042-3fa9c1`.
 * Ids sort by start time (run directories list in order) and are plain subject tokens.
 */
export function newRunId(now: number = Date.now()): string {
  const d = new Date(now);
  const date = `${d.getUTCFullYear()}${pad(d.getUTCMonth() + 1)}${pad(d.getUTCDate())}`;
  const time = `${pad(d.getUTCHours())}${pad(d.getUTCMinutes())}${pad(d.getUTCSeconds())}`;
  return `${date}-${time}-${pad(d.getUTCMilliseconds(), 3)}-${randomBytes(3).toString("hex")}`;
}

/** `<stateDir>/runs/<runId>`. */
export function runDirOf(stateDir: string, runId: string): string {
  return join(stateDir, "runs", runId);
}

/**
 * A target id as one path segment: printable ASCII stays as it is (so every id a job file allows,
 * `web_1`, `db.example.com:2222`, `[::1]:2222`, names its own directory), while `/`, backslash, `%`,
 * spaces, control and non-ASCII characters become `%` and two hex digits per byte, and a leading
 * `.` is escaped so that no id names `.`, `..` or a hidden file.
 */
export function targetDirName(targetId: string): string {
  let out = "";
  for (const byte of new TextEncoder().encode(targetId)) {
    const c = String.fromCharCode(byte);
    const keep = byte > 0x20 && byte < 0x7f && !"/\\%".includes(c) && !(out === "" && c === ".");
    out += keep ? c : `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out === "" ? "%" : out;
}

/** `<runDir>/targets/<target>/logs`. */
export function targetLogDirOf(runDir: string, targetId: string): string {
  return join(runDir, "targets", targetDirName(targetId), "logs");
}

/** Creates a directory and its parents, each new one private (0700), and makes `dir` itself 0700. */
export async function privateDir(dir: string): Promise<string> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  // mkdir's mode is filtered by the umask and does not touch a directory that exists.
  await chmod(dir, 0o700);
  return dir;
}
