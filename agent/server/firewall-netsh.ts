/**
 * Registering the agent's port with Windows Firewall while it runs (config `firewall: "netsh"`):
 * one inbound allow rule for TCP to the agent's port from the workstation's address, named by
 * {@link ruleComment}, through `netsh advfirewall firewall`. Windows Firewall blocks inbound
 * connections by default, so the rule is what admits the workstation and nobody else.
 *
 * netsh is run by its full path under `%SystemRoot%`, as an argv (never a shell: the rule's name
 * holds spaces and `=`, which Node quotes as one argument), with a 10 s deadline and its output
 * capped. Its argv and the reading of its listing are pure functions, tested on exact text.
 * Missing netsh, or netsh asking for elevation, is `unavailable` and the agent goes on, as with nft.
 *
 * netsh prints its messages, errors included, on stdout; those telling "no rule" and "needs
 * elevation" apart are matched in English only. Rule names are read from the line before the
 * dashes of each block, whatever the display language calls the key.
 */
import { isIP } from "node:net";
import { join } from "node:path";
import { createCommandRunner, type CommandOutcome } from "../../base/command.ts";
import { oneLine } from "../../base/text.ts";
import { ruleComment, type AgentPortRule } from "../protocol/firewall-rule.ts";
import type { FirewallResult } from "./firewall.ts";

const NETSH = ["advfirewall", "firewall"] as const;
/** Each netsh call's deadline. */
export const NETSH_TIMEOUT_MS = 10_000;
/** A Windows host has hundreds of inbound rules of about 1 KiB each in a listing; more is not netsh. */
export const NETSH_MAX_OUTPUT = 16 * 1024 * 1024;
/** What of netsh's answer a result (and so the log) keeps. */
const MAX_DETAIL_CHARS = 1000;
const NO_MATCH = /No rules match the specified criteria/;
const NOT_PERMITTED = /requires elevation|Access is denied/;

/** Runs netsh with `args` (after the program); the agent's is {@link createNetshRunner}. */
export type NetshRunner = (args: readonly string[]) => Promise<CommandOutcome>;

/**
 * `<SystemRoot>\System32\netsh.exe`, `SystemRoot` from `env` (default `C:\Windows`): by full path,
 * so that nothing earlier on a PATH is run instead.
 */
export function netshPath(env: NodeJS.ProcessEnv = process.env): string {
  return join(env.SystemRoot ?? "C:\\Windows", "System32", "netsh.exe");
}

/** argv (after the program) adding the inbound allow rule for `rule`. */
export function netshAddArgv(rule: AgentPortRule): string[] {
  if (!Number.isSafeInteger(rule.port) || rule.port < 1 || rule.port > 65535)
    throw new RangeError(`port must be an integer from 1 to 65535, not ${rule.port}`);
  if (isIP(rule.source) === 0)
    throw new RangeError(`source must be an IP address, not ${JSON.stringify(rule.source)}`);
  return [
    ...NETSH,
    "add",
    "rule",
    `name=${ruleComment(rule)}`,
    "dir=in",
    "action=allow",
    "protocol=TCP",
    `localport=${rule.port}`,
    `remoteip=${rule.source}`,
    "profile=any",
  ];
}

/** argv (after the program) deleting every rule named `name`. */
export function netshDeleteArgv(name: string): string[] {
  return [...NETSH, "delete", "rule", `name=${name}`];
}

/** argv (after the program) listing every inbound rule: netsh has no name pattern. */
export const NETSH_SHOW_ARGV: readonly string[] = [...NETSH, "show", "rule", "name=all", "dir=in"];

/**
 * The rule names in `netsh advfirewall firewall show rule` output (CRLF or LF): each block is a
 * `Rule Name:` line, a line of dashes, then `Key: value` lines; the name is what follows the first
 * colon of the line before the dashes. "No rules match the specified criteria." gives none.
 */
export function parseShowRuleNames(text: string): string[] {
  const lines = text.split(/\r?\n/);
  const names: string[] = [];
  for (let i = 0; i + 1 < lines.length; i++) {
    if (!/^-{10,}\s*$/.test(lines[i + 1] ?? "")) continue;
    const line = lines[i] ?? "";
    const colon = line.indexOf(":");
    if (colon > 0) names.push(line.slice(colon + 1).trim());
  }
  return names;
}

/** netsh by its full path ({@link netshPath}), with a deadline and a cap on its output. */
export function createNetshRunner(
  options: { readonly path?: string; readonly timeoutMs?: number } = {},
): NetshRunner {
  const run = createCommandRunner({
    prefix: [options.path ?? netshPath()],
    timeoutMs: options.timeoutMs ?? NETSH_TIMEOUT_MS,
    maxOutputBytes: NETSH_MAX_OUTPUT,
  });
  return (args) => run(args);
}

/** True when netsh ran to its end (not missing, not killed), so its output can be read. */
function answered(out: CommandOutcome): boolean {
  return out.missing !== true && out.timedOut !== true && out.tooLarge !== true;
}

/** A failed call as a result: missing and elevation are `unavailable`, the rest `failed`. */
export function netshFailure(what: string, out: CommandOutcome): FirewallResult {
  // netsh answers in CRLF lines: one line, spaces collapsed, for the log.
  const said =
    `${out.stdout} ${out.stderr}`.replace(/\s+/g, " ").trim() || `exit code ${String(out.exitCode)}`;
  const detail = `${what}: ${oneLine(said, MAX_DETAIL_CHARS)}`;
  if (out.missing === true) return { status: "unavailable", reason: "netsh-missing", detail };
  if (out.timedOut === true) return { status: "failed", reason: "timeout", detail };
  if (NOT_PERMITTED.test(said)) return { status: "unavailable", reason: "not-permitted", detail };
  return { status: "failed", reason: "netsh-error", detail };
}

/** Adds the agent's rule. */
export async function registerNetshPort(rule: AgentPortRule, netsh: NetshRunner): Promise<FirewallResult> {
  const out = await netsh(netshAddArgv(rule));
  if (out.exitCode !== 0 || !answered(out)) return netshFailure("netsh add rule", out);
  return { status: "registered", comment: ruleComment(rule) };
}

/** Deletes the rule named `name`; `absent` when there was none. */
export async function deleteNetshRule(name: string, netsh: NetshRunner): Promise<FirewallResult> {
  const out = await netsh(netshDeleteArgv(name));
  // Checked before the exit code: netsh's status on "no match" is not documented.
  if (answered(out) && NO_MATCH.test(out.stdout)) return { status: "absent", comment: name };
  if (out.exitCode !== 0 || !answered(out)) return netshFailure("netsh delete rule", out);
  return { status: "removed", comment: name };
}

/** Deletes the agent's rule; `absent` when it was not there. */
export function deregisterNetshPort(rule: AgentPortRule, netsh: NetshRunner): Promise<FirewallResult> {
  return deleteNetshRule(ruleComment(rule), netsh);
}

/** The names of the inbound rules, or why they could not be listed. */
export async function listNetshRules(
  netsh: NetshRunner,
): Promise<{ readonly names: string[] } | { readonly failed: FirewallResult }> {
  const out = await netsh(NETSH_SHOW_ARGV);
  if (answered(out) && NO_MATCH.test(out.stdout)) return { names: [] };
  if (out.exitCode !== 0 || !answered(out)) return { failed: netshFailure("netsh show rule", out) };
  return { names: parseShowRuleNames(out.stdout) };
}
