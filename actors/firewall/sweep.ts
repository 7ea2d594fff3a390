/**
 * The sweep at a run's start (docs/firewall.md "Sweep"): the rules of this lease domain whose leases
 * are gone are removed, and only when the lease service's listing is known complete. The rules are
 * listed first and the leases after, so a rule opened meanwhile has a lease that the listing holds.
 */
import type { Firewall, IsLive, SweepResult } from "./firewall.ts";

export interface SweepStaleOptions {
  readonly firewall: Firewall;
  /**
   * Every live lease id of the firewall's lease domain, all of them (paged, never a truncated
   * listing), or a throw: then nothing is removed.
   */
  readonly liveLeaseIds: () => Promise<ReadonlySet<string>>;
  /** The run's notes: what was removed, or why nothing was. */
  readonly note: (line: string) => void;
  readonly signal?: AbortSignal;
}

/** Runs the sweep; never throws (a failure is a note, and removes nothing more). */
export async function sweepStaleRules(options: SweepStaleOptions): Promise<SweepResult | undefined> {
  const { firewall, note } = options;
  let listing: Promise<ReadonlySet<string>> | undefined;
  const isLive: IsLive = async ({ leaseId }) => (await (listing ??= options.liveLeaseIds())).has(leaseId);
  try {
    const swept = await firewall.sweep(isLive, { signal: options.signal });
    if (swept.removed.length > 0)
      note(`firewall: removed ${swept.removed.length} rule(s) whose leases are gone (left by earlier runs)`);
    return swept;
  } catch (error) {
    const why = error instanceof Error ? error.message : String(error);
    note(`warning: firewall sweep skipped, no rule removed: ${why}`);
    return undefined;
  }
}
