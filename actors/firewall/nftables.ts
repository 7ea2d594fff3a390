/**
 * The nftables backend: sumac's own table, `inet sumac` (the agent's on targets is
 * `inet sumac_agent`), with one base chain on the input hook, policy accept. Each open port gets
 * two rules, both commented with the lease's tag:
 *
 *     ip saddr PEER tcp dport PORT accept    (inserted at the top of the chain)
 *     tcp dport PORT drop                    (appended at the end)
 *
 * Why a drop: an `accept` ends a packet's walk through one base chain only; it cannot override a
 * `drop` in another table, and where no other table filters, everything is admitted anyway. The
 * drop makes the port reachable from the peer only, whatever else the host runs; accepts go first
 * and drops last so that two leases on one port (never granted, but harmless) both work.
 *
 * The nft input is built by pure functions (tested on exact text) and fed to `nft -f -`, one
 * transaction at a time, so a rule pair is added or removed whole.
 *
 * Batching: opens and closes that arrive while nft runs wait, then go together, one listing and one
 * transaction for all of them. Each nft run costs a process (tens of ms on a busy workstation, and
 * a fork of this process): one pair of runs per call, one call after the other, made 20 targets
 * starting together wait over a second for their rules. When a batch's transaction fails, each of
 * its calls is run again alone, so that each gets the error it caused, or none.
 *
 * Other sumac processes on the host change the same table: every listing and the transaction
 * built on it run under a host-wide lock (host-lock.ts), so that no process deletes the table, or
 * a rule by a handle it listed, while another adds to it.
 */
import { isIP } from "node:net";
import { createSerialQueue, toolFailure } from "./command.ts";
import { createFlockLock, type HostLock } from "./host-lock.ts";
import { createCommandRunner, type CommandRunner } from "../../base/command.ts";
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

export const NFT_FAMILY = "inet";
export const NFT_TABLE = "sumac";
export const NFT_CHAIN = "input";
/** Cap on the listing parsed: our chain holds two rules per open port, far below this. */
export const MAX_LIST_BYTES = 16 * 1024 * 1024;
const NOT_PERMITTED = /Operation not permitted|Permission denied/;

/** argv listing sumac's chain as JSON with rule handles. */
export const NFT_LIST_ARGV: readonly string[] = [
  "nft",
  "-j",
  "-a",
  "list",
  "chain",
  NFT_FAMILY,
  NFT_TABLE,
  NFT_CHAIN,
];
/** argv of the harmless probe used by auto selection. */
export const NFT_PROBE_ARGV: readonly string[] = ["nft", "list", "tables"];
const NFT_APPLY_ARGV: readonly string[] = ["nft", "-f", "-"];

/**
 * The comment on both rules of a lease: `sumac svc=OWNER run=RUN lease=LEASE port=PORT` (ids are
 * checked; at most 127 bytes).
 */
export function nftTag(owner: string, ref: RuleRef): string {
  return `sumac svc=${owner} run=${ref.runId} lease=${ref.leaseId} port=${ref.port}`;
}

const TAG =
  /^sumac svc=([a-z0-9]{14}) run=([A-Za-z0-9][A-Za-z0-9._-]{0,39}) lease=([A-Za-z0-9][A-Za-z0-9._-]{0,39}) port=(\d{1,5})$/;
/** Tags of the format before lease domains (no owner): nobody can tell whose they are. */
const UNOWNED_TAG = /^sumac run=\S+ lease=\S+ port=\d+$/;

/** The owner, run, lease and port a comment names, or undefined when it is not a sumac tag. */
export function parseNftTag(comment: string): TaggedRule | undefined {
  const m = TAG.exec(comment);
  if (m === null) return undefined;
  const port = Number(m[4]);
  if (port < 1 || port > 65535) return undefined;
  return { owner: m[1] ?? "", runId: m[2] ?? "", leaseId: m[3] ?? "", port };
}

/**
 * The `nft -f -` input of one transaction: the table and chain declared when something is opened
 * (a no-op when they exist), the rules in `deletes` deleted (closed leases, and earlier opens of a
 * lease opened again), then each rule of `opens` added as its pair; with `dropTable` (nothing
 * opened, and the deletes empty the chain), sumac's table goes too.
 */
export function batchRuleset(
  owner: string,
  opens: readonly PortRule[],
  deletes: readonly number[],
  dropTable = false,
): string {
  const where = `${NFT_FAMILY} ${NFT_TABLE} ${NFT_CHAIN}`;
  const lines =
    opens.length === 0
      ? []
      : [
          `table ${NFT_FAMILY} ${NFT_TABLE} {`,
          `\tchain ${NFT_CHAIN} {`,
          `\t\ttype filter hook input priority filter; policy accept;`,
          `\t}`,
          `}`,
        ];
  for (const h of deletes) lines.push(`delete rule ${where} handle ${h}`);
  for (const rule of opens) {
    const r = checkRule(rule);
    const saddr = isIP(r.peer) === 4 ? "ip saddr" : "ip6 saddr";
    const comment = `comment "${nftTag(owner, r)}"`;
    lines.push(`insert rule ${where} ${saddr} ${r.peer} tcp dport ${r.port} accept ${comment}`);
    lines.push(`add rule ${where} tcp dport ${r.port} drop ${comment}`);
  }
  if (dropTable && opens.length === 0) lines.push(`delete table ${NFT_FAMILY} ${NFT_TABLE}`);
  lines.push("");
  return lines.join("\n");
}

/** The `nft -f -` input deleting rules by handle, and sumac's table after them with `dropTable`. */
export function deleteRuleset(handles: readonly number[], dropTable = false): string {
  const lines = handles.map((h) => `delete rule ${NFT_FAMILY} ${NFT_TABLE} ${NFT_CHAIN} handle ${h}\n`);
  if (dropTable) lines.push(`delete table ${NFT_FAMILY} ${NFT_TABLE}\n`);
  return lines.join("");
}

/** One rule of the chain as listed: its handle and comment (if any). */
export interface ListedRule {
  readonly handle: number;
  readonly comment?: string;
}

/** The rules in `nft -j -a list chain` output. Throws `FIREWALL_TOOL_FAILED` on output it cannot read. */
export function parseChainListing(json: string): ListedRule[] {
  if (json.length > MAX_LIST_BYTES)
    throw new FirewallError("FIREWALL_TOOL_FAILED", `nft listing is over ${MAX_LIST_BYTES} bytes`);
  let doc: unknown;
  try {
    doc = JSON.parse(json);
  } catch (cause) {
    throw new FirewallError("FIREWALL_TOOL_FAILED", "nft printed a listing that is not JSON", { cause });
  }
  const items = (doc as { nftables?: unknown } | null)?.nftables;
  if (!Array.isArray(items))
    throw new FirewallError("FIREWALL_TOOL_FAILED", "nft listing has no nftables array");
  const rules: ListedRule[] = [];
  for (const item of items as Array<{ rule?: { handle?: unknown; comment?: unknown } } | null>) {
    const handle = item?.rule?.handle;
    if (typeof handle !== "number" || !Number.isSafeInteger(handle)) continue;
    const comment = item?.rule?.comment;
    rules.push(typeof comment === "string" ? { handle, comment } : { handle });
  }
  return rules;
}

const asError = (e: unknown): Error => (e instanceof Error ? e : new Error(String(e)));

/** An open or a close waiting for its batch. */
interface Call {
  readonly kind: "open" | "close";
  /** The rule (checked) for an open; for a close, what names the rules. */
  readonly rule: PortRule | RuleRef;
  readonly tag: string;
  /** Settled (by its batch, or at once by an abort). */
  done: boolean;
  readonly resolve: (result: OpenResult | CloseResult) => void;
  readonly reject: (error: unknown) => void;
}

/**
 * The nftables backend. `run` defaults to real processes with a 10 s deadline; the integration
 * test passes one prefixed with `ip netns exec NS`. `lock` defaults to the host's
 * (`/run/sumac/nft.lock`), which every sumac process changing the table takes.
 */
export function createNftablesFirewall(
  options: FirewallOptions & { readonly run?: CommandRunner; readonly lock?: HostLock },
): Firewall {
  const owner = checkOwner(options.owner);
  const run = options.run ?? createCommandRunner();
  const hostLock = options.lock ?? createFlockLock();
  const serial = createSerialQueue();
  /** Calls waiting for the next batch; a batch is queued on `serial` when the first one comes. */
  let waiting: Call[] = [];

  /** The chain's rules (every sumac's), and whether the chain is there at all. */
  async function list(signal?: AbortSignal): Promise<{ exists: boolean; rules: ListedRule[] }> {
    const out = await run(NFT_LIST_ARGV, { signal });
    if (out.exitCode === 0) return { exists: true, rules: parseChainListing(out.stdout) };
    // No table or chain yet (never opened, or deleted when empty): nothing of ours.
    if (out.missing !== true && /No such file or directory/.test(out.stderr))
      return { exists: false, rules: [] };
    throw toolFailure("nft list chain", out, NOT_PERMITTED);
  }

  async function apply(what: string, ruleset: string, signal?: AbortSignal): Promise<void> {
    const out = await run(NFT_APPLY_ARGV, { stdin: ruleset, signal });
    if (out.exitCode !== 0 || out.missing === true)
      throw toolFailure(`nft -f - (${what})`, out, NOT_PERMITTED);
  }

  /** Runs `work` holding the host's lock: a listing and what is decided on it. */
  async function locked<T>(work: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    const release = await hostLock.acquire(signal);
    try {
      return await work();
    } finally {
      await release();
    }
  }

  const handlesOf = (rules: readonly ListedRule[], tag: string): number[] =>
    rules.filter((r) => r.comment === tag).map((r) => r.handle);

  const settle = (call: Call, outcome: { result: OpenResult | CloseResult } | { error: unknown }): void => {
    if (call.done) return;
    call.done = true;
    if ("result" in outcome) call.resolve(outcome.result);
    else call.reject(outcome.error);
  };

  /** The batch under the host's lock; failing to take it fails every call of the batch. */
  async function runBatch(calls: readonly Call[]): Promise<void> {
    if (calls.every((c) => c.done)) return;
    let release: () => Promise<void>;
    try {
      release = await hostLock.acquire();
    } catch (error) {
      for (const call of calls) settle(call, { error });
      return;
    }
    try {
      await runLockedBatch(calls);
    } finally {
      await release();
    }
  }

  /** One listing and one transaction for every call of the batch still wanted. */
  async function runLockedBatch(calls: readonly Call[]): Promise<void> {
    const wanted = calls.filter((c) => !c.done);
    if (wanted.length === 0) return;
    let rules: ListedRule[];
    try {
      ({ rules } = await list());
    } catch (error) {
      for (const call of wanted) settle(call, { error });
      return;
    }
    const opens: PortRule[] = [];
    const deletes: number[] = [];
    const applied: Call[] = [];
    for (const call of wanted) {
      const handles = handlesOf(rules, call.tag);
      if (call.kind === "close" && handles.length === 0) {
        settle(call, { result: { backend: "nftables", removed: false } });
        continue;
      }
      deletes.push(...handles);
      if (call.kind === "open") opens.push(call.rule as PortRule);
      applied.push(call);
    }
    if (applied.length === 0) return;
    // The last rules of the chain go: the table goes with them, so no empty table stays behind.
    const emptied = opens.length === 0 && deletes.length === rules.length;
    try {
      const what = applied.length > 1 ? `${applied.length} changes` : (applied[0]?.kind ?? "");
      await apply(what, batchRuleset(owner, opens, deletes, emptied));
    } catch (error) {
      if (applied.length === 1) settle(applied[0]!, { error });
      // Which one failed is not known: each alone, so that each gets its own outcome.
      else for (const call of applied) await runLockedBatch([call]);
      return;
    }
    for (const call of applied) {
      const result: OpenResult | CloseResult =
        call.kind === "open"
          ? { backend: "nftables", registered: true, tag: call.tag }
          : { backend: "nftables", removed: true };
      settle(call, { result });
    }
  }

  function enqueue(kind: Call["kind"], rule: PortRule | RuleRef, signal?: AbortSignal): Promise<never> {
    if (signal?.aborted === true) return Promise.reject(asError(signal.reason));
    return new Promise((resolve, reject) => {
      const onAbort = (): void => settle(call, { error: signal?.reason });
      const call: Call = {
        kind,
        rule,
        tag: nftTag(owner, rule),
        done: false,
        resolve: (result) => {
          signal?.removeEventListener("abort", onAbort);
          resolve(result as never);
        },
        reject: (error) => {
          signal?.removeEventListener("abort", onAbort);
          reject(asError(error));
        },
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      waiting.push(call);
      if (waiting.length > 1) return;
      void serial(() => {
        const batch = waiting;
        waiting = [];
        return runBatch(batch);
      });
    });
  }

  return {
    backend: "nftables",

    open(rule: PortRule, { signal }: CallOptions = {}): Promise<OpenResult> {
      try {
        return enqueue("open", checkRule(rule), signal);
      } catch (error) {
        return Promise.reject(asError(error));
      }
    },

    close(ref: RuleRef, { signal }: CallOptions = {}): Promise<CloseResult> {
      try {
        checkRef(ref);
      } catch (error) {
        return Promise.reject(asError(error));
      }
      return enqueue("close", ref, signal);
    },

    async sweep(isLive: IsLive, { signal }: CallOptions = {}): Promise<SweepResult> {
      return serial(async () => {
        const byTag = new Map<string, TaggedRule>();
        let foreign = 0;
        // The lease service is asked with the lock released (it may take a while, over the
        // network); what is judged dead is deleted by its tag from a listing made anew under it.
        const { exists, rules } = await locked(() => list(signal), signal);
        for (const r of rules) {
          const tagged = r.comment === undefined ? undefined : parseNftTag(r.comment);
          if (tagged === undefined || r.comment === undefined) {
            // Another sumac's rule in the older format: whose lease it is, nobody can tell.
            if (r.comment !== undefined && UNOWNED_TAG.test(r.comment)) foreign++;
            continue;
          }
          if (tagged.owner !== owner) {
            foreign++;
            continue;
          }
          byTag.set(r.comment, tagged);
        }
        const kept: TaggedRule[] = [];
        const deadTags = new Map<string, TaggedRule>();
        for (const [tag, rule] of byTag) {
          if (await isLive({ runId: rule.runId, leaseId: rule.leaseId })) kept.push(rule);
          else deadTags.set(tag, rule);
        }
        if (deadTags.size === 0 && (!exists || rules.length > 0)) return { removed: [], kept, foreign };
        const removed = await locked(async () => {
          const now = await list(signal);
          const dead = now.rules.filter((r) => r.comment !== undefined && deadTags.has(r.comment));
          // An empty chain (left by an earlier version, or emptied now) takes the table with it.
          const emptied = now.exists && dead.length === now.rules.length;
          if (dead.length > 0 || emptied)
            await apply(
              "sweep",
              deleteRuleset(
                dead.map((r) => r.handle),
                emptied,
              ),
              signal,
            );
          const gone = new Set(dead.map((r) => r.comment));
          return [...deadTags].filter(([tag]) => gone.has(tag)).map(([, rule]) => rule);
        }, signal);
        return { removed, kept, foreign };
      });
    },
  };
}
