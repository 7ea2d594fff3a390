/**
 * The agent's firewall backend as main.ts uses it, whichever the config names: nftables under the
 * agents' host lock (firewall.ts), or Windows Firewall through netsh (firewall-netsh.ts), which
 * first sweeps the rules of runs whose agent is gone (firewall-sweep.ts).
 */
import type { HostLock } from "../../base/host-lock.ts";
import type { AgentPortRule } from "../protocol/firewall-rule.ts";
import {
  createAgentNftLock,
  createNftRunner,
  deregisterAgentPort,
  registerAgentPort,
  type FirewallResult,
  type NftRunner,
} from "./firewall.ts";
import {
  createNetshRunner,
  deregisterNetshPort,
  registerNetshPort,
  type NetshRunner,
} from "./firewall-netsh.ts";
import { sweepDeadRunRules, type SweepResult } from "./firewall-sweep.ts";

/** One backend: what it does before registering, registering, and removing the rule again. */
export interface AgentFirewall {
  /** Netsh only: the crash sweep of other runs' rules. */
  sweep?(): Promise<SweepResult>;
  register(rule: AgentPortRule): Promise<FirewallResult>;
  deregister(rule: AgentPortRule): Promise<FirewallResult>;
}

/**
 * The backend of `mode`, undefined for `none`. `runRoot` and `runId` are the sweep's (netsh): the
 * directory of the runs' directories, and the run whose rules it never touches.
 */
export function createAgentFirewall(
  mode: "nft" | "netsh" | "none",
  options: {
    readonly runRoot: () => string;
    readonly runId: string;
    readonly nft?: NftRunner;
    readonly nftLock?: HostLock;
    readonly netsh?: NetshRunner;
  },
): AgentFirewall | undefined {
  if (mode === "none") return undefined;
  if (mode === "nft") {
    const nft = options.nft ?? createNftRunner();
    // Shared with the other agents on this host (other runs): see firewall.ts.
    const lock = options.nftLock ?? createAgentNftLock();
    return {
      register: (rule) => registerAgentPort(rule, nft, lock),
      deregister: (rule) => deregisterAgentPort(rule, nft, lock),
    };
  }
  const netsh = options.netsh ?? createNetshRunner();
  return {
    sweep: () => sweepDeadRunRules({ runRoot: options.runRoot(), currentRunId: options.runId, netsh }),
    register: (rule) => registerNetshPort(rule, netsh),
    deregister: (rule) => deregisterNetshPort(rule, netsh),
  };
}

/** A warning when the rule's change failed or ran without the agents' host lock. */
export function firewallLevel(result: FirewallResult): "info" | "warn" {
  const done = result.status === "registered" || result.status === "removed" || result.status === "absent";
  return done && result.unlocked === undefined ? "info" : "warn";
}
