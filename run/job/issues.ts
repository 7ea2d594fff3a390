/**
 * Zod's issues in a user's words, at their place in the file: `missing field "host"`, `unknown key
 * "hots"; did you mean "host"?`, `70000 is not a valid port`, with what was expected. The words for
 * each field come from the schema itself (`expectations` in `schema-parts.ts`), found by walking the
 * schema along the issue's path.
 */
import type { z } from "zod";
import type { JobProblem } from "./errors.ts";
import { expectations, type Expectation } from "./schema-parts.ts";
import { placeOf, scalarSourceAt, type DocPath, type JobSource } from "./source.ts";

type Issue = z.core.$ZodIssue;
type Schema = z.core.$ZodType;

/** `targets[1].auth.password` */
export function pathText(path: DocPath): string {
  let out = "";
  for (const s of path) out += typeof s === "number" ? `[${s}]` : out === "" ? s : `.${s}`;
  return out;
}

/** Edit distance with transpositions (optimal string alignment), for "did you mean". */
function distance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  const at = (i: number, j: number): number => d[i]?.[j] ?? 0;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        best = Math.min(best, at(i - 2, j - 2) + 1);
      (d[i] as number[])[j] = best;
    }
  }
  return at(a.length, b.length);
}

/** The known key closest to `key`, when it is close enough to be a slip of the fingers. */
export function didYouMean(key: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const k of known) {
    const d = k.toLowerCase() === key.toLowerCase() ? 0 : distance(key, k);
    if (d < bestDistance) [best, bestDistance] = [k, d];
  }
  return bestDistance <= Math.max(1, Math.floor(key.length / 3)) ? best : undefined;
}

interface Def {
  type: string;
  innerType?: Schema;
  in?: Schema;
  shape?: Record<string, Schema>;
  element?: Schema;
  options?: Schema[];
}

const defOf = (s: Schema): Def => s._zod.def;

/** The schemas met at one place: wrappers (optional, default) first, the inner schema last. */
function layers(schema: Schema): Schema[] {
  const out = [schema];
  for (let s = schema; ;) {
    const d = defOf(s);
    const next = d.innerType ?? (d.type === "pipe" ? d.in : undefined);
    if (next === undefined) return out;
    out.push(next);
    s = next;
  }
}

/** The schema at `path`, through wrappers and unions (the option that has the next key). */
function schemaAt(root: Schema, path: DocPath): Schema | undefined {
  let current: Schema | undefined = root;
  for (const segment of path) {
    if (current === undefined) return undefined;
    const candidates: Schema[] = layers(current).flatMap((s) =>
      defOf(s).type === "union" ? (defOf(s).options ?? []).flatMap(layers) : [s],
    );
    current = undefined;
    for (const c of candidates) {
      const d = defOf(c);
      if (d.type === "object" && typeof segment === "string" && d.shape?.[segment])
        current = d.shape[segment];
      else if (d.type === "array" && typeof segment === "number") current = d.element;
      if (current) break;
    }
  }
  return current;
}

function expectationAt(root: Schema, path: DocPath): Expectation | undefined {
  const schema = schemaAt(root, path);
  if (!schema) return undefined;
  for (const layer of layers(schema)) {
    const found = expectations.get(layer);
    if (found) return found;
  }
  return undefined;
}

function knownKeysAt(root: Schema, path: DocPath): string[] {
  const schema = schemaAt(root, path);
  if (!schema) return [];
  for (const layer of layers(schema)) {
    const shape = defOf(layer).shape;
    if (shape) return Object.keys(shape);
  }
  return [];
}

const TYPE_WORDS: Readonly<Record<string, string>> = {
  string: "a string",
  number: "a number",
  int: "an integer",
  boolean: "true or false",
  object: "a mapping",
  array: "a list",
};

/** A value for a message: `the string "x"`, `the number 1.0` (as written), `a list`. */
function describe(source: JobSource, path: DocPath, value: unknown): string {
  if (value === null || value === undefined) return "nothing";
  if (Array.isArray(value)) return "a list";
  if (typeof value === "object") return "a mapping";
  const written = scalarSourceAt(source, path) ?? (typeof value === "string" ? value : JSON.stringify(value));
  const short = written.length > 80 ? `${written.slice(0, 80)}...` : written;
  if (typeof value === "string") return `the string ${JSON.stringify(short)}`;
  return `${typeof value === "number" ? "the number" : "the value"} ${short}`;
}

function shown(source: JobSource, path: DocPath, value: unknown): string {
  if (typeof value === "string") {
    const short = value.length > 80 ? `${value.slice(0, 80)}...` : value;
    return JSON.stringify(short);
  }
  if (typeof value === "number" || typeof value === "boolean")
    return scalarSourceAt(source, path) ?? String(value);
  return describe(source, path, value);
}

/** The issues of one branch of a union, when only one branch had the right shape; else none. */
function unionBranch(issue: Extract<Issue, { code: "invalid_union" }>): Issue[] | undefined {
  const shaped = issue.errors.filter(
    (branch) => !branch.some((i) => i.path.length === 0 && i.code === "invalid_type"),
  );
  if (shaped.length !== 1) return undefined;
  return (shaped[0] ?? []).map((i) => ({ ...i, path: [...issue.path, ...i.path] }));
}

/** Zod's issues (parsed with `reportInput: true`) as problems at their place in `source`. */
export function issuesToProblems(issues: readonly Issue[], source: JobSource, root: Schema): JobProblem[] {
  const problems: JobProblem[] = [];
  const seen = new Set<string>();
  const add = (path: DocPath, at: "value" | "key", message: string, expected?: string): void => {
    const { line, column } = placeOf(source, path, at);
    // A union and a refinement on it can both fail on one value: say it once.
    const key = `${line}:${column}:${message}`;
    if (seen.has(key)) return;
    seen.add(key);
    problems.push({
      file: source.file,
      line,
      column,
      path: pathText(path),
      message,
      ...(expected === undefined ? {} : { expected }),
    });
  };
  const visit = (issue: Issue): void => {
    const path = issue.path.filter((s): s is string | number => typeof s !== "symbol");
    const field = path.at(-1);
    const words = expectationAt(root, path);
    const input = (issue as { input?: unknown }).input;
    switch (issue.code) {
      case "unrecognized_keys": {
        const known = knownKeysAt(root, path);
        for (const key of issue.keys) {
          const guess = didYouMean(key, known);
          const hint = guess === undefined ? "" : `; did you mean "${guess}"?`;
          add([...path, key], "key", `unknown key "${key}"${hint}`, `one of ${known.join(", ")}`);
        }
        return;
      }
      case "invalid_union": {
        const branch = unionBranch(issue);
        if (branch) return branch.forEach(visit);
        add(
          path,
          "value",
          `${shown(source, path, input)} is not a valid ${words?.what ?? "value"}`,
          words?.expected,
        );
        return;
      }
      case "invalid_type": {
        const expected = words?.expected ?? TYPE_WORDS[issue.expected] ?? issue.expected;
        if (input === undefined && !placeOf(source, path).found) {
          add(path.slice(0, -1), "value", `missing field "${String(field)}"`, expected);
        } else if (words?.secret && typeof input !== "object") {
          // Never echo it: it is most likely the secret itself.
          add(path, "value", "secrets are never written in the job file", expected);
        } else {
          const quote =
            issue.expected === "string" && (typeof input === "number" || typeof input === "boolean")
              ? "; put it in quotes to make it a string"
              : "";
          add(path, "value", `wrong type: got ${describe(source, path, input)}${quote}`, expected);
        }
        return;
      }
      case "too_small":
      case "too_big": {
        if (issue.origin === "array") {
          const bound = Number(issue.code === "too_small" ? issue.minimum : issue.maximum);
          const n = `${issue.code === "too_small" ? "at least" : "at most"} ${bound} ${bound === 1 ? "item" : "items"}`;
          add(path, "value", `${issue.code === "too_small" ? "too few" : "too many"} items`, n);
          return;
        }
        break;
      }
      default:
        break;
    }
    // A value written where a variable's name goes may well be the secret itself: do not echo it.
    const hidden = field === "env" && expectationAt(root, path.slice(0, -1))?.secret === true;
    add(
      path,
      "value",
      `${hidden ? "this" : shown(source, path, input)} is not a valid ${words?.what ?? String(field ?? "value")}`,
      words?.expected ??
        ("values" in issue ? `one of ${issue.values.map((v) => JSON.stringify(v)).join(", ")}` : undefined),
    );
  };
  issues.forEach(visit);
  return problems;
}
