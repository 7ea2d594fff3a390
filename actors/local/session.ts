/**
 * This machine as a target (`host: local`, HP SUM's local deployment): the RemoteShell and
 * FileChannel of actors/remote.ts over child processes (exec.ts) and node:fs (files.ts), with the
 * SSH transport's contracts: deadlines, AbortSignals, paths held to the run root, and `become` as
 * root (this process already is) or through `sudo -n` (never asking a password).
 *
 * @example
 * const local = new LocalSession(localRoots().runRoot);
 * const dir = await local.createRunDir(runId, { signal });
 * await local.put(bundle.path, `${dir}/agent.js`, { mode: 0o644, sha256: bundle.sha256, signal });
 */
import type { ChildProcess } from "node:child_process";
import { homedir } from "node:os";
import { join } from "node:path";
import type {
  ExecOptions,
  ExecResult,
  FileChannel,
  FileOpOptions,
  PutOptions,
  PutResult,
  RemoteProcess,
  RemoteShell,
  SpawnOptions,
} from "../remote.ts";
import { shellQuote } from "../ssh/become.ts";
import { checkRunRoot } from "../ssh/files.ts";
import { RemoteCommandError } from "../remote-errors.ts";
import { execLocal, spawnLocal, stopChild, type LocalBecome } from "./exec.ts";
import { DEFAULT_OP_TIMEOUT_MS, createRunDir, makeDir, putFile, removable, removeOwn } from "./files.ts";

/** Where local mode keeps run directories and the agent's logs. */
export interface LocalRoots {
  readonly runRoot: string;
  readonly logRoot: string;
}

/**
 * As root: `/var/tmp/sumac` and `/var/log/sumac`, as on any target. Otherwise under the user's
 * state directory (`$XDG_STATE_HOME`, default `~/.local/state`): `sumac/targets` and
 * `sumac/target-logs`, since a user cannot write the system's directories.
 */
export function localRoots(
  env: NodeJS.ProcessEnv = process.env,
  isRoot = process.getuid?.() === 0,
): LocalRoots {
  if (isRoot) return { runRoot: "/var/tmp/sumac", logRoot: "/var/log/sumac" };
  const xdg = env.XDG_STATE_HOME;
  const state =
    xdg !== undefined && xdg.startsWith("/") ? xdg : join(env.HOME ?? homedir(), ".local", "state");
  return { runRoot: join(state, "sumac", "targets"), logRoot: join(state, "sumac", "target-logs") };
}

export interface LocalSessionOptions {
  /** Default: this process's uid is 0. */
  readonly isRoot?: boolean;
  /** The sudo program for `become` when not root (default `sudo` on PATH). */
  readonly sudo?: string;
}

/** The local target's shell and files; `close()` stops the commands it started. */
export class LocalSession implements RemoteShell, FileChannel {
  readonly runRoot: string;
  readonly #become: LocalBecome;
  readonly #children = new Set<ChildProcess>();
  #closed = false;

  constructor(runRoot: string, options: LocalSessionOptions = {}) {
    this.runRoot = checkRunRoot(runRoot);
    this.#become = { isRoot: options.isRoot ?? process.getuid?.() === 0, sudo: options.sudo ?? "sudo" };
  }

  #open(): void {
    if (this.#closed) throw new RemoteCommandError("the local session is closed");
  }

  async exec(command: string, options: ExecOptions): Promise<ExecResult> {
    this.#open();
    return execLocal(command, options, this.#become, this.#children);
  }

  async spawn(command: string, options: SpawnOptions): Promise<RemoteProcess> {
    this.#open();
    return spawnLocal(command, options, this.#become, this.#children);
  }

  async createRunDir(
    run: string,
    options?: FileOpOptions & { subdirs?: readonly string[] },
  ): Promise<string> {
    return createRunDir(this.runRoot, run, options);
  }

  async mkdir(remotePath: string, options?: FileOpOptions & { mode?: number }): Promise<void> {
    return makeDir(this.runRoot, remotePath, options);
  }

  async put(source: string | Buffer, remotePath: string, options: PutOptions): Promise<PutResult> {
    return putFile(this.runRoot, source, remotePath, options);
  }

  /** With `become` as a user other than root, `rm -rf` runs through `sudo -n` (root's files). */
  async remove(remotePath: string, options?: FileOpOptions & { become?: boolean }): Promise<void> {
    if (options?.become !== true || this.#become.isRoot) return removeOwn(this.runRoot, remotePath, options);
    const p = await removable(this.runRoot, remotePath);
    if (p === undefined) return;
    const result = await this.exec(`rm -rf -- ${shellQuote(p)}`, {
      become: true,
      timeoutMs: options.timeoutMs ?? DEFAULT_OP_TIMEOUT_MS,
      ...(options.signal ? { signal: options.signal } : {}),
    });
    if (result.exitCode !== 0)
      throw new RemoteCommandError(`cannot remove ${p}: ${result.stderr.trim().slice(0, 300)}`);
  }

  /** Stops every command still running (their process groups, TERM). */
  close(): Promise<void> {
    this.#closed = true;
    for (const child of this.#children) stopChild(child);
    return Promise.resolve();
  }
}
