/**
 * How the lease service's state lives in the Bus KV (docs/port-leases.md "Persistence"): one key
 * per leased port (`lease.<host>.<port>`, its `Lease`) and per busy port (`busy.<host>.<port>`, its
 * `BusyPort`), the host in base64url since KV keys allow only `[A-Za-z0-9_=-]` tokens, plus
 * `counters`. A change writes or deletes exactly the keys of the ports it touched, each value a few
 * hundred bytes encoded once: bench/lease.ts measured this against blocks of 8 ports per key
 * (fewer KV writes when grants cluster on a host, but every write re-encodes and re-logs the whole
 * block; the embedded configuration ran about 30 % slower with blocks).
 */
import { randomBytes } from "node:crypto";
import { BusError, type KvStore, type KvWrite } from "../../bus/bus.ts";
import { BusyPort, LeaseCounters, StoredLease } from "../../bus/schemas/lease.ts";
import type { LeaseChange, LeaseState } from "../../machines/port-lease/table.ts";
import { fromJson, toJson } from "./transport.ts";

/** Key of the active instance's lock. */
export const LOCK_KEY = "lock";
/** Key of the lease domain's id: what the firewall rules of this service's leases are tagged with. */
export const DOMAIN_KEY = "domain";
/** A domain id: 14 of `a-z 0-9` (56 random bits, lower case so that Windows rule names keep it whole). */
export const DOMAIN_PATTERN = /^[a-z0-9]{14}$/;
const COUNTERS_KEY = "counters";

/**
 * What a batch must write: the keys of the ports changed, each with its value after the batch's
 * last change to it (undefined: the port is free now, its key is deleted), and the conflict count,
 * if it changed.
 */
export interface PendingWrites {
  readonly ports: Map<string, StoredLease | BusyPort | undefined>;
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

/**
 * Notes the ports (and counter) that changes touched, with their values after the changes (made in
 * the order given: the last change to a key decides its value, as it did in the table).
 */
export function noteChanges(changes: readonly LeaseChange[], into: PendingWrites): void {
  for (const change of changes) {
    switch (change.type) {
      case "conflicts":
        into.conflicts = change.count;
        break;
      case "lease":
        into.ports.set(leaseKey(change.lease.workerHost, change.lease.port), change.lease);
        break;
      case "lease-gone":
        into.ports.set(leaseKey(change.lease.workerHost, change.lease.port), undefined);
        break;
      case "busy":
        into.ports.set(busyKey(change.busy.workerHost, change.busy.port), change.busy);
        break;
      case "busy-gone":
        into.ports.set(busyKey(change.busy.workerHost, change.busy.port), undefined);
        break;
    }
  }
}

/** Most KV reads in flight at once: pipelined, but bounded. */
const PARALLEL = 256;

/** Writes the pending ports' values (deleting the keys of free ones); resolves once all are durable. */
export function writePending(kv: KvStore, pending: PendingWrites): Promise<void> {
  const writes: KvWrite[] = [];
  for (const [key, value] of pending.ports)
    writes.push([key, value === undefined ? undefined : toJson(value)]);
  if (pending.conflicts !== undefined)
    writes.push([COUNTERS_KEY, toJson({ conflicts: pending.conflicts } satisfies LeaseCounters)]);
  return kv.writeMany(writes);
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
  const readAll = async <T extends StoredLease | BusyPort>(
    prefix: string,
    schema: typeof StoredLease | typeof BusyPort,
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
  const leases = await readAll<StoredLease>("lease", StoredLease, leaseKey);
  const busy = await readAll<BusyPort>("busy", BusyPort, busyKey);
  const counters = LeaseCounters.safeParse(await read(COUNTERS_KEY));
  return { leases, busy, conflicts: counters.success ? counters.data.conflicts : 0 };
}

/**
 * The id of the lease domain kept in `kv`: every instance of one lease service (one KV bucket:
 * one NATS account's, or one state directory's) reads the same id, the first one creating it.
 * Firewall rules are tagged with it, so a sweep touches only the rules of its own domain's leases.
 * A value that is not an id (written by hand) is replaced.
 */
export async function leaseDomain(kv: KvStore): Promise<string> {
  for (let attempt = 0; ; attempt++) {
    const entry = await kv.get(DOMAIN_KEY);
    const text = entry === undefined ? "" : new TextDecoder().decode(entry.value.subarray(0, 64));
    if (DOMAIN_PATTERN.test(text)) return text;
    const id = [...randomBytes(14)].map((b) => "abcdefghijklmnopqrstuvwxyz0123456789"[b % 36]).join("");
    const value = new TextEncoder().encode(id);
    try {
      if (entry === undefined) await kv.create(DOMAIN_KEY, value);
      else await kv.update(DOMAIN_KEY, value, entry.revision);
      return id;
    } catch (err) {
      // Another instance wrote it first: read theirs.
      if (!(err instanceof BusError && err.code === "REVISION_MISMATCH") || attempt >= 3) throw err;
    }
  }
}
