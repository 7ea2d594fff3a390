/**
 * What the firewall backends make of a tool's run (the runner itself is base/command.ts): its
 * complaint in one line, the error it amounts to, and a queue that keeps a backend's calls apart.
 */
import type { CommandOutcome } from "../../base/command.ts";
import { firstLine } from "../../base/text.ts";
import { FirewallError } from "./firewall.ts";

/**
 * The error for a failed run of `tool`: no binary, killed at the deadline, output too large, the
 * host refusing (`notPermitted` matched in the output: nft and netsh exit 1 for everything), or
 * any other failure.
 */
export function toolFailure(what: string, out: CommandOutcome, notPermitted: RegExp): FirewallError {
  const said = firstLine(out.stderr) || firstLine(out.stdout) || `exit code ${String(out.exitCode)}`;
  const message = `${what}: ${said}`;
  if (out.missing === true) return new FirewallError("FIREWALL_TOOL_MISSING", message);
  if (out.timedOut === true) return new FirewallError("TIMEOUT", message);
  if (out.tooLarge === true) return new FirewallError("FIREWALL_TOOL_FAILED", message);
  if (notPermitted.test(out.stderr) || notPermitted.test(out.stdout))
    return new FirewallError("FIREWALL_NOT_PERMITTED", message);
  return new FirewallError("FIREWALL_TOOL_FAILED", message);
}

/** Runs calls one at a time in arrival order: a backend lists, then changes, and must not interleave. */
export function createSerialQueue(): <T>(work: () => Promise<T>) => Promise<T> {
  let tail: Promise<unknown> = Promise.resolve();
  return (work) => {
    const next = tail.then(work, work);
    tail = next.catch(() => undefined);
    return next;
  };
}
