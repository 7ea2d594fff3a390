/**
 * The backend that registers nothing: for hosts with no usable firewall tool, no permission to
 * use it, or an administrator who manages the firewall otherwise. Every open says in the log that
 * the port was not registered, so an operator can see which ports a run relied on.
 */
import type { CloseResult, Firewall, OpenResult, PortRule, RuleRef } from "./firewall.ts";
import { checkRef, checkRule } from "./firewall.ts";

/** Receives one line per event; `selectFirewall` and the none backend write to it. */
export type FirewallLog = (message: string) => void;

/** The none backend. Rules are still checked, so bad input fails the same way on every backend. */
export function createNoneFirewall(options: { readonly log: FirewallLog }): Firewall {
  const { log } = options;
  const tagOf = (r: RuleRef): string => `run=${r.runId} lease=${r.leaseId} port=${r.port}`;
  return {
    backend: "none",
    // A throw inside the executor rejects: bad rules reject, as on the other backends.
    open: (rule: PortRule) =>
      new Promise<OpenResult>((resolve) => {
        const r = checkRule(rule);
        log(`firewall: none, port ${r.port}/tcp for peer ${r.peer} not registered (${tagOf(r)})`);
        resolve({ backend: "none", registered: false, tag: tagOf(r) });
      }),
    close: (ref: RuleRef) =>
      new Promise<CloseResult>((resolve) => {
        checkRef(ref);
        resolve({ backend: "none", removed: false });
      }),
    sweep: () => Promise.resolve({ removed: [], kept: [], foreign: 0 }),
  };
}
