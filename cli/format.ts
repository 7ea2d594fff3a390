/** Text for the operator: durations, a target's state in a few words, tables. */
import type { TargetError } from "../run/events/subjects.ts";
import type { FailureReport, TargetReport } from "../run/report-types.ts";
import type { TargetStateEvent } from "../run/types.ts";

/** `850ms`, `4.2s`, `1m03s`, `2h05m`. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.max(0, Math.round(ms))}ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s`;
  const s = Math.floor(ms / 1000);
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}

/** At most `width` characters, the last one `…` when cut. */
export function clip(text: string, width: number): string {
  if (width <= 0) return "";
  return text.length > width ? `${text.slice(0, Math.max(0, width - 1))}…` : text;
}

/** `install hello: CODE: message`. */
export function errorText(error: (TargetError & { component?: string }) | FailureReport): string {
  const where = error.step === null ? "sumac" : error.step;
  const comp = error.component;
  return `${where}${comp ? ` ${comp}` : ""}: ${error.code}: ${error.message.replace(/\s+/g, " ")}`;
}

/** A target's state as one phrase: `connecting (connect, attempt 2)`, `exchanging: install hello`. */
export function stateText(
  e: Pick<TargetStateEvent, "to" | "step" | "attempt" | "component" | "retrying" | "error">,
): string {
  if (e.to === "failed" || e.to === "succeeded" || e.to === "cancelled" || e.step === undefined) {
    return e.to === "failed" && e.error ? `failed: ${errorText(e.error)}` : e.to;
  }
  const step = `${e.step}${e.component ? ` ${e.component}` : ""}`;
  const attempt = (e.attempt ?? 1) > 1 ? `, attempt ${e.attempt}` : "";
  const base =
    e.to === "exchanging" || e.to === "shuttingDown"
      ? `${e.to}: ${step}${attempt ? ` (${attempt.slice(2)})` : ""}`
      : `${e.to} (${step}${attempt})`;
  if (e.retrying && e.error) return `${base}: ${e.error.code}, retrying`;
  if (e.error) return `${base} after ${errorText(e.error)}`;
  return base;
}

/** `2 installed, 1 skipped`; `-` before an inventory. */
export function componentsText(t: TargetReport): string {
  if (!t.inventoried) return "-";
  const counts = new Map<string, number>();
  for (const c of t.components) {
    const word = c.result === "planned" ? "to install" : c.result;
    counts.set(word, (counts.get(word) ?? 0) + 1);
  }
  return [...counts].map(([word, n]) => `${n} ${word}`).join(", ") || "none";
}

/** Columns padded to their widest cell; the last column is not padded. */
export function table(rows: readonly (readonly string[])[]): string {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows
    .map((row) =>
      row
        .map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? 0)))
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}
