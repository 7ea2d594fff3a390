/**
 * The name of an agent's firewall rule on its target: the nftables comment on Linux, the rule name
 * in Windows Firewall. Both sides compute it: the agent adds and removes its rule, and on Windows
 * the workstation deletes it by name when it has to kill an agent that did not stop, and another
 * agent's crash sweep (agent/server/firewall-netsh.ts) reads the run back from it.
 */

/** nftables keeps at most 128 bytes of a rule's comment (NFT_USERDATA_MAXLEN applies to the whole). */
const MAX_COMMENT = 128;

/** The port one agent listens on, and who may reach it. */
export interface AgentPortRule {
  readonly runId: string;
  readonly targetId: string;
  readonly port: number;
  /** The workstation's IPv4 or IPv6 address, as the target sees it. */
  readonly source: string;
}

/** What the rule's name carries: no address, which the forced stop does not know. */
export type AgentRuleRef = Pick<AgentPortRule, "runId" | "targetId" | "port">;

/** Characters kept in the ids of a rule's name; every other one becomes `_`. */
const UNSAFE = /[^A-Za-z0-9._:@+=-]/g;

/**
 * The name (comment) that tags an agent's rule: `sumac run=<run> target=<target> port=<port>`,
 * printable, quote-free, at most 128 bytes.
 *
 * @example
 * ruleComment({ runId: "run-7", targetId: "web01", port: 62288 }); // "sumac run=run-7 target=web01 port=62288"
 */
export function ruleComment(rule: AgentRuleRef): string {
  const clean = (s: string): string => s.replace(UNSAFE, "_");
  return `sumac run=${clean(rule.runId)} target=${clean(rule.targetId)} port=${rule.port}`.slice(
    0,
    MAX_COMMENT,
  );
}

/**
 * The run a rule's name belongs to, or undefined when it is not an agent's rule. Only the run is
 * read back: a long target id may have cut the rest at 128 bytes. The run comes back as
 * {@link ruleComment} cleaned it, so callers that map it to a directory must accept only names
 * that cleaning leaves as they were.
 */
export function ruleCommentRun(name: string): string | undefined {
  const m = /^sumac run=(\S+) target=/.exec(name);
  return m?.[1];
}

/** The agents' own nftables table and chain on a Linux target (agent/server/firewall.ts). */
export const NFT_FAMILY = "inet";
export const NFT_TABLE = "sumac_agent";
export const NFT_CHAIN = "input";
