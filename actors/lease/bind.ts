/**
 * Leases a port and binds it (docs/port-leases.md "Client"): the only judge of a free port is a
 * real bind, so the holder binds the granted port itself; on EADDRINUSE it reports the conflict
 * (the service marks the port busy for a cool-down) and binds the next grant.
 */
import type { Server } from "node:net";
import type { Lease, LeaseHolder } from "../../bus/schemas/lease.ts";
import type { CallOptions, LeaseClient } from "./client.ts";
import { listenOnce as listenOnceOn } from "../../agent/protocol/port-binding.ts";
import { LeaseBindError, LeaseConflictLimitError } from "./errors.ts";

export interface BindLeasedOptions extends CallOptions {
  readonly range: string;
  readonly holder: LeaseHolder;
  /** Address to listen on, e.g. `0.0.0.0` or `127.0.0.1`. */
  readonly host: string;
  /** The server, listened on again after each EADDRINUSE, or a factory called for each attempt. */
  readonly server: Server | (() => Server);
  readonly leaseMs?: number;
  /** Deadline of each bind; default 5 s. */
  readonly bindTimeoutMs?: number;
  /** Conflicts in a row before giving up; default 64. */
  readonly maxConflicts?: number;
}

export interface LeasedBinding {
  readonly lease: Lease;
  readonly server: Server;
  /** Ports found taken on the way, in the order granted (each reported to the service). */
  readonly conflicts: readonly number[];
}

/**
 * @example
 * const { lease, server } = await bindLeased(client, {
 *   range: "callback", holder: { run, target }, host: "0.0.0.0", server: createServer(onConnection),
 * });
 * // ... and at the end of the target:
 * server.close(); await client.release(lease.leaseId);
 */
export async function bindLeased(client: LeaseClient, options: BindLeasedOptions): Promise<LeasedBinding> {
  const calls: CallOptions = {
    ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
  };
  const maxConflicts = options.maxConflicts ?? 64;
  const conflicts: number[] = [];
  let lease = await client.acquire(options.range, options.holder, {
    ...calls,
    ...(options.leaseMs !== undefined ? { leaseMs: options.leaseMs } : {}),
  });
  for (;;) {
    const server = typeof options.server === "function" ? options.server() : options.server;
    let outcome: "bound" | "busy";
    try {
      outcome = await listenOnce(server, options.host, lease.port, options.bindTimeoutMs ?? 5_000);
    } catch (err) {
      await client.release(lease.leaseId, calls).catch(() => undefined);
      throw err;
    }
    if (outcome === "bound") return { lease, server, conflicts };
    if (typeof options.server === "function") server.close();
    conflicts.push(lease.port);
    // Reported even when giving up, so that the service (and every other holder) skips the port.
    lease = await client.reportConflict(lease.leaseId, calls);
    if (conflicts.length >= maxConflicts) {
      await client.release(lease.leaseId, calls).catch(() => undefined);
      throw new LeaseConflictLimitError(
        `${conflicts.length} granted ports in a row were taken on ${options.host}`,
        conflicts,
      );
    }
  }
}

/** One listen (agent/protocol/port-binding.ts), its failures as LeaseBindError. */
async function listenOnce(
  server: Server,
  host: string,
  port: number,
  timeoutMs: number,
): Promise<"bound" | "busy"> {
  try {
    return await listenOnceOn(server, host, port, timeoutMs);
  } catch (error) {
    // The cause stays the system error (EADDRNOTAVAIL, ...) where there is one.
    throw new LeaseBindError((error as Error).message, { cause: (error as Error).cause ?? error });
  }
}
