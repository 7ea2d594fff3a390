/**
 * How the lease service's state lives in the Bus KV (docs/port-leases.md "Persistence"): the leases
 * and busy ports of one worker host are grouped in blocks of {@link BLOCK} consecutive ports, one
 * key per block (`leases.<host>.<block>`, the host in base64url since KV keys allow only
 * `[A-Za-z0-9_=-]` tokens), plus `counters`. Grants cluster on consecutive ports, so a batch of
 * grants on one host rewrites a few blocks rather than one key per lease (each KV write is a
 * JetStream round trip); blocks are small so that a rewrite stays cheap when grants are spread over
 * many hosts (bench/lease.ts compared 16, 32 and 256), and far below the 1 MiB value limit.
 */
import type { KvStore } from "../../bus/bus.ts";
import { LeaseBlock, LeaseCounters, type BusyPort, type Lease } from "../../bus/schemas/lease.ts";
import type { LeaseChange, LeaseState, LeaseTable } from "../../machines/port-lease-table.ts";
import { fromJson, toJson } from "./transport.ts";

/** Key of the active instance's lock. */
export const LOCK_KEY = "lock";
const COUNTERS_KEY = "counters";
/** Ports per block key. */
export const BLOCK = 8;

/** A block whose key must be written: its host and first port. */
interface DirtyBlock {
  readonly workerHost: string;
  readonly first: number;
}

/** What a batch must write: the blocks changed and the conflict count, if it changed. */
export interface PendingWrites {
  readonly blocks: Map<string, DirtyBlock>;
  conflicts: number | undefined;
}

export function pendingWrites(): PendingWrites {
  return { blocks: new Map(), conflicts: undefined };
}

/** Worker host -> its key token; hosts are few, but the cache is bounded all the same. */
const hostTokens = new Map<string, string>();

export function blockKey(workerHost: string, port: number): string {
  let token = hostTokens.get(workerHost);
  if (token === undefined) {
    if (hostTokens.size >= 10_000) hostTokens.clear();
    hostTokens.set(workerHost, (token = Buffer.from(workerHost).toString("base64url")));
  }
  return `leases.${token}.${Math.floor(port / BLOCK)}`;
}

/** Notes the blocks (and counter) that changes touched. */
export function noteChanges(changes: readonly LeaseChange[], into: PendingWrites): void {
  for (const change of changes) {
    if (change.type === "conflicts") {
      into.conflicts = change.count;
      continue;
    }
    const { workerHost, port } =
      change.type === "lease" || change.type === "lease-gone" ? change.lease : change.busy;
    const key = blockKey(workerHost, port);
    if (!into.blocks.has(key)) into.blocks.set(key, { workerHost, first: port - (port % BLOCK) });
  }
}

/** JSON of leases and busy ports, kept while the (immutable) object lives: a block is rewritten often. */
const encoded = new WeakMap<object, string>();

function json(value: Lease | BusyPort): string {
  let text = encoded.get(value);
  if (text === undefined) encoded.set(value, (text = JSON.stringify(value)));
  return text;
}

/** The same bytes as `toJson(block)`, from the cached parts. */
function encodeBlock(block: LeaseBlock): Uint8Array {
  return Buffer.from(
    `{"leases":[${block.leases.map(json).join(",")}],"busy":[${block.busy.map(json).join(",")}]}`,
  );
}

/** Most KV writes or reads in flight at once: pipelined, but bounded. */
const PARALLEL = 256;

/**
 * Writes the current contents of the pending blocks (read from the table now, so a block carries
 * every change made to it so far); resolves once all writes are durable.
 */
export async function writePending(kv: KvStore, table: LeaseTable, pending: PendingWrites): Promise<void> {
  const writes: [string, Uint8Array | null][] = [];
  for (const [key, { workerHost, first }] of pending.blocks) {
    const block = table.ports(workerHost, first, first + BLOCK - 1);
    const empty = block.leases.length === 0 && block.busy.length === 0;
    writes.push([key, empty ? null : encodeBlock(block)]);
  }
  if (pending.conflicts !== undefined)
    writes.push([COUNTERS_KEY, toJson({ conflicts: pending.conflicts } satisfies LeaseCounters)]);
  for (let i = 0; i < writes.length; i += PARALLEL) {
    await Promise.all(
      writes
        .slice(i, i + PARALLEL)
        .map(([key, value]): Promise<unknown> => (value === null ? kv.delete(key) : kv.put(key, value))),
    );
  }
}

/**
 * Reads the persisted state. Values that fail their schema are reported through `onInvalid` and
 * skipped: a corrupt key must not keep the service from starting.
 */
export async function loadState(
  kv: KvStore,
  onInvalid: (key: string, why: string) => void,
): Promise<LeaseState> {
  const leases: Lease[] = [];
  const busy: BusyPort[] = [];
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
  const keys = await kv.keys("leases.>");
  for (let i = 0; i < keys.length; i += PARALLEL) {
    await Promise.all(
      keys.slice(i, i + PARALLEL).map(async (key) => {
        const value = await read(key);
        if (value === undefined) return;
        const parsed = LeaseBlock.safeParse(value);
        if (!parsed.success) return onInvalid(key, parsed.error.message);
        leases.push(...parsed.data.leases);
        busy.push(...parsed.data.busy);
      }),
    );
  }
  const counters = LeaseCounters.safeParse(await read(COUNTERS_KEY));
  return { leases, busy, conflicts: counters.success ? counters.data.conflicts : 0 };
}
