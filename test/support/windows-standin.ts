/**
 * Windows targets for tests: a container of the `windows-standin` image, Samba 4.17 standing in for
 * a Windows server's file sharing (`ADMIN$` and `IPC$`, SMB 3.1.1 only, signing mandatory, NTLMv2
 * only) with nmbd answering NetBIOS name queries. It returns once smbd has accepted an
 * authenticated, signed SMB 3.1.1 session from the host's `smbclient` and nmbd has resolved the
 * server's NetBIOS name: a published port is not a server that answers.
 *
 * The password is made here for each container and copied in before start (mode 0600); the
 * entrypoint hands it to `smbpasswd` on stdin and deletes it. It never reaches argv or the image.
 * The host needs Debian's `smbclient` package (which brings `nmblookup`).
 */
import { spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { newPassword, startContainer, waitUntil, type ExecOutcome } from "./container.ts";

/** What a command returned: its exit code (null when killed by a signal) and its output. */
export interface ToolOutcome {
  exitCode: number | null;
  stdout: string;
  stderr: string;
}

export interface WindowsStandin {
  /** Where the published SMB port is: always `127.0.0.1`. */
  host: string;
  /** The host port mapped to the container's port 445. */
  port: number;
  /** The container's address on the engine's bridge: NetBIOS (137/udp, 139) is reached there. */
  address: string;
  /** The server's NetBIOS name, upper case (as nmbd registers it). */
  netbiosName: string;
  workgroup: string;
  /** The SMB account, an `admin user` of the server: it writes into `ADMIN$` as root. */
  user: string;
  password: string;
  /** Time from the call until smbd and nmbd both answered. */
  startedInMs: number;
  /** Runs `sh -c cmd` inside the container through the engine (not over SMB), for assertions. */
  exec(cmd: string, timeoutMs?: number): Promise<ExecOutcome>;
  /** Stops and removes the container. */
  stop(): Promise<void>;
}

export interface WindowsStandinOptions {
  /** 1 to 15 letters, digits or '-' (default `WINTARGET`). */
  netbiosName?: string;
  /** Same rules (default `WORKGROUP`, Windows' own default). */
  workgroup?: string;
  /** How long smbd and nmbd may take to answer after the container starts (default 30 s). */
  readyTimeoutMs?: number;
}

/** The account the image creates (see test/targets/windows-standin/Dockerfile). */
const smbUser = "sumac";
const passwordFile = "/etc/sumac-standin/password";

/**
 * smbclient options for the strictest client: SMB 3.1.1 and nothing else, signing required on
 * every connection including IPC$.
 */
export const strictSmbclientOptions: readonly string[] = [
  "--option=client min protocol=SMB3_11",
  "--option=client max protocol=SMB3_11",
  "--option=client signing=required",
  "--option=client ipc signing=required",
];

const installHint: Record<string, string> = {
  smbclient: "install Debian's smbclient package",
  nmblookup: "install Debian's smbclient package (it brings samba-common-bin)",
  "/usr/bin/python3": "install Debian's python3-impacket package",
};

/**
 * Runs a program without a shell, feeding `input` on stdin; resolves with its exit code and output
 * whatever the code. Rejects when it cannot start, or when `timeoutMs` passes or `signal` aborts
 * (the program is killed).
 */
export function runTool(
  file: string,
  args: readonly string[],
  options: { timeoutMs: number; signal?: AbortSignal; input?: string },
): Promise<ToolOutcome> {
  const timeout = new Error(`${file} ${args.join(" ")} did not finish within ${options.timeoutMs} ms`);
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    const finish = (err?: Error): void => {
      clearTimeout(timer);
      options.signal?.removeEventListener("abort", onAbort);
      if (err) reject(err);
    };
    const onAbort = (): void => {
      child.kill("SIGKILL");
      finish(new Error(`${file} was cut short`, { cause: options.signal?.reason }));
    };
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      finish(timeout);
    }, options.timeoutMs);
    if (options.signal?.aborted) onAbort();
    else options.signal?.addEventListener("abort", onAbort, { once: true });
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", (err: NodeJS.ErrnoException) => {
      const hint = installHint[file];
      finish(
        err.code === "ENOENT" && hint ? new Error(`${file} is not on PATH: ${hint}`, { cause: err }) : err,
      );
    });
    child.on("close", (exitCode) => {
      finish();
      resolve({ exitCode, stdout, stderr });
    });
    child.stdin.on("error", () => {}); // a program that exits without reading its input
    child.stdin.end(options.input ?? "");
  });
}

/**
 * Calls `use` with the path of an smbclient authentication file (`-A`), mode 0600 in a private
 * temporary directory that is removed afterwards: the password never goes into argv.
 */
export async function withAuthFile<T>(
  credentials: { user: string; password: string; domain: string },
  use: (path: string) => Promise<T>,
): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), "sumac-smb-"));
  try {
    const path = join(dir, "auth");
    const text = `username = ${credentials.user}\npassword = ${credentials.password}\ndomain = ${credentials.domain}\n`;
    await writeFile(path, text, { mode: 0o600 });
    return await use(path);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function checkNetbiosName(what: string, name: string): string {
  if (!/^[A-Za-z0-9-]{1,15}$/.test(name)) {
    throw new Error(`${what} ${JSON.stringify(name)}: 1 to 15 letters, digits or '-'`);
  }
  return name.toUpperCase();
}

/**
 * Rejects once the container exits (`docker wait`), so that a server that died is reported at
 * once rather than at the readiness deadline. `cancel` ends the watch.
 */
function watchExit(id: string): { exited: Promise<never>; cancel: () => void } {
  const stop = new AbortController();
  const exited = new Promise<never>((_, reject) => {
    const child = spawn("docker", ["wait", id], { stdio: ["ignore", "pipe", "ignore"], signal: stop.signal });
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.on("error", () => {}); // cancelled, or no docker client (startContainer failed before)
    child.on("close", (code) => {
      if (!stop.signal.aborted && code === 0)
        reject(new Error(`the container exited (status ${out.trim()})`));
    });
  });
  exited.catch(() => {}); // observed by the race below; never an unhandled rejection
  return { exited, cancel: () => stop.abort() };
}

/** One signed SMB 3.1.1 session with a tree connect to IPC$; throws with smbclient's own words. */
async function probeSmb(port: number, authFile: string, signal: AbortSignal): Promise<void> {
  const args = [
    "//127.0.0.1/IPC$",
    "-p",
    String(port),
    "-A",
    authFile,
    ...strictSmbclientOptions,
    "-c",
    "exit",
  ];
  const r = await runTool("smbclient", args, { timeoutMs: 10_000, signal });
  if (r.exitCode !== 0)
    throw new Error(`smbclient: ${`${r.stdout}${r.stderr}`.trim() || `exit ${r.exitCode}`}`);
}

/** One NetBIOS name query sent to the container's address; throws unless it answers with it. */
async function probeNmb(address: string, name: string, signal: AbortSignal): Promise<void> {
  const r = await runTool("nmblookup", ["-U", address, name], { timeoutMs: 10_000, signal });
  if (!r.stdout.split("\n").some((line) => line.trim() === `${address} ${name}<00>`)) {
    throw new Error(`nmblookup: ${`${r.stdout}${r.stderr}`.trim() || `exit ${r.exitCode}`}`);
  }
}

/**
 * Starts a `windows-standin` container; the caller stops it in an `after` hook.
 *
 * @example
 * const standin = await startWindowsStandin({ netbiosName: "WINTARGET" });
 * // smbclient //127.0.0.1/ADMIN$ -p standin.port -A <file with standin.user and standin.password>
 * // nmblookup -U standin.address WINTARGET
 */
export async function startWindowsStandin(options: WindowsStandinOptions = {}): Promise<WindowsStandin> {
  const t0 = performance.now();
  const netbiosName = checkNetbiosName("NetBIOS name", options.netbiosName ?? "WINTARGET");
  const workgroup = checkNetbiosName("workgroup", options.workgroup ?? "WORKGROUP");
  const password = newPassword();

  const tc = await startContainer({
    fixture: "windows-standin",
    image: "windows-standin",
    ports: [445, 139, "137/udp"],
    env: { SUMAC_NETBIOS_NAME: netbiosName, SUMAC_WORKGROUP: workgroup, SUMAC_SMB_USER: smbUser },
    files: [{ content: `${password}\n`, target: passwordFile }],
    // Logged once the entrypoint has set the password and smbd runs; the probes below are the check.
    waitForLog: /smbd version .* started/,
    startupTimeoutMs: 30_000,
  });
  const host = "127.0.0.1";
  const port = tc.container.getMappedPort(445);
  const exit = watchExit(tc.container.getId());
  // Once one probe fails or the container dies, the other stops polling a dead container.
  const giveUp = new AbortController();
  const loops: Promise<unknown>[] = [];
  try {
    const { address } = tc;
    const readyTimeoutMs = options.readyTimeoutMs ?? 30_000;
    const credentials = { user: smbUser, password, domain: workgroup };
    loops.push(
      withAuthFile(credentials, (authFile) =>
        waitUntil(
          `smbd (${host}:${port}: SMB3_11, signing required, user ${smbUser})`,
          (signal) => probeSmb(port, authFile, signal),
          readyTimeoutMs,
          100,
          giveUp.signal,
        ),
      ),
      waitUntil(
        `nmbd (NetBIOS name ${netbiosName} at ${address})`,
        (signal) => probeNmb(address, netbiosName, signal),
        readyTimeoutMs,
        100,
        giveUp.signal,
      ),
    );
    await Promise.race([exit.exited, Promise.all(loops)]);
    return {
      host,
      port,
      address,
      netbiosName,
      workgroup,
      user: smbUser,
      password,
      startedInMs: performance.now() - t0,
      exec: tc.exec,
      stop: async () => {
        exit.cancel();
        await tc.stop();
      },
    };
  } catch (err) {
    exit.cancel();
    giveUp.abort();
    await Promise.allSettled(loops);
    return tc.failStart(err);
  }
}
