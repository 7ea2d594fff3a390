/**
 * The summary at the end of a run: a table of targets (status, exit code, components, duration,
 * failure), the counts, the exit code with its meaning, and where the report is.
 */
import { describeExitCode } from "../run/exit-codes.ts";
import { clip, componentsText, errorText, formatDuration, table } from "./format.ts";
import type { RunResult } from "../run/types.ts";
import { printable } from "../base/text.ts";

/** Above this many targets, only those that did not succeed are listed (the report has them all). */
export const SUMMARY_ROWS = 100;

export function summaryText(result: RunResult, width = 120): string {
  const { report } = result;
  const all = report.targets;
  const listed = all.length > SUMMARY_ROWS ? all.filter((t) => t.status !== "succeeded") : all;
  const rows = [["TARGET", "STATUS", "EXIT", "COMPONENTS", "DURATION", "FAILURE"]];
  for (const t of listed.slice(0, SUMMARY_ROWS)) {
    // Ids, components and failures may hold what a target sent: escaped before the widths count.
    const cells = [
      t.id,
      t.status,
      String(t.exitCode),
      componentsText(t),
      formatDuration(t.durationMs),
      t.failure ? clip(printable(errorText(t.failure)), Math.max(30, width - 60)) : "",
    ];
    rows.push(cells.map(printable));
  }
  const lines = [table(rows)];
  const hidden = all.length - Math.min(listed.length, SUMMARY_ROWS);
  if (hidden > 0) lines.push(`(${hidden} more target(s) not listed: see the report)`);
  const c = report.counts;
  const verb = report.command === "inventory" ? "inventory" : "deploy";
  lines.push(
    `${verb} ${report.runId}: ${c.succeeded} succeeded, ${c.failed} failed, ${c.cancelled} cancelled ` +
      `of ${c.total} in ${formatDuration(report.durationMs)}; exit ${report.exitCode} (${describeExitCode(report.exitCode)})`,
  );
  for (const w of result.warnings) lines.push(`warning: ${printable(w)}`);
  lines.push(
    result.reportPath === null ? "report: not written (see the warnings)" : `report: ${result.reportPath}`,
  );
  return `${lines.join("\n")}\n`;
}
