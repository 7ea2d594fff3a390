/**
 * Loading a job file: read (at most 1 MiB), parse the YAML keeping positions, check it against the
 * schema, then the checks across fields and the files it names, and hand back a `Job` with every
 * default filled in. Whatever is wrong is one `JobFileError` listing every problem with its file,
 * line and column. Stages run in order and stop at the first that finds problems: a schema check of
 * a file that is not valid YAML would only add noise.
 */
import { resolve } from "node:path";
import { JobFileError } from "./errors.ts";
import { issuesToProblems } from "./issues.ts";
import { normaliseJob } from "./normalise.ts";
import { JobSchema } from "./schema.ts";
import { MAX_JOB_BYTES, parseJobSource, readJobText, toValue } from "./source.ts";
import type { Job } from "./types.ts";

export type * from "./types.ts";
export { JobFileError, formatProblem, type JobProblem } from "./errors.ts";

export interface LoadOptions {
  /** Largest file accepted; default {@link MAX_JOB_BYTES} (1 MiB). */
  readonly maxBytes?: number;
}

/**
 * The job in `file` (YAML), checked and with its defaults filled in.
 *
 * @throws {JobFileError} (code `BAD_JOB`) listing every problem, each at its file, line and column.
 * @example
 * const job = await loadJob("examples/quickstart.yaml");
 * job.targets[0].transport // "local"
 */
export async function loadJob(file: string, options: LoadOptions = {}): Promise<Job> {
  const text = await readJobText(file, options.maxBytes ?? MAX_JOB_BYTES);
  return parseJob(text, file);
}

/**
 * The job in `text`, as if read from `file`: relative paths in it resolve against `file`'s
 * directory, and messages name `file`.
 *
 * @throws {JobFileError} as {@link loadJob}.
 */
export async function parseJob(text: string, file: string): Promise<Job> {
  const { source, problems } = parseJobSource(file, text);
  if (problems.length > 0) throw new JobFileError(problems);
  const value = toValue(source);
  if (value === null || value === undefined)
    throw new JobFileError([
      {
        file,
        line: 1,
        column: 1,
        path: "",
        message: "the job file is empty",
        expected: "a mapping with targets and package",
      },
    ]);
  const parsed = JobSchema.safeParse(value, { reportInput: true });
  // No `cause` here: zod's error holds the input values, and one of them may be a secret typed inline.
  if (!parsed.success) throw new JobFileError(issuesToProblems(parsed.error.issues, source, JobSchema));
  const result = await normaliseJob(parsed.data, source, resolve(file));
  if (!result.job) throw new JobFileError(result.problems);
  return result.job;
}
