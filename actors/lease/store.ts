/**
 * How the lease service's state lives in the Bus KV (docs/port-leases.md "Persistence"): one key
 * per leased port (`lease.<host>.<port>`, its `Lease`) and per busy port (`busy.<host>.<port>`, its
 * `BusyPort`), the host in base64url since KV keys allow only `[A-Za-z0-9_=-]` tokens, plus
 * `counters`. A change writes or deletes exactly the keys of the ports it touched, each value a few
 * hundred bytes encoded once: bench/lease.ts measured this against blocks of 8 ports per key
 * (fewer KV writes when grants cluster on a host, but every write re-encodes and re-logs the whole
 * block; the embedded configuration ran about 30 % slower with blocks).
 */
import type { KvStore } from "../../bus/bus.ts";
import { BusyPort, Lease, LeaseCounters } from "../../bus/schemas/lease.ts";
import type { LeaseChange, LeaseState, LeaseTable } from "../../machines/port-lease-table.ts";
import { fromJson, toJson } from "./transport.ts";

/** Key of the active instance's lock. */
export const LOCK_KEY = "lock";
const COUNTERS_KEY = "counters";

/** A port whose key must be written: a lease's or a busy port's. */
interface DirtyPort {
  readonly busy: boolean;
  readonly workerHost: string;
  readonly port: number;
}

/** What a batch must write: the ports changed and the conflict count, if it changed. */
export interface PendingWrites {
  readonly ports: Map<string, DirtyPort>;
  conflicts: number | undefined;
}

export function pendingWrites(): PendingWrites {
  return { ports: new Map(), conflicts: undefined };
}

/** Worker host -> its key token; hosts are few, but the cache is bounded all the same. */
const hostTokens = new Map<string, string>();

function hostToken(workerHost: string): string {
  let token = hostTokens.get(workerHost);
  if (token === undefined) {
    if (hostTokens.size >= 10_000) hostTokens.clear();
    hostTokens.set(workerHost, (token = Buffer.from(workerHost).toString("base64url")));
  }
  return token;
}

/** The key of the lease on a port of a worker host. */
export function leaseKey(workerHost: string, port: number): string {
  return `lease.${hostToken(workerHost)}.${port}`;
}

/** The key of a busy port of a worker host. */
export function busyKey(workerHost: string, port: number): string {
  return `busy.${hostToken(workerHost)}.${port}`;
}

/** Notes the ports (and counter) that changes touched. */
export function noteChanges(changes: readonly LeaseChange[], into: PendingWrites): void {
  for (const change of changes) {
    if (change.type === "conflicts") {
      into.conflicts = change.count;
      continue;
    }
    const busy = change.type === "busy" || change.type === "busy-gone";
    const { workerHost, port } = busy ? change.busy : change.lease;
    const key = busy ? busyKey(workerHost, port) : leaseKey(workerHost, port);
    if (!into.ports.has(key)) into.ports.set(key, { busy, workerHost, port });
  }
}

/** Most KV writes or reads in flight at once: pipelined, but bounded. */
const PARALLEL = 256;

/**
 * Writes the current state of the pending ports (read from the table now, so a key carries every
 * change made to it so far; a port that is free now is deleted); resolves once all writes are
 * durable.
 */
export async function writePending(kv: KvStore, table: LeaseTable, pending: PendingWrites): Promise<void> {
  const writes: Promise<unknown>[] = [];
  for (const [key, { busy, workerHost, port }] of pending.ports) {
    const value = busy ? table.busyOn(workerHost, port) : table.leaseOn(workerHost, port);
    writes.push(value === undefined ? kv.delete(key) : kv.put(key, toJson(value)));
    if (writes.length >= PARALLEL) await Promise.all(writes.splice(0));
  }
  if (pending.conflicts !== undefined)
    writes.push(kv.put(COUNTERS_KEY, toJson({ conflicts: pending.conflicts } satisfies LeaseCounters)));
  await Promise.all(writes);
}

/**
 * Reads the persisted state. Values that fail their schema, or that are stored under another
 * port's key, are reported through `onInvalid` and skipped: a corrupt key must not keep the
 * service from starting.
 */
export async function loadState(
  kv: KvStore,
  onInvalid: (key: string, why: string) => void,
): Promise<LeaseState> {
  const read = async (key: string): Promise<unknown> => {
    const entry = await kv.get(key);
    if (entry === undefined) return undefined;
    try {
      return fromJson(entry.value);
    } catch (err) {
      onInvalid(key, String(err));
      return undefined;
    }
  };
  const readAll = async <T extends Lease | BusyPort>(
    prefix: string,
    schema: typeof Lease | typeof BusyPort,
    keyOf: (workerHost: string, port: number) => string,
  ): Promise<T[]> => {
    const out: T[] = [];
    const keys = await kv.keys(`${prefix}.>`);
    for (let i = 0; i < keys.length; i += PARALLEL) {
      await Promise.all(
        keys.slice(i, i + PARALLEL).map(async (key) => {
          const value = await read(key);
          if (value === undefined) return;
          const parsed = schema.safeParse(value);
          if (!parsed.success) return onInvalid(key, parsed.error.message);
          if (keyOf(parsed.data.workerHost, parsed.data.port) !== key)
            return onInvalid(key, `holds port ${parsed.data.port} of ${parsed.data.workerHost}`);
          out.push(parsed.data as T);
        }),
      );
    }
    return out;
  };
  const leases = await readAll<Lease>("lease", Lease, leaseKey);
  const busy = await readAll<BusyPort>("busy", BusyPort, busyKey);
  const counters = LeaseCounters.safeParse(await read(COUNTERS_KEY));
  return { leases, busy, conflicts: counters.success ? counters.data.conflicts : 0 };
}
