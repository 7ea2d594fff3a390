/**
 * The `scm-peer` test target: an SMB server with `ADMIN$` and `IPC$` whose `\PIPE\svcctl`
 * creates, starts, stops and deletes services that really run the uploaded program (see
 * test/targets/scm-peer/). Each container gets its own account; the password reaches the server
 * in a 0600 file copied in before start and deleted by the server, and reaches the test client on
 * its stdin, never in argv. The fixture returns once a client has logged in over SMB and bound
 * to svcctl, not when the port merely accepts.
 */
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { fileURLToPath } from "node:url";
import { inCI } from "./engine.ts";
import { newPassword, startContainer, waitUntil, type ExecOutcome } from "./container.ts";

/** The Python with Debian's python3-impacket (pyenv's `python3` on PATH has no impacket). */
export const PYTHON3 = process.env.SUMAC_PYTHON3 ?? "/usr/bin/python3";

const clientScript = fileURLToPath(new URL("./scm-client.py", import.meta.url));
const CREDENTIALS_PATH = "/run/scm-peer/credentials.json";
const ADMIN_DIR = "/windows";

/** Service states (MS-SCMR 2.2.47). */
export const ServiceState = { STOPPED: 1, START_PENDING: 2, STOP_PENDING: 3, RUNNING: 4 } as const;

/** Where and as whom a client logs in. */
export interface ScmTarget {
  host: string;
  port: number;
  user: string;
  password: string;
  domain: string;
}

export interface ScmPeer extends ScmTarget {
  /** The container's address on the engine's bridge. */
  address: string;
  /** The container path that `ADMIN$` (C:\Windows) maps to. */
  adminDir: string;
  /** Runs `sh -c cmd` inside the container, failing after `timeoutMs` (default 10 s). */
  exec(cmd: string, timeoutMs?: number): Promise<ExecOutcome>;
  /** The last `tail` lines of the server's log (one line per RPC call; default 20). */
  logs(tail?: number): Promise<string>;
  startedInMs: number;
  stop(): Promise<void>;
}

/** One step of a scm-client script (see test/support/scm-client.py). */
export type ScmStep =
  | { op: "upload"; path: string; content_b64: string }
  | { op: "open_scm"; as: string; access?: number }
  | {
      op: "create";
      scm: string;
      name: string;
      binary_path: string;
      as: string;
      /** Defaults to the name. */
      display_name?: string;
      start_type?: number;
      access?: number;
    }
  | { op: "open"; scm: string; name: string; as: string; access?: number }
  | { op: "start" | "query" | "stop" | "delete" | "close"; handle: string }
  | { op: "wait"; handle: string; state: number; timeout_ms?: number }
  | { op: "handle"; as: string; hex: string }
  /**
   * REnumServicesStatusW. Without `buf_size`: impacket's own hREnumServicesStatusW (asks the
   * size, then reads), giving `services`. With it: one call with that cbBufSize and
   * `resume_index` (absent or null: a NULL pointer), giving the counts and the buffer's entries.
   */
  | {
      op: "enum";
      scm: string;
      service_type?: number;
      service_state?: number;
      buf_size?: number;
      resume_index?: number | null;
    }
  /** RQueryServiceConfigW: impacket's hRQueryServiceConfigW, or one call with `buf_size`. */
  | { op: "query_config"; handle: string; buf_size?: number };

export interface ServiceStatus {
  type: number;
  state: number;
  controls_accepted: number;
  win32_exit_code: number;
  service_exit_code: number;
}

/** One entry of an REnumServicesStatusW answer (MS-SCMR 2.2.11). */
export interface EnumeratedService {
  name: string;
  display_name: string;
  status: ServiceStatus;
}

/** QUERY_SERVICE_CONFIGW (MS-SCMR 2.2.15) as RQueryServiceConfigW answers it. */
export interface ServiceConfig {
  service_type: number;
  start_type: number;
  error_control: number;
  binary_path: string;
  load_order_group: string;
  tag_id: number;
  dependencies: string;
  start_name: string;
  display_name: string;
}

export interface ScmStepResult {
  op: ScmStep["op"];
  /** The Win32 error code the server returned (0 for success). */
  error_code?: number;
  /** An RPC fault status, when the server faulted instead of answering. */
  fault?: number;
  status?: ServiceStatus;
  timed_out?: boolean;
  /** Bytes uploaded, or the size of an enum's lpBuffer. */
  bytes?: number;
  services?: EnumeratedService[];
  config?: ServiceConfig;
  /** pcbBytesNeeded of enum and query_config. */
  bytes_needed?: number;
  services_returned?: number;
  /** lpResumeIndex as answered; null for a NULL pointer. */
  resume_index?: number | null;
}

export interface ScmClientResult {
  login: { ok: true; dialect: number } | { ok: false; status: number; status_name: string };
  steps: ScmStepResult[];
  /** Set when a step broke the connection or the script. */
  error?: string;
  share_after_failed_login?: { ok: boolean; status?: number };
}

export interface ScmClientOptions {
  /** Overrides the target's password (to try a wrong one). */
  password?: string;
  /** After a refused login, also try to reach ADMIN$ on that session. */
  shareAfterFailedLogin?: boolean;
  /** Deadline for the whole client run (default 30 s). */
  timeoutMs?: number;
  signal?: AbortSignal;
}

/** Raised when the client program cannot run or its output is not what it promises. */
export class ScmClientError extends Error {
  readonly code = "SCM_CLIENT_FAILED";
  override readonly name = "ScmClientError";
}

/**
 * Runs test/support/scm-client.py with one script of steps in one SMB session and svcctl binding.
 *
 * @example
 * const r = await runScmClient(peer, [
 *   { op: "open_scm", as: "scm" },
 *   { op: "open", scm: "scm", name: "sumac", as: "svc" },
 *   { op: "query", handle: "svc" },
 * ]);
 * assert.equal(r.steps[2]?.status?.state, ServiceState.RUNNING);
 */
export function runScmClient(
  target: ScmTarget,
  steps: ScmStep[],
  options: ScmClientOptions = {},
): Promise<ScmClientResult> {
  const timeoutMs = options.timeoutMs ?? 30_000;
  const request = {
    host: target.host,
    port: target.port,
    user: target.user,
    password: options.password ?? target.password,
    domain: target.domain,
    timeout_s: Math.min(10, Math.max(1, timeoutMs / 3_000)),
    deadline_s: Math.max(1, Math.floor(timeoutMs / 1_000) - 1),
    share_after_failed_login: options.shareAfterFailedLogin ?? false,
    steps,
  };
  return new Promise((resolve, reject) => {
    const child = execFile(
      PYTHON3,
      [clientScript],
      { timeout: timeoutMs, killSignal: "SIGKILL", maxBuffer: 4 << 20, signal: options.signal },
      (err, stdout, stderr) => {
        const tail = stderr.trim().split("\n").slice(-3).join(" | ");
        if (err) {
          reject(
            new ScmClientError(`scm-client failed (${err.message.split("\n")[0]}): ${tail}`, { cause: err }),
          );
          return;
        }
        try {
          resolve(JSON.parse(stdout) as ScmClientResult);
        } catch (cause) {
          reject(
            new ScmClientError(`scm-client printed no JSON: ${stdout.slice(0, 200)} ${tail}`, { cause }),
          );
        }
      },
    );
    child.stdin?.end(JSON.stringify(request));
  });
}

/**
 * The reason to skip scm-peer tests for want of the client's Python and impacket, or undefined.
 * In CI that is an error: install Debian's python3-impacket.
 */
export async function scmClientSkipReason(): Promise<string | undefined> {
  const found = await new Promise<boolean>((resolve) => {
    execFile(PYTHON3, ["-c", "import impacket.smbconnection"], { timeout: 20_000 }, (err) => resolve(!err));
  });
  if (found) return undefined;
  const why = `${PYTHON3} cannot import impacket; install Debian's python3-impacket (apt-get install python3-impacket)`;
  if (inCI()) throw new Error(`scm-peer tests cannot run in CI: ${why}`);
  return why;
}

/** Waits until a client logs in and binds to svcctl, then opens and closes the SCM. */
async function waitForSvcctl(target: ScmTarget, timeoutMs: number): Promise<void> {
  await waitUntil(
    `scm-peer (SMB login and svcctl bind at ${target.host}:${target.port})`,
    async (signal) => {
      const r = await runScmClient(
        target,
        [
          { op: "open_scm", as: "scm" },
          { op: "close", handle: "scm" },
        ],
        { signal, timeoutMs: 5_000 },
      );
      if (!r.login.ok) throw new Error(`login refused: ${r.login.status_name}`);
      if (r.error) throw new Error(r.error);
      const bad = r.steps.find((s) => s.error_code !== 0);
      if (bad) throw new Error(`${bad.op} answered ${JSON.stringify(bad)}`);
    },
    timeoutMs,
    100,
  );
}

/** Starts a scm-peer container with a fresh account; the caller stops it in an `after` hook. */
export async function startScmPeer(): Promise<ScmPeer> {
  const t0 = performance.now();
  const user = `sumac${randomBytes(3).toString("hex")}`;
  const password = newPassword();
  const domain = "SCMPEER";
  const tc = await startContainer({
    fixture: "scm-peer",
    image: "scm-peer",
    ports: [445],
    files: [{ content: JSON.stringify({ user, password, domain }), target: CREDENTIALS_PATH }],
    waitForLog: "scm-peer: ready",
  });
  const target: ScmTarget = {
    host: "127.0.0.1",
    port: tc.container.getMappedPort(445),
    user,
    password,
    domain,
  };
  try {
    await waitForSvcctl(target, 30_000);
  } catch (err) {
    return tc.failStart(err);
  }
  return {
    ...target,
    address: tc.address,
    adminDir: ADMIN_DIR,
    exec: (cmd, timeoutMs = 10_000) => tc.exec(cmd, timeoutMs),
    logs: (tail = 20) => tc.logs(tail),
    startedInMs: performance.now() - t0,
    stop: tc.stop,
  };
}
