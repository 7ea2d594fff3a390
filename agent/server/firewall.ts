/**
 * Registering the agent's port with the target's firewall while it runs (DESIGN.md "Firewalls"),
 * with nftables: a table of sumac's own, `inet sumac_agent`, whose `input` chain holds two rules per
 * agent: accept TCP to its port from the workstation's address, then drop it from anyone else, both
 * tagged with a comment naming run, target and port (the same pair as the workstation's own
 * backend, `actors/firewall/nftables.ts`). Removal deletes the pair, and the table when no rule is
 * left.
 *
 * The nft input is built by pure functions (tested on exact text) and fed to `nft -f -` on stdin;
 * every nft call has a deadline. Where nft is missing or not permitted, the result says so and the
 * caller logs it and goes on: the agent can still serve where nothing filters its port.
 *
 * Two agents on one target (two workstations' runs deploying to the same server) share the table,
 * and nftables cannot delete a table only when it is empty: between one agent's listing and its
 * `delete table`, the other's rule could be added and go with the table. So registering, and the
 * listing and deletion of deregistering, run under a host-wide `flock(2)` lock of the agents' own,
 * `/run/sumac/agent-nft.lock` (base/host-lock.ts). Without a `flock` program, or a lock file that
 * cannot be opened, the work runs unlocked and the result says why; a lock not free in time fails
 * the call and nft is not run.
 *
 * Limit of this design: in nftables an `accept` ends a packet's walk through one base chain only;
 * a `drop` in another table's input chain (a distribution's own firewall) still drops it. Our pair
 * narrows the port to the workstation everywhere, and opens it where nothing else drops it.
 */
import { isIP } from "node:net";
import { createCommandRunner, type CommandOutcome } from "../../base/command.ts";
import { createHostLock, HostLockError, type HostLock } from "../../base/host-lock.ts";
import { ruleComment, type AgentPortRule } from "../protocol/firewall-rule.ts";

// The rule's name is shared with the workstation (a forced stop on Windows deletes it by name).
export { ruleComment, type AgentPortRule } from "../protocol/firewall-rule.ts";

import { NFT_CHAIN, NFT_FAMILY, NFT_TABLE } from "../protocol/firewall-rule.ts";
export { NFT_CHAIN, NFT_FAMILY, NFT_TABLE };
const DEFAULT_NFT_TIMEOUT_MS = 5_000;
/** The agents' lock on a target: root's, beside the workstation's (a table each, so a lock each). */
export const AGENT_NFT_LOCK_PATH = "/run/sumac/agent-nft.lock";
/** How long an agent waits for the lock: a holder runs at most two nft processes of 5 s each. */
export const AGENT_LOCK_WAIT_MS = 15_000;
/** More output than nft gives for sumac's chain (a few rules) is not nft talking. */
const NFT_MAX_OUTPUT = 1024 * 1024;

/** What happened, with nft or with netsh (firewall-netsh.ts); never thrown, so the agent logs it and goes on. */
export type FirewallResult = (
  | { readonly status: "registered" | "removed" | "absent"; readonly comment: string }
  | {
      readonly status: "unavailable";
      /**
       * `nft-missing`, `netsh-missing`: no such program; `not-permitted`: no CAP_NET_ADMIN (not
       * root, or a container), or netsh asking for elevation.
       */
      readonly reason: "nft-missing" | "netsh-missing" | "not-permitted";
      readonly detail: string;
    }
  | {
      readonly status: "failed";
      /** `lock-timeout`: another agent held the host lock past its deadline; nft was not run. */
      readonly reason: "timeout" | "nft-error" | "netsh-error" | "lock-timeout";
      readonly detail: string;
    }
) & {
  /** Set when nft ran without the host lock: why the lock could not be taken. */
  readonly unlocked?: string;
};

/** What one run of nft gave (base/command.ts). */
export type NftOutcome = CommandOutcome;

/** Runs nft with `args` and `stdin`; the agent's is {@link createNftRunner}, tests may inject one. */
export type NftRunner = (args: readonly string[], stdin?: string) => Promise<NftOutcome>;

/**
 * The `nft -f -` input that creates the table and chain (declaring existing ones is a no-op) and
 * adds the agent's rule, in one transaction.
 */
export function registerRuleset(rule: AgentPortRule): string {
  if (!Number.isSafeInteger(rule.port) || rule.port < 1 || rule.port > 65535)
    throw new RangeError(`port must be an integer from 1 to 65535, not ${rule.port}`);
  const family = isIP(rule.source);
  if (family === 0) throw new RangeError(`source must be an IP address, not ${JSON.stringify(rule.source)}`);
  const saddr = family === 4 ? "ip saddr" : "ip6 saddr";
  return [
    `table ${NFT_FAMILY} ${NFT_TABLE} {`,
    `\tchain ${NFT_CHAIN} {`,
    `\t\ttype filter hook input priority filter; policy accept;`,
    `\t}`,
    `}`,
    `add rule ${NFT_FAMILY} ${NFT_TABLE} ${NFT_CHAIN} ${saddr} ${rule.source} tcp dport ${rule.port} accept comment "${ruleComment(rule)}"`,
    `add rule ${NFT_FAMILY} ${NFT_TABLE} ${NFT_CHAIN} tcp dport ${rule.port} drop comment "${ruleComment(rule)}"`,
    ``,
  ].join("\n");
}

/** argv that lists sumac's chain with rule handles, as JSON. */
export const LIST_ARGS: readonly string[] = ["-j", "-a", "list", "chain", NFT_FAMILY, NFT_TABLE, NFT_CHAIN];

/** The handles of the rules in `nft -j -a list chain` output: those tagged `comment`, and all. */
export function ruleHandles(listJson: string, comment: string): { mine: number[]; all: number[] } {
  const doc = JSON.parse(listJson) as {
    nftables?: Array<{ rule?: { handle?: unknown; comment?: unknown } }>;
  };
  const mine: number[] = [];
  const all: number[] = [];
  for (const item of doc.nftables ?? []) {
    const handle = item.rule?.handle;
    if (typeof handle !== "number") continue;
    all.push(handle);
    if (item.rule?.comment === comment) mine.push(handle);
  }
  return { mine, all };
}

/** The `nft -f -` input that deletes `handles`, and the table too when no other rule is left. */
export function removeRuleset(handles: readonly number[], tableEmptyAfter: boolean): string {
  const lines = handles.map((h) => `delete rule ${NFT_FAMILY} ${NFT_TABLE} ${NFT_CHAIN} handle ${h}`);
  if (tableEmptyAfter) lines.push(`delete table ${NFT_FAMILY} ${NFT_TABLE}`);
  return lines.length === 0 ? "" : `${lines.join("\n")}\n`;
}

/** Turns a failed run into a result; nft's only status is 1, so its message tells EPERM apart. */
function failure(what: string, out: NftOutcome): FirewallResult {
  const detail = `${what}: ${out.stderr.trim() || `exit code ${out.exitCode}`}`;
  if (out.missing === true) return { status: "unavailable", reason: "nft-missing", detail };
  if (out.timedOut === true) return { status: "failed", reason: "timeout", detail };
  if (/Operation not permitted|Permission denied/.test(out.stderr))
    return { status: "unavailable", reason: "not-permitted", detail };
  return { status: "failed", reason: "nft-error", detail };
}

/**
 * The agents' host lock on a target (`path` default {@link AGENT_NFT_LOCK_PATH}, wait default
 * {@link AGENT_LOCK_WAIT_MS}); `flock` names the program (tests name a missing one). It fails with
 * base's HostLockError.
 */
export function createAgentNftLock(
  options: { readonly path?: string; readonly waitMs?: number; readonly flock?: string } = {},
): HostLock {
  return createHostLock({
    path: options.path ?? AGENT_NFT_LOCK_PATH,
    waitMs: options.waitMs ?? AGENT_LOCK_WAIT_MS,
    name: "the agents' firewall lock",
    heldBy: "another sumac agent changing the table",
    needs: "sumac's agents lock their nftables table with it",
    ...(options.flock === undefined ? {} : { flock: options.flock }),
  });
}

/**
 * Runs `work` holding `lock` (none: unlocked, as tests of the nft text do). A lock that cannot be
 * had (no flock, a file that cannot be opened) leaves the work unlocked, said in the result; one
 * that is not free in time fails the call without running nft.
 */
async function underLock(
  lock: HostLock | undefined,
  work: () => Promise<FirewallResult>,
): Promise<FirewallResult> {
  if (lock === undefined) return work();
  let release: (() => Promise<void>) | undefined;
  let unlocked: string | undefined;
  try {
    release = await lock.acquire();
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    if (error instanceof HostLockError && error.code === "TIMEOUT")
      return { status: "failed", reason: "lock-timeout", detail: message };
    unlocked = message;
  }
  try {
    const result = await work();
    return unlocked === undefined ? result : { ...result, unlocked };
  } finally {
    await release?.();
  }
}

/** Adds the agent's rule, under `lock` (the agent passes {@link createAgentNftLock}'s). */
export function registerAgentPort(
  rule: AgentPortRule,
  nft: NftRunner,
  lock?: HostLock,
): Promise<FirewallResult> {
  const ruleset = registerRuleset(rule);
  return underLock(lock, async () => {
    const out = await nft(["-f", "-"], ruleset);
    if (out.exitCode !== 0 || out.missing === true) return failure("nft -f - (register)", out);
    return { status: "registered", comment: ruleComment(rule) };
  });
}

/**
 * Deletes the agent's rule, and sumac's table when it was the last; `absent` when none was there.
 * The listing and the deletion run under `lock`, so that no agent adds a rule between them.
 */
export function deregisterAgentPort(
  rule: AgentPortRule,
  nft: NftRunner,
  lock?: HostLock,
): Promise<FirewallResult> {
  return underLock(lock, () => deregisterUnlocked(rule, nft));
}

async function deregisterUnlocked(rule: AgentPortRule, nft: NftRunner): Promise<FirewallResult> {
  const comment = ruleComment(rule);
  const listed = await nft(LIST_ARGS);
  if (listed.exitCode !== 0 || listed.missing === true) {
    // The chain (or table) is gone: nothing of ours to remove.
    if (/No such file or directory/.test(listed.stderr)) return { status: "absent", comment };
    return failure("nft list chain", listed);
  }
  const { mine, all } = ruleHandles(listed.stdout, comment);
  if (mine.length === 0) return { status: "absent", comment };
  const out = await nft(["-f", "-"], removeRuleset(mine, all.length === mine.length));
  if (out.exitCode !== 0) return failure("nft -f - (remove)", out);
  return { status: "removed", comment };
}

/**
 * Runs `command` (default `["nft"]`; e.g. `["ip", "netns", "exec", ns, "nft"]`) with a deadline
 * (the outcome says `timedOut`) and a cap on its output (`tooLarge`): nft's listing of the chain is
 * small, and anything past the cap is not nft talking.
 */
export function createNftRunner(
  options: { readonly command?: readonly string[]; readonly timeoutMs?: number } = {},
): NftRunner {
  const run = createCommandRunner({
    prefix: options.command ?? ["nft"],
    timeoutMs: options.timeoutMs ?? DEFAULT_NFT_TIMEOUT_MS,
    maxOutputBytes: NFT_MAX_OUTPUT,
  });
  return async (args, stdin) => {
    const out = await run(args, stdin === undefined ? {} : { stdin });
    return { ...out, timedOut: out.timedOut === true };
  };
}
