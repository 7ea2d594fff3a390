/**
 * Starting a test bed container: the image is built on demand, the container is labelled for the
 * sweep, secrets go in as files before it starts (never argv, env or the image), and the fixture's
 * own readiness check, one that really talks to the service, decides when it is up.
 */
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { promisify } from "node:util";
import { ensureImage, testLabels, type ImageName } from "./engine.ts";
import { GenericContainer, Wait, type StartedTestContainer } from "./testcontainers.ts";

const run = promisify(execFile);

/** What a command run inside a container returned. */
export interface ExecOutcome {
  exitCode: number;
  stdout: string;
  stderr: string;
}

export interface ContainerSpec {
  /** Fixture name, recorded in a label so leftovers can be traced to the test that made them. */
  fixture: string;
  image: ImageName;
  /** Ports to publish on the host; `"137/udp"` style strings publish UDP ports. */
  ports?: (number | `${number}/${"tcp" | "udp"}`)[];
  env?: Record<string, string>;
  /** Files copied in before the container starts: the way secrets reach it (mode 0600). */
  files?: { content: string; target: string; mode?: number }[];
  /** A log line that says the service started; the fixture's readiness probe comes after it. */
  waitForLog?: RegExp | string;
  /** Linux capabilities to add (e.g. NET_ADMIN for nftables inside the container). */
  capAdd?: string[];
  /** How long the container may take to start and log `waitForLog` (default 60 s). */
  startupTimeoutMs?: number;
}

/** A started test container with the few things every fixture needs of it. */
export interface TestContainer {
  readonly container: StartedTestContainer;
  /** The image tag, for messages. */
  readonly image: string;
  /** The container's address on the engine's bridge (NetBIOS, UDP and peer-to-peer tests). */
  readonly address: string;
  /** Runs `sh -c cmd` inside the container through the engine, failing after `timeoutMs`. */
  readonly exec: (cmd: string, timeoutMs?: number) => Promise<ExecOutcome>;
  /** The last `tail` lines of its log (stdout and stderr as one stream), for error messages. */
  readonly logs: (tail?: number) => Promise<string>;
  readonly stop: () => Promise<void>;
  /**
   * For a fixture whose readiness check failed: stops the container and throws one error that
   * says what did not answer, why, and how the container's log ends.
   */
  readonly failStart: (err: unknown) => Promise<never>;
}

/** Rejects after `ms` with an error made now, so its stack names the operation that timed out. */
export function deadline<T>(what: string, ms: number, p: Promise<T>): Promise<T> {
  const timeout = new Error(`${what} did not finish within ${ms} ms`);
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(timeout), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** A password for one test container: base64url has no blank, ':' or newline to escape. */
export function newPassword(): string {
  return randomBytes(18).toString("base64url");
}

/** Starts a container of the test bed; the caller stops it (`await c.stop()`) in an `after` hook. */
export async function startContainer(spec: ContainerSpec): Promise<TestContainer> {
  const image = await ensureImage(spec.image);
  let c = new GenericContainer(image)
    .withLabels(testLabels(spec.fixture))
    .withStartupTimeout(spec.startupTimeoutMs ?? 60_000);
  if (spec.ports?.length) c = c.withExposedPorts(...spec.ports);
  if (spec.env) c = c.withEnvironment(spec.env);
  if (spec.files?.length) c = c.withCopyContentToContainer(spec.files.map((f) => ({ mode: 0o600, ...f })));
  if (spec.waitForLog !== undefined) c = c.withWaitStrategy(Wait.forLogMessage(spec.waitForLog));
  if (spec.capAdd?.length) c = c.withAddedCapabilities(...spec.capAdd);
  let started: StartedTestContainer;
  try {
    // On a failed start (including the log wait) testcontainers removes the container itself.
    started = await c.start();
  } catch (err) {
    throw new Error(`${spec.fixture} (${image}) did not start: ${(err as Error).message}`, { cause: err });
  }
  const address = started.getIpAddress(started.getNetworkNames()[0] ?? "bridge");
  const stop = async (): Promise<void> => {
    await started.stop({ timeout: 5_000 });
  };
  const logs = async (tail = 20): Promise<string> => {
    try {
      const r = await run(
        "sh",
        ["-c", 'docker logs --tail "$1" "$2" 2>&1', "sh", String(tail), started.getId()],
        {
          timeout: 10_000,
          maxBuffer: 16 << 20,
        },
      );
      return r.stdout.trim();
    } catch (err) {
      return `(no log: ${(err as Error).message})`;
    }
  };
  return {
    container: started,
    image,
    address,
    exec: async (cmd, timeoutMs = 30_000) => {
      const r = await deadline(`exec '${cmd}' in ${image}`, timeoutMs, started.exec(["sh", "-c", cmd]));
      return { exitCode: r.exitCode, stdout: r.stdout, stderr: r.stderr };
    },
    logs,
    stop,
    failStart: async (err) => {
      const tail = await logs();
      await started.stop({ timeout: 2_000 }).catch(() => undefined);
      const { message } = err as Error;
      throw new Error(`${spec.fixture} (${image}): ${message}; container log:\n${tail}`, { cause: err });
    },
  };
}

/**
 * Polls `check` until it resolves, or fails after `timeoutMs`. A published port accepting TCP is
 * not a server that answers, so fixtures poll a real client. The error names the last refusal of
 * an attempt that ran its course: the final attempt is usually cut short by the deadline and
 * would only say that. `giveUp` ends the loop early (the container died meanwhile).
 */
export async function waitUntil(
  what: string,
  check: (signal: AbortSignal) => Promise<unknown>,
  timeoutMs = 30_000,
  intervalMs = 100,
  giveUp?: AbortSignal,
): Promise<void> {
  const deadlineAt = Date.now() + timeoutMs;
  let refusal: unknown;
  let last: unknown;
  while (Date.now() < deadlineAt && !giveUp?.aborted) {
    const own = AbortSignal.timeout(Math.max(1, Math.min(5_000, deadlineAt - Date.now())));
    const attempt = giveUp ? AbortSignal.any([own, giveUp]) : own;
    try {
      await check(attempt);
      return;
    } catch (err) {
      last = err;
      if (!attempt.aborted) refusal = err;
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  const why = refusal ?? last;
  const said = why instanceof Error ? `: ${why.message}` : "";
  const verdict = giveUp?.aborted ? "was given up" : `did not become ready within ${timeoutMs} ms`;
  throw new Error(`${what} ${verdict}${said}`, { cause: why });
}
