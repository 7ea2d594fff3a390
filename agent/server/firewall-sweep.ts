/**
 * The crash sweep of Windows Firewall rules, run by an agent at its start before it adds its own:
 * an agent that was killed (or whose host rebooted) never removed its rule, and nothing else on
 * the target would. Agents' run directories are siblings under one run root
 * (`C:\Windows\Temp\sumac\<run>`), so an agent judges another run's rule by that run's directory:
 * an out file whose agent said it stopped (or failed, after which it exits) means no agent of that
 * run is left to need its rule. A directory that is not there keeps the rule: the run may be under
 * another run root (a job option), its agent alive; what a dead workstation's agent left is for
 * the forced stop's kill service or `sumac clean`.
 *
 * Only rules named by `ruleComment` are looked at, never the current run's (another target's
 * agent of this run may share the host), and only runs whose name is one plain directory name.
 * A directory that cannot be read, or is not a plain directory, keeps its rules.
 */
import { lstat } from "node:fs/promises";
import { join } from "node:path";
import { completeEvents, DIALOGUE_FILES } from "../protocol/files-dialogue.ts";
import { ruleCommentRun } from "../protocol/firewall-rule.ts";
import type { FirewallResult } from "./firewall.ts";
import { deleteNetshRule, listNetshRules, type NetshRunner } from "./firewall-netsh.ts";
import { readSmallFile } from "./small-file.ts";

/**
 * Runs whose directory the sweep may look up: names that `ruleComment` leaves unchanged and that
 * are one directory name (no separator, not `.` or `..`).
 */
const PLAIN_RUN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
/** An agent's out file is a few lines; one larger is not read, and its rules stay. */
const MAX_OUT_FILE_BYTES = 1024 * 1024;

/** A rule the sweep may delete once its run is found over. */
export interface SweepCandidate {
  readonly name: string;
  readonly runId: string;
}

/**
 * The rules of `names` (a listing) that belong to other runs than `currentRunId`, once each
 * (Windows allows two rules of one name; deleting the name deletes both).
 */
export function sweepCandidates(names: readonly string[], currentRunId: string): SweepCandidate[] {
  const current = currentRunId.toLowerCase();
  const seen = new Set<string>();
  const candidates: SweepCandidate[] = [];
  for (const name of names) {
    const runId = ruleCommentRun(name);
    // Windows compares rule and file names without case: so does the sweep.
    if (runId === undefined || !PLAIN_RUN.test(runId) || runId.toLowerCase() === current) continue;
    if (seen.has(name.toLowerCase())) continue;
    seen.add(name.toLowerCase());
    candidates.push({ name, runId });
  }
  return candidates;
}

/** Whether a run's agent is over: `gone` (no directory), `stopped` (its out file says so), `live`. */
export type RunState = "gone" | "stopped" | "live";

/** The state of the run whose directory is `runDir`; `live` whenever that cannot be told. */
export async function runState(runDir: string): Promise<RunState> {
  try {
    const dir = await lstat(runDir);
    if (!dir.isDirectory()) return "live";
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "ENOENT" ? "gone" : "live";
  }
  let text: string;
  try {
    text = (await readSmallFile(join(runDir, DIALOGUE_FILES.out), MAX_OUT_FILE_BYTES)).toString("utf8");
  } catch {
    // No out file yet: the workstation is still setting the run up.
    return "live";
  }
  const over = completeEvents(text).some((e) => e.event === "stopped" || e.event === "failed");
  return over ? "stopped" : "live";
}

/** What the sweep did; `failed` holds the listing's or a deletion's failure. */
export interface SweepResult {
  readonly removed: readonly string[];
  readonly kept: readonly string[];
  readonly failed: readonly FirewallResult[];
}

/**
 * Lists the inbound rules and deletes those of other runs whose directory under `runRoot` is gone
 * or whose agent stopped. Never throws: failures are in the result, for the log.
 */
export async function sweepDeadRunRules(options: {
  /** The directory holding the runs' directories: the parent of the bundle's. */
  readonly runRoot: string;
  readonly currentRunId: string;
  readonly netsh: NetshRunner;
  /** Default {@link runState}. */
  readonly stateOf?: (runDir: string) => Promise<RunState>;
}): Promise<SweepResult> {
  const stateOf = options.stateOf ?? runState;
  const removed: string[] = [];
  const kept: string[] = [];
  const failed: FirewallResult[] = [];
  try {
    const listed = await listNetshRules(options.netsh);
    if ("failed" in listed) return { removed, kept, failed: [listed.failed] };
    for (const candidate of sweepCandidates(listed.names, options.currentRunId)) {
      // Only a run whose agent said it ended: a run directory missing here may be another run
      // root's (another job's option), whose agent lives (`sumac clean` removes the rest).
      if ((await stateOf(join(options.runRoot, candidate.runId))) !== "stopped") {
        kept.push(candidate.name);
        continue;
      }
      const result = await deleteNetshRule(candidate.name, options.netsh);
      if (result.status === "removed" || result.status === "absent") removed.push(candidate.name);
      else failed.push(result);
    }
  } catch (error) {
    // The agent starts the sweep and awaits it later: it must not reject meanwhile.
    const detail = `sweep: ${error instanceof Error ? error.message : String(error)}`;
    failed.push({ status: "failed", reason: "netsh-error", detail });
  }
  return { removed, kept, failed };
}
