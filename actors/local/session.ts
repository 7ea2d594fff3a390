/**
 * This machine as a target (`host: local`, HP SUM's local deployment): the same RemoteShell and
 * FileChannel contracts as the SSH transport (actors/remote.ts), over child processes and node:fs.
 * Commands run through `/bin/sh -c`; `become` runs them as they are when this process is root and
 * through `sudo -n` (never asking a password) otherwise. Paths are held to the run root exactly as
 * over SSH.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { chmod, mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { posix } from "node:path";
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
import { checkRunName, checkRunRoot, insideRunRoot } from "../ssh/files.ts";
import {
  SshCommandError,
  SshHashMismatchError,
  SshOutputTooLargeError,
  SshTimeoutError,
  SshUploadError,
} from "../ssh/errors.ts";
import { DEFAULT_MAX_OUTPUT_BYTES } from "../ssh/exec.ts";

const isRoot = () => process.getuid?.() === 0;

function argv(command: string, become: boolean | undefined): [string, string[]] {
  return become === true && !isRoot()
    ? ["sudo", ["-n", "--", "/bin/sh", "-c", command]]
    : ["/bin/sh", ["-c", command]];
}

/** Stops a child and the processes it started (it leads its own process group). */
function stopChild(child: ChildProcess, signal: NodeJS.Signals = "SIGTERM"): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    child.kill(signal);
  }
}

/** The local target's shell and files. */
export class LocalSession implements RemoteShell, FileChannel {
  readonly runRoot: string;
  readonly #children = new Set<ChildProcess>();

  constructor(runRoot: string) {
    this.runRoot = checkRunRoot(runRoot);
  }

  exec(command: string, options: ExecOptions): Promise<ExecResult> {
    const [file, args] = argv(command, options.become);
    const max = options.maxOutputBytes ?? DEFAULT_MAX_OUTPUT_BYTES;
    return new Promise((resolve, reject) => {
      options.signal?.throwIfAborted();
      const child = spawn(file, args, { detached: true, stdio: ["pipe", "pipe", "pipe"] });
      this.#children.add(child);
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      let outBytes = 0;
      let errBytes = 0;
      let failure: Error | undefined;
      const fail = (error: Error) => {
        failure ??= error;
        stopChild(child);
        setTimeout(() => stopChild(child, "SIGKILL"), 2_000).unref();
      };
      const timer = setTimeout(
        () => fail(new SshTimeoutError(`local command did not finish within ${options.timeoutMs} ms`)),
        options.timeoutMs,
      );
      const onAbort = () =>
        fail(options.signal?.reason instanceof Error ? options.signal.reason : new Error("aborted"));
      options.signal?.addEventListener("abort", onAbort, { once: true });
      child.stdout.on("data", (chunk: Buffer) => {
        outBytes += chunk.byteLength;
        if (outBytes > max) fail(new SshOutputTooLargeError(`local command wrote more than ${max} bytes`));
        else out.push(chunk);
      });
      child.stderr.on("data", (chunk: Buffer) => {
        errBytes += chunk.byteLength;
        if (errBytes > max) fail(new SshOutputTooLargeError(`local command wrote more than ${max} bytes`));
        else err.push(chunk);
      });
      child.on("error", (error) =>
        fail(new SshCommandError(`cannot run ${file}: ${error.message}`, { cause: error })),
      );
      child.on("close", (code, signal) => {
        clearTimeout(timer);
        options.signal?.removeEventListener("abort", onAbort);
        this.#children.delete(child);
        if (failure !== undefined) return reject(failure);
        resolve({
          exitCode: code,
          signal: signal === null ? null : signal.replace(/^SIG/, ""),
          stdout: Buffer.concat(out).toString("utf8"),
          stderr: Buffer.concat(err).toString("utf8"),
        });
      });
      child.stdin.on("error", () => undefined);
      child.stdin.end(options.stdin ?? "");
    });
  }

  async spawn(command: string, options: SpawnOptions): Promise<RemoteProcess> {
    options.signal?.throwIfAborted();
    const [file, args] = argv(command, options.become);
    const child = spawn(file, args, { detached: true, stdio: ["pipe", "pipe", "pipe"] });
    this.#children.add(child);
    await new Promise<void>((resolve, reject) => {
      child.once("spawn", resolve);
      child.once("error", (error) =>
        reject(new SshCommandError(`cannot run ${file}: ${error.message}`, { cause: error })),
      );
    });
    const exited = new Promise<{ exitCode: number | null; signal: string | null }>((resolve) =>
      child.once("close", (code, signal) => {
        this.#children.delete(child);
        resolve({ exitCode: code, signal: signal === null ? null : signal.replace(/^SIG/, "") });
      }),
    );
    options.signal?.addEventListener("abort", () => stopChild(child), { once: true });
    child.stdin.on("error", () => undefined);
    return {
      stdin: child.stdin,
      stdout: child.stdout,
      stderr: child.stderr,
      exited,
      kill: (signal = "TERM") => stopChild(child, `SIG${signal}`),
    };
  }

  async createRunDir(run: string, options?: FileOpOptions): Promise<string> {
    options?.signal?.throwIfAborted();
    const dir = insideRunRoot(this.runRoot, posix.join(this.runRoot, checkRunName(run)));
    await mkdir(this.runRoot, { recursive: true, mode: 0o755 });
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await chmod(dir, 0o700);
    return dir;
  }

  async mkdir(remotePath: string, options?: FileOpOptions & { mode?: number }): Promise<void> {
    options?.signal?.throwIfAborted();
    await mkdir(insideRunRoot(this.runRoot, remotePath), { recursive: true, mode: options?.mode ?? 0o700 });
  }

  async put(source: string | Buffer, remotePath: string, options: PutOptions): Promise<PutResult> {
    options.signal?.throwIfAborted();
    const path = insideRunRoot(this.runRoot, remotePath);
    let content: Buffer;
    try {
      content = typeof source === "string" ? await readFile(source) : source;
    } catch (cause) {
      throw new SshUploadError(`cannot read ${String(source)}`, { cause });
    }
    const sha256 = createHash("sha256").update(content).digest("hex");
    if (options.sha256 !== undefined && options.sha256 !== sha256)
      throw new SshHashMismatchError(
        `${remotePath}: content has SHA-256 ${sha256}, expected ${options.sha256}`,
      );
    await writeFile(path, content, { mode: options.mode });
    await chmod(path, options.mode);
    // Read back, as the SSH transport checks on the target.
    const written = createHash("sha256")
      .update(await readFile(path))
      .digest("hex");
    if (written !== sha256) throw new SshHashMismatchError(`${remotePath}: written content differs`);
    return { bytes: content.byteLength, sha256 };
  }

  async remove(remotePath: string, options?: FileOpOptions & { become?: boolean }): Promise<void> {
    options?.signal?.throwIfAborted();
    await rm(insideRunRoot(this.runRoot, remotePath), { recursive: true, force: true });
  }

  close(): Promise<void> {
    for (const child of this.#children) stopChild(child);
    return Promise.resolve();
  }
}
