/**
 * The ports of a worker host, per range, and the two ways of choosing the next one (DESIGN.md "Ports"): `lowest`, the lowest port neither leased nor busy, in O(log n) from a
 * min-heap of freed ports below a high-water mark (ports at or above the mark were never handed
 * out); and `random`, a random free port in a window above the base, so a scanner cannot predict it.
 *
 * Deterministic: `random` draws from a seed given with the request, never from a global source.
 */
import type { BusyPort } from "../../bus/schemas/lease.ts";
import { MinHeap } from "./heap.ts";

/** Ports per block of a `PortTable`. */
const BLOCK = 256;

/**
 * Port -> value for the ports 0 to 65535 of one host: blocks of 256 ports made on first use, so a
 * lookup is two array reads. A Map grows with its entries and hashes each port into a table that
 * is read at random; with hundreds of thousands of leases that cost about 5 % of a grant
 * (bench/lease.ts). A host's leases cluster above a base, so few blocks are made (2 KiB each).
 */
export class PortTable<T> {
  private readonly blocks: ((T | undefined)[] | undefined)[] = new Array<undefined>(65536 / BLOCK).fill(
    undefined,
  );
  private count = 0;

  /** How many ports have a value. */
  get size(): number {
    return this.count;
  }

  get(port: number): T | undefined {
    return this.blocks[port >>> 8]?.[port & (BLOCK - 1)];
  }

  has(port: number): boolean {
    return this.get(port) !== undefined;
  }

  /** Ports outside 0 to 65535 throw a RangeError (leases come from validated ranges). */
  set(port: number, value: T): void {
    if (!(port >= 0 && port <= 65535 && Number.isInteger(port))) throw new RangeError(`not a port: ${port}`);
    let block = this.blocks[port >>> 8];
    if (block === undefined) this.blocks[port >>> 8] = block = new Array<undefined>(BLOCK).fill(undefined);
    if (block[port & (BLOCK - 1)] === undefined) this.count++;
    block[port & (BLOCK - 1)] = value;
  }

  delete(port: number): void {
    const block = this.blocks[port >>> 8];
    if (block?.[port & (BLOCK - 1)] === undefined) return;
    block[port & (BLOCK - 1)] = undefined;
    this.count--;
  }
}

/** The ports of one worker host that are taken, whatever range granted them. */
export interface HostPorts {
  readonly workerHost: string;
  /** port -> lease id */
  readonly leased: PortTable<string>;
  /** port -> its cool-down */
  readonly busy: Map<number, BusyPort>;
  /** range name -> its pool */
  readonly pools: Map<string, PortPool>;
}

/** A port is bound once per host, so "taken" is per host: ranges may overlap as they grow. */
export function taken(host: HostPorts, port: number): boolean {
  return host.leased.has(port) || (host.busy.size > 0 && host.busy.has(port));
}

/** How one range hands out ports. */
export interface RangeConfig {
  /** The first port of the range, e.g. 60000. */
  readonly base: number;
  readonly strategy: "lowest" | "random";
  /** `random` only: ports are drawn from [base, base + window). */
  readonly window: number;
  /** The highest port ever granted (the hard cap; 65535 by default). */
  readonly cap: number;
}

/** Checks a range's numbers; throws a RangeError naming the range and the bad value. */
export function validateRange(name: string, range: RangeConfig): void {
  const { base, cap, window } = range;
  if (!Number.isSafeInteger(base) || base < 1 || base > 65535)
    throw new RangeError(`range ${name}: base must be an integer from 1 to 65535, not ${base}`);
  if (!Number.isSafeInteger(cap) || cap < base || cap > 65535)
    throw new RangeError(`range ${name}: cap must be an integer from base (${base}) to 65535, not ${cap}`);
  if (!Number.isSafeInteger(window) || window < 1)
    throw new RangeError(`range ${name}: window must be a positive integer, not ${window}`);
  if (range.strategy !== "lowest" && range.strategy !== "random")
    throw new RangeError(`range ${name}: strategy must be lowest or random, not ${String(range.strategy)}`);
}

/** Probes of random ports before falling back to a scan of the window. */
const RANDOM_PROBES = 16;

export class PortPool {
  readonly host: HostPorts;
  readonly range: string;
  /** Undefined when leases were restored for a range that is no longer configured. */
  readonly config: RangeConfig | undefined;
  /** Free ports below `high` (some may have been taken since: checked when popped). */
  private readonly free = new MinHeap<null>();
  private readonly inFree = new Set<number>();
  /**
   * The high-water mark: every free port below it is in `free`; ports at or above it are reached by
   * walking up from it (skipping the taken ones). A port taken above the mark by `random` or by a
   * restore needs no bookkeeping: the walk skips it while taken and finds it once freed.
   */
  private high: number;

  constructor(host: HostPorts, range: string, config: RangeConfig | undefined) {
    this.host = host;
    this.range = range;
    this.config = config;
    this.high = config?.base ?? 65536;
  }

  private taken(port: number): boolean {
    return taken(this.host, port);
  }

  /** Makes a port that is neither leased nor busy any more available to `lowest` again. */
  freed(port: number): void {
    const base = this.config?.base ?? 65536;
    if (port >= base && port < this.high && !this.inFree.has(port) && !this.taken(port)) {
      this.inFree.add(port);
      this.free.push(port, null);
    }
  }

  /** A port for a new lease by the range's strategy, or undefined when none is left. */
  choose(random: number): number | undefined {
    const config = this.config;
    if (config === undefined) return undefined;
    return config.strategy === "lowest" ? this.lowest(config) : this.random(config, random);
  }

  private lowest(config: RangeConfig): number | undefined {
    while (this.free.size > 0) {
      const port = this.free.peekKey()!;
      this.free.pop();
      this.inFree.delete(port);
      if (!this.taken(port)) return port;
    }
    while (this.high <= config.cap) {
      const port = this.high++;
      if (!this.taken(port)) return port;
    }
    return undefined;
  }

  private random(config: RangeConfig, random: number): number | undefined {
    const size = Math.min(config.window, config.cap - config.base + 1);
    const next = mulberry32(Math.floor(random * 0x1_0000_0000));
    for (let i = 0; i < RANDOM_PROBES; i++) {
      const port = config.base + Math.floor(next() * size);
      if (!this.taken(port)) return port;
    }
    // A crowded window: scan it once from a random start, so a free port is always found.
    const start = Math.floor(next() * size);
    for (let i = 0; i < size; i++) {
      const port = config.base + ((start + i) % size);
      if (!this.taken(port)) return port;
    }
    return undefined;
  }
}

/** A small seeded PRNG (mulberry32): uniform in [0, 1), deterministic for a seed. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 0x1_0000_0000;
  };
}
