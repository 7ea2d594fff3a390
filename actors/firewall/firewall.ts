/**
 * Firewall registration of the ports a run uses (DESIGN.md "Firewalls"): while a
 * lease lasts, its port is reachable from the one peer that needs it, and nothing else. One
 * interface, three backends (`nftables.ts`, `netsh.ts`, `none.ts`), chosen by `select.ts`.
 *
 * Every rule carries a tag naming its lease domain (the lease service its lease comes from), its run
 * and its lease, so that a sweep at start-up can find the rules a crashed process of the same
 * domain left behind and remove those whose lease is gone, and leave every other sumac's alone.
 */
import { isIP } from "node:net";
import type { ErrorCode } from "../../base/error-codes.ts";
import { SumacError } from "../../base/errors.ts";
// A rule's owner is a lease domain id, as the lease service makes it.
import { DOMAIN_PATTERN } from "../lease/store.ts";

/** The backends; `none` registers nothing and says so in the log. */
export type FirewallBackend = "nftables" | "netsh" | "none";

/** Who owns a rule: the run and the port lease it was opened for. */
export interface RuleOwner {
  readonly runId: string;
  readonly leaseId: string;
}

/** One port opened for one peer, for one lease of one run. */
export interface PortRule extends RuleOwner {
  readonly port: number;
  /** Only TCP is registered; the field is there so that a caller states it. */
  readonly protocol?: "tcp";
  /** The IPv4 or IPv6 address that may connect (no prefix, no zone). */
  readonly peer: string;
}

/** What close needs: the owner and the port (the peer is not needed to find the rule). */
export type RuleRef = Pick<PortRule, "runId" | "leaseId" | "port">;

/** A rule found by a sweep, as far as its tag tells. */
export interface TaggedRule extends RuleOwner {
  /** The lease domain that opened it. */
  readonly owner: string;
  readonly port: number;
}

export interface OpenResult {
  readonly backend: FirewallBackend;
  /** False with the `none` backend: nothing was registered. */
  readonly registered: boolean;
  /** The tag the backend put on the rule (nft comment, Windows rule name). */
  readonly tag: string;
}

export interface CloseResult {
  readonly backend: FirewallBackend;
  /** False when no rule of that tag was there (closing twice is not an error). */
  readonly removed: boolean;
}

export interface SweepResult {
  readonly removed: readonly TaggedRule[];
  readonly kept: readonly TaggedRule[];
  /** Rules tagged by another lease domain (another sumac's), or in an older tag format: left alone. */
  readonly foreign: number;
}

/** What a backend that registers rules is made with. */
export interface FirewallOptions {
  /**
   * The lease domain whose rules this instance opens and sweeps (`LeaseService.domain`, 14 of
   * `a-z 0-9`): rules of another domain are never touched.
   */
  readonly owner: string;
}

/** Checks a backend's owner; throws `FIREWALL_BAD_RULE`. */
export function checkOwner(owner: unknown): string {
  if (typeof owner !== "string" || !DOMAIN_PATTERN.test(owner))
    throw new FirewallError(
      "FIREWALL_BAD_RULE",
      `the firewall's owner must be a lease domain id (14 of a-z 0-9), not ${JSON.stringify(owner)}`,
    );
  return owner;
}

export interface CallOptions {
  /**
   * Aborting ends the call at once (a backend kills its tool, or lets a run shared with other calls
   * finish within its deadline); the rule may then exist or not, so close it.
   */
  readonly signal?: AbortSignal;
}

/**
 * Answers whether a rule's lease still lives; a throw stops the sweep and removes nothing more.
 * Called only after the rules were listed, so a listing of leases made on the first call is not
 * older than any rule it judges.
 */
export type IsLive = (owner: RuleOwner) => boolean | Promise<boolean>;

/**
 * Registers ports with the host firewall. Calls on one instance run one at a time (each backend
 * lists, then changes), so concurrent target actors may share one.
 *
 * @example
 * const fw = await selectFirewall({ mode: "auto", owner: leaseService.domain, log: (m) => logger.info(m) });
 * await fw.sweep((o) => leases.isLive(o));
 * await fw.open({ runId, leaseId, port: 61004, peer: "10.0.0.7" }, { signal });
 * // ...
 * await fw.close({ runId, leaseId, port: 61004 });
 */
export interface Firewall {
  readonly backend: FirewallBackend;
  /** Opens `rule.port` to `rule.peer` only; opening the same rule again replaces it. */
  open(rule: PortRule, options?: CallOptions): Promise<OpenResult>;
  /** Removes the rule; idempotent. */
  close(rule: RuleRef, options?: CallOptions): Promise<CloseResult>;
  /** Removes every rule of this lease domain whose lease `isLive` says is gone. */
  sweep(isLive: IsLive, options?: CallOptions): Promise<SweepResult>;
}

/** The codes firewall registration fails with: only a timeout is worth another try. */
export type FirewallErrorCode = Extract<
  ErrorCode,
  | "FIREWALL_NOT_PERMITTED"
  | "FIREWALL_TOOL_MISSING"
  | "TIMEOUT"
  | "FIREWALL_TOOL_FAILED"
  | "FIREWALL_BAD_RULE"
>;

/** The one error class of firewall registration: callers branch on `code`. */
export class FirewallError extends SumacError<FirewallErrorCode> {}

/**
 * Run and lease ids as tags carry them: no spaces, quotes, `=` or `:` (the separators of the
 * tags), at most 40 characters, so that a tag parses back to the same ids and fits nftables'
 * 128-byte comment beside the owner.
 */
export const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,39}$/;

/**
 * Checks a rule and returns it with its peer in canonical form: an IPv4-mapped IPv6 address
 * (`::ffff:10.0.0.7`, as a dual-stack socket reports an IPv4 peer) becomes the IPv4 address the
 * packets really carry. Throws `FIREWALL_BAD_RULE`, naming the field.
 */
export function checkRule(rule: PortRule): PortRule & { readonly protocol: "tcp" } {
  checkRef(rule);
  if (rule.protocol !== undefined && rule.protocol !== "tcp")
    throw new FirewallError(
      "FIREWALL_BAD_RULE",
      `protocol must be "tcp", not ${JSON.stringify(rule.protocol)}`,
    );
  return { ...rule, protocol: "tcp", peer: canonicalPeer(rule.peer) };
}

/** Checks the owner and port of a rule reference; throws `FIREWALL_BAD_RULE`. */
export function checkRef(ref: RuleRef): void {
  for (const field of ["runId", "leaseId"] as const) {
    const value: unknown = ref[field];
    if (typeof value !== "string" || !ID_PATTERN.test(value))
      throw new FirewallError(
        "FIREWALL_BAD_RULE",
        `${field} must be 1 to 40 of A-Z a-z 0-9 . _ - (starting with a letter or digit), not ${JSON.stringify(value)}`,
      );
  }
  if (!Number.isSafeInteger(ref.port) || ref.port < 1 || ref.port > 65535)
    throw new FirewallError(
      "FIREWALL_BAD_RULE",
      `port must be an integer from 1 to 65535, not ${String(ref.port)}`,
    );
}

function canonicalPeer(peer: unknown): string {
  const shown = JSON.stringify(peer);
  if (typeof peer !== "string" || isIP(peer) === 0 || peer.includes("%"))
    throw new FirewallError(
      "FIREWALL_BAD_RULE",
      `peer must be an IPv4 or IPv6 address without zone, not ${shown}`,
    );
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(peer);
  const canonical = mapped?.[1] ?? peer.toLowerCase();
  if (canonical === "0.0.0.0" || /^[0:]+$/.test(canonical))
    throw new FirewallError(
      "FIREWALL_BAD_RULE",
      `peer must be one host's address, not the unspecified ${shown}`,
    );
  return canonical;
}
