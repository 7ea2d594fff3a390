/**
 * The lease service's ranges and their defaults (DESIGN.md "Ports"): `workstation` from 60000 and
 * `callback` from 61000, strategy `lowest`, up to the hard cap 65535.
 */
import { RangeName } from "../../bus/schemas/lease.ts";
import type { LeaseTableConfig, RangeConfig } from "../../machines/port-lease/table.ts";

/** One range as configured; what is left out takes the defaults below. */
export interface RangeOption {
  readonly base: number;
  /** Default `lowest`. */
  readonly strategy?: "lowest" | "random";
  /** `random` only: width of the window above the base; default {@link DEFAULT_WINDOW}. */
  readonly window?: number;
  /** Highest port granted; default {@link DEFAULT_CAP}. */
  readonly cap?: number;
}

export type LeaseRangesOption = Readonly<Record<string, RangeOption>>;

export const DEFAULT_RANGES: LeaseRangesOption = { workstation: { base: 60000 }, callback: { base: 61000 } };
export const DEFAULT_WINDOW = 1000;
export const DEFAULT_CAP = 65535;
export const DEFAULT_COOLDOWN_MS = 60_000;

/** The machine's table configuration; throws a RangeError naming a bad range or value. */
export function leaseTableConfig(
  ranges: LeaseRangesOption = DEFAULT_RANGES,
  cooldownMs: number = DEFAULT_COOLDOWN_MS,
): LeaseTableConfig {
  const resolved: Record<string, RangeConfig> = {};
  for (const [name, range] of Object.entries(ranges)) {
    if (!RangeName.safeParse(name).success)
      throw new RangeError(`range name ${JSON.stringify(name)}: 1 to 32 of [A-Za-z0-9_-]`);
    resolved[name] = {
      base: range.base,
      strategy: range.strategy ?? "lowest",
      window: range.window ?? DEFAULT_WINDOW,
      cap: range.cap ?? DEFAULT_CAP,
    };
  }
  // The table validates the numbers.
  return { ranges: resolved, cooldownMs };
}
