/**
 * The one failure of loading a job file: `JobFileError` (code `BAD_JOB`), carrying every problem
 * found, each with its place in the file, so the command line can print them as a compiler does and
 * exit with 254 (bad input).
 */
import { errorClass } from "../../base/errors.ts";

/** One thing wrong with a job file, at one place in it. */
export interface JobProblem {
  /** The job file, as the user named it. */
  readonly file: string;
  /** 1-based. */
  readonly line: number;
  /** 1-based, in characters. */
  readonly column: number;
  /** Where in the document, e.g. `targets[1].port`; empty for the document itself. */
  readonly path: string;
  /** What is wrong, e.g. `70000 is not a valid port`. Never holds a secret's value. */
  readonly message: string;
  /** What would be right, e.g. `an integer from 1 to 65535`; absent when nothing useful can be said. */
  readonly expected?: string;
}

/** At most this many problems are kept: past that, more lines help nobody. */
export const MAX_PROBLEMS = 50;

/** One problem as a compiler prints it: `file:line:column: path: message (expected ...)`. */
export function formatProblem(p: JobProblem): string {
  const where = p.path === "" ? "" : `${p.path}: `;
  const expected = p.expected === undefined ? "" : ` (expected ${p.expected})`;
  return `${p.file}:${p.line}:${p.column}: ${where}${p.message}${expected}`;
}

/**
 * A job file that cannot be used: unreadable, too large, not YAML, not a job, or naming files that
 * are not there. Never retryable: the file must be changed.
 *
 * @example
 * try { await loadJob(path) } catch (e) {
 *   if (e instanceof JobFileError) { stderr.write(e.format() + "\n"); return ExitCode.badInput }
 *   throw e
 * }
 */
export class JobFileError extends errorClass("BAD_JOB") {
  /** In file order; at least one; at most {@link MAX_PROBLEMS}. */
  readonly problems: readonly JobProblem[];
  /** How many were found before the list was cut to {@link MAX_PROBLEMS}. */
  readonly total: number;

  constructor(problems: readonly JobProblem[], options?: ErrorOptions) {
    if (problems.length === 0) throw new RangeError("a JobFileError needs at least one problem");
    const sorted = [...problems].sort((a, b) => a.line - b.line || a.column - b.column);
    const first = sorted[0] as JobProblem;
    const more = sorted.length > 1 ? ` (and ${sorted.length - 1} more)` : "";
    super(`${formatProblem(first)}${more}`, options);
    this.problems = sorted.slice(0, MAX_PROBLEMS);
    this.total = sorted.length;
  }

  /** Every problem on its own line, in file order, as `file:line:column: message (expected ...)`. */
  format(): string {
    const lines = this.problems.map(formatProblem);
    if (this.total > this.problems.length)
      lines.push(`${this.problems[0]?.file}: ${this.total - this.problems.length} more problems not shown`);
    return lines.join("\n");
  }
}
