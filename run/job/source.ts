/**
 * The job file as text and as a YAML document with positions: reading it within a size limit,
 * parsing it (syntax errors, duplicate keys and alias bombs are problems at their own place), and
 * finding the place of any path in it, so a problem found later still points at its line and column.
 */
import { constants, open } from "node:fs/promises";
import {
  isAlias,
  isMap,
  isScalar,
  isSeq,
  LineCounter,
  parseDocument,
  visit,
  type Document,
  type Node,
} from "yaml";
import { JobFileError, type JobProblem } from "./errors.ts";

/** Largest job file read: a fleet of thousands of targets fits; a runaway file does not. */
export const MAX_JOB_BYTES = 1024 * 1024;
/** Alias expansions allowed when building values: enough for sharing, too few for a "billion laughs". */
export const MAX_ALIAS_COUNT = 100;

export type DocPath = readonly (string | number)[];

/** A parsed job file. */
export interface JobSource {
  /** As the user named it (used in messages). */
  readonly file: string;
  readonly doc: Document;
  readonly lines: LineCounter;
}

/** Where a path is in the document. */
export interface Place {
  readonly line: number;
  readonly column: number;
}

function problemAt(
  file: string,
  line: number,
  column: number,
  message: string,
  expected?: string,
): JobProblem {
  return { file, line, column, path: "", message, ...(expected === undefined ? {} : { expected }) };
}

/** The file's text, refused when larger than `maxBytes`, not a regular file, or not UTF-8. */
export async function readJobText(file: string, maxBytes: number = MAX_JOB_BYTES): Promise<string> {
  const fail = (message: string, expected?: string, cause?: unknown): JobFileError =>
    new JobFileError([problemAt(file, 1, 1, message, expected)], { cause });
  let handle;
  try {
    // Non-blocking, so a FIFO named as the job file is refused below instead of hanging the open.
    handle = await open(file, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code;
    if (code === "ENOENT") throw fail("the job file does not exist", "a path to a job file", cause);
    throw fail(`the job file cannot be read (${code ?? String(cause)})`, undefined, cause);
  }
  try {
    const info = await handle.stat();
    if (!info.isFile()) throw fail("the job file is not a regular file", "a YAML file");
    const limit = `a job file of at most ${maxBytes} bytes`;
    if (info.size > maxBytes) throw fail(`the job file is ${info.size} bytes, too large`, limit);
    // Read one byte past the limit, whatever stat said: the file may grow while it is read.
    const buffer = Buffer.alloc(maxBytes + 1);
    let length = 0;
    for (;;) {
      const { bytesRead } = await handle.read(buffer, length, buffer.length - length, null);
      if (bytesRead === 0) break;
      length += bytesRead;
      if (length > maxBytes) throw fail(`the job file is more than ${maxBytes} bytes, too large`, limit);
    }
    try {
      return new TextDecoder("utf-8", { fatal: true }).decode(buffer.subarray(0, length));
    } catch (cause) {
      throw fail("the job file is not UTF-8 text", "a YAML file in UTF-8", cause);
    }
  } finally {
    await handle.close();
  }
}

/**
 * The YAML document and the problems of its syntax. Duplicate keys, tabs as indentation, several
 * documents, unknown tags and aliases without an anchor are problems; so are more than
 * {@link MAX_ALIAS_COUNT} alias expansions (see {@link toValue}).
 */
export function parseJobSource(file: string, text: string): { source: JobSource; problems: JobProblem[] } {
  const lines = new LineCounter();
  const doc = parseDocument(text, {
    lineCounter: lines,
    prettyErrors: false,
    uniqueKeys: true,
    strict: true,
  });
  const source: JobSource = { file, doc, lines };
  const problems: JobProblem[] = [];
  const seen = new Set<number>();
  for (const e of [...doc.errors, ...doc.warnings]) {
    // Deep nesting yields one error per level at neighbouring offsets: one is enough.
    if (e.code === "RESOURCE_EXHAUSTION" && problems.some((p) => p.message.startsWith("the YAML is nested")))
      continue;
    if (seen.has(e.pos[0])) continue;
    seen.add(e.pos[0]);
    const { line, column } = placeOfOffset(source, e.pos[0]);
    problems.push(syntaxProblem(file, line, column, e.code, e.message));
  }
  visit(doc, {
    Alias(_key, alias) {
      if (alias.resolve(doc) !== undefined) return;
      const { line, column } = placeOfNode(source, alias);
      problems.push(
        problemAt(
          file,
          line,
          column,
          `alias *${alias.source} has no anchor before it`,
          `an anchor &${alias.source} above`,
        ),
      );
    },
  });
  return { source, problems };
}

function syntaxProblem(
  file: string,
  line: number,
  column: number,
  code: string,
  message: string,
): JobProblem {
  switch (code) {
    case "DUPLICATE_KEY":
      return problemAt(
        file,
        line,
        column,
        "duplicate key: this key is already set in the same mapping",
        "each key once",
      );
    case "RESOURCE_EXHAUSTION":
      return problemAt(file, line, column, "the YAML is nested too deeply", "a job file of reasonable depth");
    case "TAG_RESOLVE_FAILED":
      return problemAt(file, line, column, `YAML: ${message}`, "plain YAML values without custom tags");
    default:
      return problemAt(file, line, column, `YAML syntax: ${message}`);
  }
}

/**
 * The document's plain value. Aliases are expanded at most {@link MAX_ALIAS_COUNT} times; a file
 * that needs more is refused at its first alias rather than allowed to grow without bound.
 */
export function toValue(source: JobSource): unknown {
  try {
    return source.doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
  } catch (cause) {
    if (!(cause instanceof ReferenceError)) throw cause;
    let first: Node | undefined;
    visit(source.doc, {
      Alias(_key, alias) {
        first = alias;
        return visit.BREAK;
      },
    });
    const { line, column } = first ? placeOfNode(source, first) : { line: 1, column: 1 };
    throw new JobFileError(
      [
        problemAt(
          source.file,
          line,
          column,
          "the aliases expand too many times",
          `at most ${MAX_ALIAS_COUNT} alias expansions`,
        ),
      ],
      { cause },
    );
  }
}

export function placeOfOffset(source: JobSource, offset: number): Place {
  const { line, col } = source.lines.linePos(offset);
  return { line, column: col };
}

function placeOfNode(source: JobSource, node: Node): Place {
  return placeOfOffset(source, node.range?.[0] ?? 0);
}

function deref(source: JobSource, node: unknown): unknown {
  return isAlias(node) ? node.resolve(source.doc) : node;
}

/**
 * The place of `path`: its value when it is there; with `at: "key"` the key of its pair. When the
 * path leads nowhere (a missing field), the place of the deepest mapping or list on the way, with
 * `found: false`.
 */
export function placeOf(
  source: JobSource,
  path: DocPath,
  at: "value" | "key" = "value",
): Place & { found: boolean } {
  let node: unknown = source.doc.contents;
  let keyNode: unknown;
  for (const segment of path) {
    node = deref(source, node);
    if (isMap(node)) {
      const pair = node.items.find((p) => {
        const key = isScalar(p.key) ? p.key.value : p.key;
        return key === segment || String(key) === String(segment);
      });
      if (!pair) return { ...placeOfNode(source, node), found: false };
      keyNode = pair.key;
      // A key with no value (`port:`) has a null scalar; with none at all, point at the key.
      node = pair.value ?? pair.key;
    } else if (isSeq(node) && typeof segment === "number" && node.items[segment] !== undefined) {
      keyNode = undefined;
      node = node.items[segment];
    } else {
      return { ...(isNode(node) ? placeOfNode(source, node) : { line: 1, column: 1 }), found: false };
    }
  }
  const target = at === "key" && keyNode !== undefined ? keyNode : node;
  return { ...(isNode(target) ? placeOfNode(source, target) : { line: 1, column: 1 }), found: true };
}

/** The source text of the scalar at `path`, as written (`1.0`, not 1), when there is one. */
export function scalarSourceAt(source: JobSource, path: DocPath): string | undefined {
  let node: unknown = source.doc.contents;
  for (const segment of path) {
    node = deref(source, node);
    if (isMap(node)) node = node.get(segment, true);
    else if (isSeq(node) && typeof segment === "number") node = node.items[segment];
    else return undefined;
  }
  node = deref(source, node);
  return isScalar(node) && typeof node.source === "string" ? node.source : undefined;
}

function isNode(value: unknown): value is Node {
  return isScalar(value) || isMap(value) || isSeq(value) || isAlias(value);
}
