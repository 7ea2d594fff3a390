/**
 * A run's report (`<runDir>/report.json`, shape in report-types.ts): built from the targets'
 * results, written atomically (a temporary file in the same directory, synced, then renamed), so
 * a reader never sees half a report.
 */
import { open, rename, rm } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import type { StepFailure } from "../machines/target/types.ts";
import type { Job, JobTarget } from "./job/types.ts";
import { runExitCode, targetExitCode } from "./exit-codes.ts";
import { targetLogDirOf } from "./paths.ts";
import { safeJson } from "../base/text.ts";
import {
  REPORT_VERSION,
  type ComponentReport,
  type FailureReport,
  type RunReport,
  type TargetReport,
} from "./report-types.ts";
import type { TargetResult } from "./target-run.ts";
import type { RunFlags } from "./types.ts";

export type * from "./report-types.ts";

function failureReport(f: StepFailure): FailureReport {
  return {
    step: f.step,
    code: f.code,
    message: f.message,
    retryable: f.retryable,
    kind: f.kind,
    attempts: f.attempts,
    ...(f.componentId === undefined ? {} : { component: f.componentId }),
    at: f.at,
  };
}

/** Each component's before, decision and after, from the plan and the installs' results. */
export function componentReports(result: TargetResult, inventoryOnly: boolean): ComponentReport[] {
  const { plan, results } = result.outcome;
  if (plan === null) return [];
  return plan.map((p) => {
    const done = results.find((r) => r.id === p.id);
    const base = {
      id: p.id,
      version: p.version,
      before: p.installedVersion,
      action: p.action,
      reason: p.reason,
      rebootNeeded: false,
    };
    if (p.action === "skip") return { ...base, after: p.installedVersion, result: "skipped" };
    if (inventoryOnly) return { ...base, after: p.installedVersion, result: "planned" };
    if (done?.status === "installed")
      return { ...base, after: p.version, result: "installed", rebootNeeded: done.rebootNeeded };
    // After a failed install sumac cannot tell what is there: it reports what was there before.
    return { ...base, after: p.installedVersion, result: done?.status === "failed" ? "failed" : "not-run" };
  });
}

function transportOf(target: JobTarget): TargetReport["transport"] {
  return target.transport;
}

/** One target's part of the report. */
export function targetReport(result: TargetResult, logDir: string, inventoryOnly: boolean): TargetReport {
  const { outcome, context, target } = result;
  const session = context?.session;
  const leases = session?.leases ?? null;
  let failure: FailureReport | null = null;
  if (result.machineError) {
    failure = {
      step: null,
      code: result.machineError.code,
      message: result.machineError.message,
      retryable: false,
      kind: "internal",
      attempts: 0,
      at: result.finishedAt,
    };
  } else if (outcome.status === "failed") {
    failure = failureReport(outcome.failure);
  }
  const logs = context?.logs ?? null;
  return {
    id: target.id,
    host: target.host,
    transport: transportOf(target),
    status: outcome.status,
    exitCode: targetExitCode(outcome, inventoryOnly),
    startedAt: result.startedAt,
    finishedAt: result.finishedAt,
    durationMs: result.startedAt === null ? 0 : Math.max(0, result.finishedAt - result.startedAt),
    inventoried: outcome.plan !== null,
    installed: outcome.results.some((r) => r.status === "installed"),
    rebootNeeded: outcome.rebootNeeded,
    failure,
    secondaryFailures: outcome.secondaryFailures.map(failureReport),
    leftovers: outcome.leftovers,
    steps: [...result.steps],
    components: componentReports(result, inventoryOnly),
    ports:
      leases === null
        ? null
        : {
            workstationPort: leases.workstationPort,
            callbackPort: leases.callbackPort,
            agentPort: session?.agentPort ?? leases.agentPort,
            leasedAgentPort: leases.agentPort,
          },
    logs: logs === null ? null : { location: logs.location, files: logs.files, bytes: logs.bytes },
    logDir,
  };
}

/** What the run's report says besides its targets. */
export interface RunFacts {
  readonly runId: string;
  readonly job: Job;
  readonly flags: RunFlags;
  readonly bus: "embedded" | "nats";
  readonly stateDir: string;
  readonly runDir: string;
  readonly startedAt: number;
  readonly finishedAt: number;
  readonly interrupted: "none" | "graceful" | "force";
  readonly warnings: string[];
}

/** The run's report from its targets' results (in job order). */
export function runReport(facts: RunFacts, results: readonly TargetResult[]): RunReport {
  const { job, flags } = facts;
  const targets = results.map((r) =>
    targetReport(r, targetLogDirOf(facts.runDir, r.target.id), flags.inventoryOnly),
  );
  const count = (status: string) => targets.filter((t) => t.status === status).length;
  const counts = {
    total: targets.length,
    succeeded: count("succeeded"),
    failed: count("failed"),
    cancelled: count("cancelled"),
  };
  const status =
    counts.cancelled > 0 ? "cancelled" : counts.succeeded === counts.total ? "succeeded" : "failed";
  return {
    version: REPORT_VERSION,
    runId: facts.runId,
    command: flags.inventoryOnly ? "inventory" : "deploy",
    job: {
      name: job.name,
      file: job.file,
      package: job.package.name,
      components: job.package.components.length,
    },
    flags: { inventoryOnly: flags.inventoryOnly, rewrite: flags.rewrite, downgrade: flags.downgrade },
    bus: facts.bus,
    stateDir: facts.stateDir,
    runDir: facts.runDir,
    startedAt: facts.startedAt,
    finishedAt: facts.finishedAt,
    durationMs: Math.max(0, facts.finishedAt - facts.startedAt),
    status,
    exitCode: runExitCode(targets.map((t) => t.exitCode)),
    interrupted: facts.interrupted,
    counts,
    targets,
    warnings: facts.warnings,
  };
}

/**
 * Writes `value` as JSON to `path` atomically, mode 0600; controls a target sent are escaped
 * (`safeJson`), so that `cat report.json` shows them rather than runs them.
 */
export async function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
  const handle = await open(tmp, "w", 0o600);
  try {
    await handle.writeFile(`${safeJson(value, 2)}\n`);
    await handle.sync();
  } catch (error) {
    await handle.close();
    await rm(tmp, { force: true });
    throw error;
  }
  await handle.close();
  await rename(tmp, path);
}
