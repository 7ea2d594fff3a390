/**
 * Choosing and binding the agent's port (DESIGN.md "Ports"): the configured base (62286) or, when a
 * bind fails with EADDRINUSE, the next one, with no fixed upper limit besides 65535; or, with the
 * `random` strategy, a random free port in a window [base, base + window) so that a scanner cannot
 * predict and occupy it. The ports found busy are returned, so the workstation's port-lease actor
 * can learn of them. Every bind has a deadline.
 *
 * The only judge of "free" is a real bind: probing first and binding later would race.
 */
import { withDeadline } from "../../base/deadline.ts";
import { errorClass } from "../../base/errors.ts";
import { randomInt } from "node:crypto";
import type { Server } from "node:net";

/** The agent's base port on a target (HP SUM's 62286). */
export const DEFAULT_AGENT_PORT = 62286;
/** Width of the random window above the base. */
export const DEFAULT_RANDOM_WINDOW = 1000;
/** Deadline of one bind attempt. */
export const DEFAULT_BIND_TIMEOUT_MS = 5_000;
const MAX_PORT = 65535;

/** `next`: base, base + 1, ...; `random`: random untried ports of [base, base + window). */
export type PortStrategy = "next" | "random";

export interface PortBindingOptions {
  /** Address to listen on, e.g. `0.0.0.0` or `127.0.0.1`. */
  readonly host: string;
  /** Default {@link DEFAULT_AGENT_PORT}. */
  readonly basePort?: number;
  /** Default `next`. */
  readonly strategy?: PortStrategy;
  /**
   * Most binds to try. `next`: default unlimited (up to port 65535); `random`: default the whole
   * window, never more.
   */
  readonly maxAttempts?: number;
  /** `random` only: the window's width, default {@link DEFAULT_RANDOM_WINDOW}; clipped at 65535. */
  readonly window?: number;
  /** Deadline of each bind, default {@link DEFAULT_BIND_TIMEOUT_MS}. */
  readonly bindTimeoutMs?: number;
  /** `random` only: uniform integer in [0, n). Default `crypto.randomInt` (unpredictable). */
  readonly randomBelow?: (n: number) => number;
}

/** Where the server listens, and the ports a bind found taken on the way, in the order tried. */
export interface PortBinding {
  readonly port: number;
  readonly busy: readonly number[];
}

/** Every port the strategy allowed was in use; `busy` lists them. */
export class PortsExhaustedError extends errorClass("PORTS_EXHAUSTED") {
  readonly busy: readonly number[];

  constructor(message: string, busy: readonly number[]) {
    super(message);
    this.busy = busy;
  }
}

/** A bind did not complete within its deadline. */
export class PortBindTimeoutError extends errorClass("PORT_BIND_TIMEOUT") {}

/** A bind failed for a reason other than a busy port (EACCES, EADDRNOTAVAIL, ...); `cause` has it. */
export class PortBindFailedError extends errorClass("PORT_BIND_FAILED") {}

/** The ports to try, in order; validated options. Pure, so the order is testable without sockets. */
export function* candidatePorts(options: PortBindingOptions): Generator<number, void, undefined> {
  const base = options.basePort ?? DEFAULT_AGENT_PORT;
  if (!Number.isSafeInteger(base) || base < 1 || base > MAX_PORT)
    throw new RangeError(`basePort must be an integer from 1 to ${MAX_PORT}, not ${base}`);
  const maxAttempts = options.maxAttempts ?? Infinity;
  if (!(maxAttempts >= 1)) throw new RangeError("maxAttempts must be at least 1");
  if ((options.strategy ?? "next") === "next") {
    for (let port = base, n = 0; port <= MAX_PORT && n < maxAttempts; port++, n++) yield port;
    return;
  }
  const window = options.window ?? DEFAULT_RANDOM_WINDOW;
  if (!Number.isSafeInteger(window) || window < 1) throw new RangeError("window must be a positive integer");
  const size = Math.min(window, MAX_PORT + 1 - base);
  const randomBelow = options.randomBelow ?? randomInt;
  // A lazy Fisher-Yates shuffle of the window's offsets: no port is tried twice, every one can be.
  const offsets = new Map<number, number>();
  for (let i = 0; i < size && i < maxAttempts; i++) {
    const j = i + randomBelow(size - i);
    const picked = offsets.get(j) ?? j;
    offsets.set(j, offsets.get(i) ?? i);
    yield base + picked;
  }
}

/**
 * Binds a server by the strategy and resolves with its port and the ports found busy.
 *
 * `server` is either one server, listened on again after each EADDRINUSE, or a factory called for
 * each attempt (a failed attempt's server is closed).
 *
 * @example
 * const { port, busy } = await bindPort(httpsServer, { host: "0.0.0.0", strategy: "random" });
 * console.log(JSON.stringify({ listening: port, busy }));
 */
export async function bindPort(
  server: Server | (() => Server),
  options: PortBindingOptions,
): Promise<PortBinding & { readonly server: Server }> {
  const timeoutMs = options.bindTimeoutMs ?? DEFAULT_BIND_TIMEOUT_MS;
  const busy: number[] = [];
  for (const port of candidatePorts(options)) {
    const candidate = typeof server === "function" ? server() : server;
    const outcome = await listenOnce(candidate, options.host, port, timeoutMs);
    if (outcome === "bound") return { port, busy, server: candidate };
    busy.push(port);
    if (typeof server === "function") candidate.close();
  }
  const base = options.basePort ?? DEFAULT_AGENT_PORT;
  const range =
    (options.strategy ?? "next") === "random"
      ? `the window [${base}, ${Math.min(base + (options.window ?? DEFAULT_RANDOM_WINDOW), MAX_PORT + 1)})`
      : `ports from ${base}`;
  throw new PortsExhaustedError(
    `no free port on ${options.host} in ${range} after ${busy.length} attempts`,
    busy,
  );
}

/**
 * The same strategy in the shape of `agent/server/listen.ts`'s `BindListener`; `onBusy` hears of the ports
 * found taken before the one bound.
 */
export function bindByStrategy(
  options: PortBindingOptions,
  onBusy?: (busy: readonly number[]) => void,
): (server: Server) => Promise<number> {
  return async (server) => {
    const bound = await bindPort(server, options);
    if (bound.busy.length > 0) onBusy?.(bound.busy);
    return bound.port;
  };
}

/**
 * One exclusive listen: "bound", "busy" on EADDRINUSE, or a PortBindFailedError for anything else
 * or a PortBindTimeoutError at the deadline. Also used by the lease client's `bindLeased`.
 */
export function listenOnce(
  server: Server,
  host: string,
  port: number,
  timeoutMs: number,
): Promise<"bound" | "busy"> {
  // Made when the timer is armed, so the stack names this bind (STYLE.md item 7).
  const timeout = new PortBindTimeoutError(`binding ${host}:${port} took longer than ${timeoutMs} ms`);
  const bind = (stop: AbortSignal) =>
    new Promise<"bound" | "busy">((resolve, reject) => {
      const detach = (): void => {
        server.off("error", onError);
        server.off("listening", onListening);
      };
      const onError = (error: NodeJS.ErrnoException): void => {
        detach();
        if (error.code === "EADDRINUSE") resolve("busy");
        else
          reject(new PortBindFailedError(`cannot bind ${host}:${port}: ${error.message}`, { cause: error }));
      };
      const onListening = (): void => {
        detach();
        resolve("bound");
      };
      stop.addEventListener(
        "abort",
        () => {
          detach();
          server.close();
        },
        { once: true },
      );
      server.once("error", onError);
      server.once("listening", onListening);
      // exclusive: in a cluster worker, a port held by a sibling must count as busy, not be shared.
      server.listen({ host, port, exclusive: true });
    });
  return withDeadline(
    { ms: timeoutMs, timeout, dispose: (outcome) => void (outcome === "bound" && server.close()) },
    bind,
  );
}
