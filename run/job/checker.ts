/**
 * The checks after the schema collect their problems here, each at its place in the file, and the
 * files the job names are checked all at once at the end.
 */
import type { Stats } from "node:fs";
import { stat } from "node:fs/promises";
import { homedir } from "node:os";
import { resolve } from "node:path";
import type { JobProblem } from "./errors.ts";
import { pathText } from "./issues.ts";
import { placeOf, type DocPath, type JobSource } from "./source.ts";

const STAT_CONCURRENCY = 16;

/** Collects problems and the files to check, then checks the files all at once. */
export class Checker {
  readonly problems: JobProblem[] = [];
  readonly source: JobSource;
  // Keyed by place: values from `defaults:` are checked once per target that takes them.
  readonly #seen = new Set<string>();
  readonly #files = new Map<string, { path: DocPath; written: string; absolute: string; what: string }>();
  readonly #dir: string;
  constructor(source: JobSource, dir: string) {
    this.source = source;
    this.#dir = dir;
  }

  problem(path: DocPath, message: string, expected?: string, at: "value" | "key" = "value"): void {
    const { line, column } = placeOf(this.source, path, at);
    const key = `${line}:${column}:${message}`;
    if (this.#seen.has(key)) return;
    this.#seen.add(key);
    const p = { file: this.source.file, line, column, path: pathText(path), message };
    this.problems.push(expected === undefined ? p : { ...p, expected });
  }

  /** `written` made absolute (against the job's directory, `~/` against home), to be checked later. */
  file(path: DocPath, written: string, what: string): string {
    const absolute = written.startsWith("~/")
      ? resolve(homedir(), written.slice(2))
      : resolve(this.#dir, written);
    this.#files.set(pathText(path), { path, written, absolute, what });
    return absolute;
  }

  async checkFiles(): Promise<void> {
    // A few at a time: a job may name thousands of files, and stat() calls share libuv's pool.
    const queue = [...this.#files.values()];
    const results: { f: (typeof queue)[number]; info: Stats | NodeJS.ErrnoException }[] = [];
    const worker = async (): Promise<void> => {
      for (let f = queue.shift(); f !== undefined; f = queue.shift())
        results.push({ f, info: await stat(f.absolute).catch((e: NodeJS.ErrnoException) => e) });
    };
    await Promise.all(Array.from({ length: Math.min(STAT_CONCURRENCY, queue.length) }, worker));
    for (const { f, info } of results) {
      if (info instanceof Error) {
        const why =
          info.code === "ENOENT" ? "does not exist" : `cannot be read (${info.code ?? info.message})`;
        const message = `${f.what} ${JSON.stringify(f.written)} ${why} (looked at ${f.absolute})`;
        this.problem(f.path, message, "a path relative to the job file's directory");
      } else if (!info.isFile()) {
        this.problem(
          f.path,
          `${f.what} ${JSON.stringify(f.written)} is not a regular file`,
          "a file, not a directory",
        );
      }
    }
  }
}
