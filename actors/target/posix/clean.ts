/**
 * `sumac clean` on a Linux target (or this machine): what runs of sumac left there, found by the
 * marks sumac puts on everything, and removed. One command, run as root:
 *
 * - agents: processes whose argument list is a Node running a bundle under the run root with a
 *   `sumac-run=<run>:<target>` marker (the start command's exec, posix/agent-process.ts), sent TERM
 *   (the agent then removes its files and firewall rule and keeps its log) and KILL if still
 *   there after the grace;
 * - run directories: `<runRoot>/<run id>` (the cache, `<runRoot>/cache`, is kept: it is opt-in and
 *   keyed by hash);
 * - firewall rules: the rules of the agents' nftables table (`inet sumac_agent`) tagged with a
 *   `sumac run=` comment, and the table once empty.
 *
 * Logs (`/var/log/sumac`) are kept. Prints one line per thing found: `agent <pid> <marker>
 * stopped|killed`, `rundir <name>`, `rule <handle> <comment>`, then `done`.
 */
import { errorClass } from "../../../base/errors.ts";
import { oneLine } from "../../../base/text.ts";
import type { RemoteShell } from "../../remote.ts";
import { shellQuote } from "../../ssh/become.ts";
import { NFT_CHAIN, NFT_FAMILY, NFT_TABLE } from "../../../agent/protocol/firewall-rule.ts";

/** A run's id, as run/paths.ts makes them (what a run directory is named). */
export const RUN_ID_PATTERN = "[0-9]{8}-[0-9]{6}-[0-9]{3}-[0-9a-f]{6}";

/** How long agents have to stop on TERM before KILL. */
const GRACE_ROUNDS = 50;

export function posixCleanCommand(runRoot: string): string {
  const root = shellQuote(runRoot);
  const table = `${NFT_FAMILY} ${NFT_TABLE}`;
  return [
    "set -u",
    `root=${root}`,
    "pids=",
    // An agent: argv[1] is a bundle under the run root, argv[2] the marker.
    `for d in /proc/[0-9]*; do p=\${d#/proc/}; [ "$p" = "$$" ] && continue; ` +
      `set -- $(tr '\\0' '\\n' < "$d/cmdline" 2>/dev/null | head -3 | tr '\\n' ' ') ; [ $# -ge 3 ] || continue; ` +
      `case "$2" in "$root"/*) ;; *) continue ;; esac; case "$3" in sumac-run=*) ;; *) continue ;; esac; ` +
      `pids="$pids $p"; echo "agent $p $3 found"; done`,
    'if [ -n "$pids" ]; then kill -TERM $pids 2>/dev/null; i=0; ' +
      `while [ $i -lt ${GRACE_ROUNDS} ]; do alive=; for p in $pids; do [ -d /proc/$p ] && ! grep -q '^State:.*Z' /proc/$p/status 2>/dev/null && alive="$alive $p"; done; [ -z "$alive" ] && break; sleep 0.2; i=$((i+1)); done; ` +
      'for p in $pids; do if [ -d /proc/$p ] && ! grep -q "^State:.*Z" /proc/$p/status 2>/dev/null; then kill -KILL $p 2>/dev/null; echo "agent $p killed"; else echo "agent $p stopped"; fi; done; fi',
    // Run directories (never the cache, never anything not named as a run).
    `if [ -d "$root" ] && [ ! -L "$root" ]; then for d in "$root"/*; do n=\${d##*/}; ` +
      `printf '%s\\n' "$n" | grep -Eqx '${RUN_ID_PATTERN}' || continue; [ -L "$d" ] && { rm -f "$d"; echo "rundir $n"; continue; }; ` +
      `rm -rf -- "$d" && echo "rundir $n"; done; fi`,
    // The agents' firewall rules, by their comment, and the table once empty.
    `if command -v nft >/dev/null 2>&1 && nft list table ${table} >/dev/null 2>&1; then ` +
      `nft -a list chain ${table} ${NFT_CHAIN} 2>/dev/null | sed -n 's/.*comment "\\(sumac run=[^"]*\\)".*# handle \\([0-9]*\\).*/\\2 \\1/p' | ` +
      `while read -r h c; do nft delete rule ${table} ${NFT_CHAIN} handle "$h" && echo "rule $h $c"; done; ` +
      // Its other agents' rules keep the table (listed as JSON: a rule is a "rule" object).
      `nft -j list chain ${table} ${NFT_CHAIN} 2>/dev/null | grep -q '"rule"' || nft delete table ${table} 2>/dev/null; fi`,
    "echo done",
  ].join("\n");
}

/** The command's output as the lines sumac says; undefined when it did not finish (`done`). */
export function describePosixClean(stdout: string): string[] | undefined {
  const lines = stdout.split("\n").map((l) => l.trim());
  if (!lines.includes("done")) return undefined;
  const said: string[] = [];
  for (const line of lines) {
    const agent = /^agent (\d+) (stopped|killed)$/.exec(line);
    if (agent) said.push(`agent process ${agent[1]} ${agent[2] === "killed" ? "killed" : "stopped on TERM"}`);
    const dir = /^rundir (\S+)$/.exec(line);
    if (dir) said.push(`run directory ${dir[1]} removed`);
    const rule = /^rule (\d+) (sumac run=.*)$/.exec(line);
    if (rule) said.push(`firewall rule "${rule[2]}" removed`);
  }
  return said;
}

/** Runs the clean command through a session's shell, as root; resolves with what was done. */
export async function cleanPosixTarget(
  connection: { readonly shell: RemoteShell; readonly files: { readonly runRoot: string } },
  signal: AbortSignal,
): Promise<string[]> {
  const result = await connection.shell.exec(posixCleanCommand(connection.files.runRoot), {
    become: true,
    timeoutMs: 120_000,
    signal,
    maxOutputBytes: 1024 * 1024,
  });
  const said = describePosixClean(result.stdout);
  if (result.exitCode !== 0 || said === undefined)
    throw new CleanFailedError(
      `the clean command failed (exit ${String(result.exitCode)}): ${oneLine(result.stderr.trim(), 500)}`,
    );
  return said;
}

/** The clean of a target did not finish. */
export class CleanFailedError extends errorClass("CLEAN_FAILED") {}
