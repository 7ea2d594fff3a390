/**
 * Windows targets for tests: a container of the `windows-standin` image, Samba 4.17 standing in for
 * a Windows server's file sharing (`ADMIN$`, `C$` and `IPC$`, NTLMv2 only) with nmbd answering NetBIOS
 * name queries. By default it accepts SMB 3.1.1 only with signing mandatory, as strict as Windows 11
 * 24H2 or stricter; each container may instead force other dialects, optional signing, encryption,
 * or the NetBIOS session service (139) alone. It returns once smbd has accepted an authenticated
 * session from the host's `smbclient`, with client options matching that policy, and nmbd has
 * resolved the server's NetBIOS name: a published port is not a server that answers.
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

/** The SMB2 dialects by Samba's names, oldest first (MS-SMB2 2.2.3: 0x0202, 0x0210, 0x0300, 0x0302, 0x0311). */
export const smbDialects = ["SMB2_02", "SMB2_10", "SMB3_00", "SMB3_02", "SMB3_11"] as const;
export type SmbDialect = (typeof smbDialects)[number];

/**
 * What the stand-in's smbd accepts. Each field is an smb.conf parameter of Samba 4.17 written by the
 * image's entrypoint, which refuses any other value.
 */
export interface StandinPolicy {
  /** `server min protocol`: the oldest dialect served. */
  minProtocol: SmbDialect;
  /** `server max protocol`: the newest dialect served; a client offering it gets it. */
  maxProtocol: SmbDialect;
  /** `server signing`: `mandatory` refuses unsigned requests after the session setup; `auto` signs when the client does. */
  signing: "mandatory" | "auto";
  /**
   * `server smb encrypt` (SMB 3.x only): `off` does not even negotiate encryption; `if_required`
   * (Samba's default) negotiates it but encrypts only for a client that asks; `desired` encrypts
   * every session of a client that can; `required` refuses every client that cannot.
   */
  encrypt: "off" | "if_required" | "desired" | "required";
  /** `smb ports`: `445+139`, or `139` alone (the NetBIOS session service, RFC 1002), 445 closed. */
  ports: "445+139" | "139";
}

/** Today's Windows at its strictest: SMB 3.1.1 only, signing mandatory, no encryption unless asked. */
export const defaultStandinPolicy: Readonly<StandinPolicy> = Object.freeze({
  minProtocol: "SMB3_11",
  maxProtocol: "SMB3_11",
  signing: "mandatory",
  encrypt: "if_required",
  ports: "445+139",
});

export interface WindowsStandin {
  /** Where the published SMB ports are: always `127.0.0.1`. */
  host: string;
  /**
   * The host port mapped to the container's port 445. With `policy.ports` `139` the mapping still
   * exists but nothing listens behind it (`address:445` refuses connections).
   */
  port: number;
  /**
   * The host port mapped to the container's port 139, the NetBIOS session service. smbd there
   * serves a client that opens with a session request (RFC 1002 4.3.2) and one that does not; a
   * client that sends the request only when the port number is 139 (smbclient) reaches the real
   * thing at `address`, port 139.
   */
  port139: number;
  /** The container's address on the engine's bridge: NetBIOS (137/udp, 139) is reached there. */
  address: string;
  /** What smbd accepts: the options given, defaults filled in. */
  policy: Readonly<StandinPolicy>;
  /** smbclient `--option=` arguments matching `policy`: the ones the readiness probe used. */
  smbclientOptions: readonly string[];
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

export interface WindowsStandinOptions extends Partial<StandinPolicy> {
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
 * smbclient options for a client matching `policy`: the same dialect range, signing required where
 * the server requires it (including on IPC$), and encryption as the server has it.
 */
export function smbclientOptionsFor(policy: Readonly<StandinPolicy>): string[] {
  const signing = policy.signing === "mandatory" ? "required" : "if_required";
  const options = [
    `--option=client min protocol=${policy.minProtocol}`,
    `--option=client max protocol=${policy.maxProtocol}`,
    `--option=client signing=${signing}`,
    `--option=client ipc signing=${signing}`,
  ];
  // if_required is smbclient's default as well as the server's: nothing to say.
  if (policy.encrypt !== "if_required") options.push(`--option=client smb encrypt=${policy.encrypt}`);
  return options;
}

/**
 * smbclient options for the strictest client, matching the default stand-in: SMB 3.1.1 and nothing
 * else, signing required on every connection including IPC$.
 */
export const strictSmbclientOptions: readonly string[] = Object.freeze(
  smbclientOptionsFor(defaultStandinPolicy),
);

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

/** The policy with defaults filled in; throws on a value or a combination smbd cannot serve. */
function resolvePolicy(options: Partial<StandinPolicy>): StandinPolicy {
  const policy: StandinPolicy = { ...defaultStandinPolicy };
  for (const key of Object.keys(defaultStandinPolicy) as (keyof StandinPolicy)[]) {
    if (options[key] !== undefined) Object.assign(policy, { [key]: options[key] });
  }
  const allowed: Record<keyof StandinPolicy, readonly string[]> = {
    minProtocol: smbDialects,
    maxProtocol: smbDialects,
    signing: ["mandatory", "auto"],
    encrypt: ["off", "if_required", "desired", "required"],
    ports: ["445+139", "139"],
  };
  for (const [key, values] of Object.entries(allowed)) {
    const value = policy[key as keyof StandinPolicy];
    if (!values.includes(value)) {
      throw new Error(`windows-standin ${key} ${JSON.stringify(value)}: one of ${values.join(", ")}`);
    }
  }
  const rank = (d: SmbDialect): number => smbDialects.indexOf(d);
  if (rank(policy.minProtocol) > rank(policy.maxProtocol)) {
    throw new Error(
      `windows-standin minProtocol ${policy.minProtocol} is above maxProtocol ${policy.maxProtocol}`,
    );
  }
  // Encryption needs a 3.x dialect (MS-SMB2 3.3.5.5): smbd would deny every session setup.
  if (policy.encrypt === "required" && rank(policy.maxProtocol) < rank("SMB3_00")) {
    throw new Error(
      `windows-standin encrypt "required" needs maxProtocol SMB3_00 or later, not ${policy.maxProtocol}`,
    );
  }
  return policy;
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

/** Where the probe's smbclient connects: `-I` given, smbclient still calls the server by its name. */
interface ProbeTarget {
  /** `//<server>/IPC$`: on 139 the NetBIOS name smbclient calls in its session request. */
  server: string;
  ip: string;
  port: number;
}

/** One session with a tree connect to IPC$; throws with smbclient's own words. */
async function probeSmb(
  target: ProbeTarget,
  options: readonly string[],
  authFile: string,
  signal: AbortSignal,
): Promise<void> {
  const args = [
    `//${target.server}/IPC$`,
    "-I",
    target.ip,
    "-p",
    String(target.port),
    "-A",
    authFile,
    ...options,
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
 *
 * // SMB 2.1 at most, signing optional, only the NetBIOS session service:
 * const old = await startWindowsStandin({ maxProtocol: "SMB2_10", minProtocol: "SMB2_02", signing: "auto", ports: "139" });
 * // smbclient //WINTARGET/ADMIN$ -I old.address -p 139 ...old.smbclientOptions
 */
export async function startWindowsStandin(options: WindowsStandinOptions = {}): Promise<WindowsStandin> {
  const t0 = performance.now();
  const netbiosName = checkNetbiosName("NetBIOS name", options.netbiosName ?? "WINTARGET");
  const workgroup = checkNetbiosName("workgroup", options.workgroup ?? "WORKGROUP");
  const policy = Object.freeze(resolvePolicy(options));
  const smbclientOptions = Object.freeze(smbclientOptionsFor(policy));
  const password = newPassword();

  const tc = await startContainer({
    fixture: "windows-standin",
    image: "windows-standin",
    ports: [445, 139, "137/udp"],
    env: {
      SUMAC_NETBIOS_NAME: netbiosName,
      SUMAC_WORKGROUP: workgroup,
      SUMAC_SMB_USER: smbUser,
      SUMAC_SMB_MIN_PROTOCOL: policy.minProtocol,
      SUMAC_SMB_MAX_PROTOCOL: policy.maxProtocol,
      SUMAC_SMB_SIGNING: policy.signing,
      SUMAC_SMB_ENCRYPT: policy.encrypt,
      SUMAC_SMB_PORTS: policy.ports,
    },
    files: [{ content: `${password}\n`, target: passwordFile }],
    // Logged once the entrypoint has set the password and smbd runs; the probes below are the check.
    waitForLog: /smbd version .* started/,
    startupTimeoutMs: 30_000,
  });
  const host = "127.0.0.1";
  const port = tc.container.getMappedPort(445);
  const port139 = tc.container.getMappedPort(139);
  const exit = watchExit(tc.container.getId());
  // Once one probe fails or the container dies, the other stops polling a dead container.
  const giveUp = new AbortController();
  const loops: Promise<unknown>[] = [];
  try {
    const { address } = tc;
    const readyTimeoutMs = options.readyTimeoutMs ?? 30_000;
    const credentials = { user: smbUser, password, domain: workgroup };
    // On 139 smbclient sends a NetBIOS session request only when the port is 139 itself, so it goes
    // to the container's address rather than a mapped port.
    const target: ProbeTarget =
      policy.ports === "139"
        ? { server: netbiosName, ip: address, port: 139 }
        : { server: host, ip: host, port };
    const range =
      policy.minProtocol === policy.maxProtocol
        ? policy.maxProtocol
        : `${policy.minProtocol}-${policy.maxProtocol}`;
    loops.push(
      withAuthFile(credentials, (authFile) =>
        waitUntil(
          `smbd (${target.ip}:${target.port}: ${range}, signing ${policy.signing}, encrypt ${policy.encrypt}, user ${smbUser})`,
          (signal) => probeSmb(target, smbclientOptions, authFile, signal),
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
      port139,
      address,
      policy,
      smbclientOptions,
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
