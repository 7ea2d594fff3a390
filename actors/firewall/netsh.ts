/**
 * The Windows Firewall backend, through `netsh advfirewall firewall` (argv only, never a shell
 * string). Each open port is one inbound allow rule for TCP to that local port from the peer's
 * address; the rule's name is the tag, `sumac:OWNER:RUN:LEASE:PORT`, which needs no quoting (ids
 * have no spaces, quotes, `=` or `:`) and parses back for the sweep.
 *
 * Windows Firewall blocks inbound connections by default, so an allow rule restricted to the peer
 * is what admits it and not another address (unless some other allow rule opens the same port).
 *
 * Output parsing: `show rule` prints one block per rule, a `Rule Name:` line, a line of dashes,
 * then `Key:   value` lines, blocks separated by blank lines and ended by `Ok.`. Rule names are
 * taken from the line before the dashes, which works whatever the display language; the messages
 * telling "no rule" and "needs elevation" apart are matched in English only.
 */
import { createSerialQueue, toolFailure } from "./command.ts";
import { createCommandRunner, type CommandOutcome, type CommandRunner } from "../../base/command.ts";
import {
  checkOwner,
  checkRef,
  checkRule,
  FirewallError,
  type FirewallOptions,
  type CallOptions,
  type CloseResult,
  type Firewall,
  type IsLive,
  type OpenResult,
  type PortRule,
  type RuleRef,
  type SweepResult,
  type TaggedRule,
} from "./firewall.ts";

const NETSH = ["netsh", "advfirewall", "firewall"] as const;
/** Cap on a `show rule` listing parsed: a Windows host has hundreds of rules, about 1 KiB each. */
export const MAX_SHOW_BYTES = 16 * 1024 * 1024;
const NO_MATCH = /No rules match the specified criteria/;
const NOT_PERMITTED = /requires elevation|Access is denied/;

/** The rule name that tags a lease's rule of lease domain `owner`. */
export function netshRuleName(owner: string, ref: RuleRef): string {
  return `sumac:${owner}:${ref.runId}:${ref.leaseId}:${ref.port}`;
}

const NAME =
  /^sumac:([a-z0-9]{14}):([A-Za-z0-9][A-Za-z0-9._-]{0,39}):([A-Za-z0-9][A-Za-z0-9._-]{0,39}):(\d{1,5})$/i;
/** Names of the format before lease domains (no owner): nobody can tell whose they are. */
const UNOWNED_NAME = /^sumac:[^:\s]+:[^:\s]+:\d+$/i;

/** The owner, run, lease and port a rule name carries, or undefined when it is not a sumac rule. */
export function parseNetshRuleName(name: string): TaggedRule | undefined {
  const m = NAME.exec(name);
  if (m === null) return undefined;
  const port = Number(m[4]);
  if (port < 1 || port > 65535) return undefined;
  // Windows keeps names as given but compares them without case; owners are lower case.
  return { owner: (m[1] ?? "").toLowerCase(), runId: m[2] ?? "", leaseId: m[3] ?? "", port };
}

/** argv adding the inbound allow rule for `rule`, of lease domain `owner`. */
export function netshAddArgv(owner: string, rule: PortRule): string[] {
  const r = checkRule(rule);
  return [
    ...NETSH,
    "add",
    "rule",
    `name=${netshRuleName(owner, r)}`,
    "dir=in",
    "action=allow",
    "protocol=TCP",
    `localport=${r.port}`,
    `remoteip=${r.peer}`,
    "profile=any",
    "enable=yes",
  ];
}

/** argv deleting a rule by name (every inbound rule of that name). */
export function netshDeleteArgv(name: string): string[] {
  return [...NETSH, "delete", "rule", `name=${name}`, "dir=in"];
}

/** argv listing every inbound rule (netsh has no name pattern: the sweep filters by name). */
export const NETSH_SHOW_ARGV: readonly string[] = [...NETSH, "show", "rule", "name=all", "dir=in"];

/** One block of `show rule` output: the name, and the other lines by their (English) key. */
export interface NetshRule {
  readonly name: string;
  readonly fields: Readonly<Record<string, string>>;
}

/** The value after the first colon: keys have none, values may (IPv6 addresses, our names). */
function valueOf(line: string): { key: string; value: string } | undefined {
  const i = line.indexOf(":");
  if (i <= 0) return undefined;
  return { key: line.slice(0, i).trim(), value: line.slice(i + 1).trim() };
}

/**
 * The rules in `netsh advfirewall firewall show rule` output (CRLF or LF); an empty list for
 * "No rules match the specified criteria.". Throws `FIREWALL_TOOL_FAILED` past {@link MAX_SHOW_BYTES}.
 */
export function parseShowRule(text: string): NetshRule[] {
  if (text.length > MAX_SHOW_BYTES)
    throw new FirewallError("FIREWALL_TOOL_FAILED", `netsh show rule output is over ${MAX_SHOW_BYTES} bytes`);
  const lines = text.split(/\r?\n/);
  const rules: NetshRule[] = [];
  let current: { name: string; fields: Record<string, string> } | undefined;
  for (let i = 0; i < lines.length; i += 1) {
    const line = lines[i] ?? "";
    const next = lines[i + 1] ?? "";
    if (/^-{10,}\s*$/.test(next)) {
      // A block starts: its first line names the rule, in whatever language the key is.
      const name = valueOf(line)?.value ?? "";
      current = { name, fields: {} };
      rules.push(current);
      i += 1;
      continue;
    }
    if (line.trim() === "") {
      current = undefined;
      continue;
    }
    const kv = current === undefined ? undefined : valueOf(line);
    if (current !== undefined && kv !== undefined) current.fields[kv.key] = kv.value;
  }
  return rules;
}

/** True when netsh ran to its end (not missing, not killed), so its output can be read. */
function answered(out: CommandOutcome): boolean {
  return out.missing !== true && out.timedOut !== true && out.tooLarge !== true;
}

/** The Windows Firewall backend; `run` defaults to real processes with a 10 s deadline. */
export function createNetshFirewall(options: FirewallOptions & { readonly run?: CommandRunner }): Firewall {
  const owner = checkOwner(options.owner);
  const run = options.run ?? createCommandRunner();
  const serial = createSerialQueue();

  /** Deletes by name: true when something was deleted, false when no rule had that name. */
  async function remove(name: string, signal?: AbortSignal): Promise<boolean> {
    const out = await run(netshDeleteArgv(name), { signal });
    // Checked before the exit code: whether netsh exits 0 or 1 on "no match" is not documented.
    if (answered(out) && NO_MATCH.test(out.stdout)) return false;
    if (out.exitCode === 0 && answered(out)) return true;
    throw toolFailure("netsh delete rule", out, NOT_PERMITTED);
  }

  return {
    backend: "netsh",

    async open(rule: PortRule, { signal }: CallOptions = {}): Promise<OpenResult> {
      const argv = netshAddArgv(owner, rule);
      const tag = netshRuleName(owner, rule);
      return serial(async () => {
        // Windows allows duplicate names: drop an earlier rule of this lease so there is one.
        await remove(tag, signal);
        const out = await run(argv, { signal });
        if (out.exitCode !== 0 || out.missing === true)
          throw toolFailure("netsh add rule", out, NOT_PERMITTED);
        return { backend: "netsh", registered: true, tag };
      });
    },

    async close(ref: RuleRef, { signal }: CallOptions = {}): Promise<CloseResult> {
      checkRef(ref);
      return serial(async () => ({
        backend: "netsh",
        removed: await remove(netshRuleName(owner, ref), signal),
      }));
    },

    async sweep(isLive: IsLive, { signal }: CallOptions = {}): Promise<SweepResult> {
      return serial(async () => {
        const out = await run(NETSH_SHOW_ARGV, { signal });
        if (!(answered(out) && (out.exitCode === 0 || NO_MATCH.test(out.stdout))))
          throw toolFailure("netsh show rule", out, NOT_PERMITTED);
        const listed = parseShowRule(out.stdout);
        const ours = new Map<string, TaggedRule>();
        let foreign = 0;
        for (const r of listed) {
          const tagged = parseNetshRuleName(r.name);
          if (tagged?.owner === owner) ours.set(r.name, tagged);
          else if (tagged !== undefined || UNOWNED_NAME.test(r.name)) foreign++;
        }
        const removed: TaggedRule[] = [];
        const kept: TaggedRule[] = [];
        for (const [name, rule] of ours) {
          if (await isLive({ runId: rule.runId, leaseId: rule.leaseId })) kept.push(rule);
          else {
            await remove(name, signal);
            removed.push(rule);
          }
        }
        return { removed, kept, foreign };
      });
    },
  };
}
