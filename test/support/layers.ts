/**
 * The layers of sumac's source and the check that keeps them (docs/architecture.md): which folder
 * may import which, and no import cycle between files. Imports are read by TypeScript's parser
 * (static, type-only, re-exports and `import()` of a literal path), so a type import counts as much
 * as any other: it ties the folders together all the same.
 */
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, normalize, relative } from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";

/** The repository's root. */
export const ROOT = normalize(join(dirname(fileURLToPath(import.meta.url)), "..", ".."));

/**
 * Each layer, and the layers it may import; a folder not listed under a layer may not be imported
 * by it. Read top to bottom: cli → run → actors → machines → bus, and the agent protocol below all
 * but base. The agent's server and its client are two programs: neither imports the other.
 */
export const LAYERS: Readonly<Record<string, readonly string[]>> = {
  cli: ["run", "actors", "machines", "agent/client", "agent/protocol", "bus", "base"],
  run: ["actors", "machines", "agent/client", "agent/protocol", "bus", "base"],
  actors: ["machines", "agent/client", "agent/build", "agent/protocol", "bus", "base"],
  machines: ["bus", "base"],
  "agent/client": ["agent/protocol", "base"],
  "agent/server": ["agent/protocol", "base"],
  "agent/build": ["base"],
  "agent/protocol": ["base"],
  bus: ["base"],
  base: [],
};

/** Folders of the product, whose files the layers cover. */
const PRODUCT = ["base", "bus", "agent", "machines", "actors", "run", "cli"];

/** The layer of a repository-relative path; undefined outside the product (tests, benches, examples). */
export function layerOf(path: string): string | undefined {
  const [top, second] = path.split("/");
  if (top === "agent") {
    if (second === "server" || second === "client" || second === "protocol") return `agent/${second}`;
    return second === "build.ts" ? "agent/build" : "agent";
  }
  return top !== undefined && PRODUCT.includes(top) ? top : undefined;
}

/** Every `.ts` file of the product, repository-relative, sorted. */
export function sourceFiles(root = ROOT): string[] {
  const found: string[] = [];
  const walk = (dir: string): void => {
    for (const entry of readdirSync(join(root, dir), { withFileTypes: true })) {
      const path = `${dir}/${entry.name}`;
      if (entry.isDirectory()) walk(path);
      else if (entry.name.endsWith(".ts")) found.push(path);
    }
  };
  for (const top of PRODUCT) walk(top);
  return found.sort();
}

/** What a file imports, as the TypeScript parser reads it. */
interface ParsedImports {
  /** Repository-relative files imported by a relative path. */
  readonly files: string[];
  /** Imports the check cannot follow: `import()` of something other than a string, `require`. */
  readonly opaque: string[];
}

function parseImports(file: string, text: string): ParsedImports {
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, false, ts.ScriptKind.TS);
  const files: string[] = [];
  const opaque: string[] = [];
  const add = (spec: string): void => {
    if (spec.startsWith(".")) files.push(normalize(join(dirname(file), spec)));
  };
  const visit = (node: ts.Node): void => {
    if ((ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier) {
      if (ts.isStringLiteral(node.moduleSpecifier)) add(node.moduleSpecifier.text);
    } else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference)) {
      const expression = node.moduleReference.expression;
      if (ts.isStringLiteral(expression)) add(expression.text);
    } else if (ts.isCallExpression(node)) {
      const [argument] = node.arguments;
      const line = source.getLineAndCharacterOfPosition(node.getStart(source)).line + 1;
      if (node.expression.kind === ts.SyntaxKind.ImportKeyword) {
        if (argument !== undefined && ts.isStringLiteralLike(argument)) add(argument.text);
        else opaque.push(`${file}:${line}: import() of a computed path`);
      } else if (
        ts.isIdentifier(node.expression) &&
        ["require", "createRequire"].includes(node.expression.text)
      )
        opaque.push(`${file}:${line}: ${node.expression.text}()`);
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return { files, opaque };
}

/** The repository-relative files that `text` (the content of `file`) imports by relative path. */
export function importsOf(file: string, text: string): string[] {
  return parseImports(file, text).files;
}

/**
 * Imports in the product that the layer check cannot follow (a computed `import()`, `require`):
 * each is a way round the layers, so there are none.
 */
export function opaqueImports(root = ROOT): string[] {
  return sourceFiles(root).flatMap((f) => opaqueImportsOf(f, readFileSync(join(root, f), "utf8")));
}

/** The imports of `text` (the content of `file`) that the check cannot follow. */
export function opaqueImportsOf(file: string, text: string): string[] {
  return parseImports(file, text).opaque;
}

/** File → the files it imports. */
export type ImportGraph = ReadonlyMap<string, readonly string[]>;

/** The import graph of the product's files. */
export function importGraph(root = ROOT): ImportGraph {
  return new Map(sourceFiles(root).map((f) => [f, importsOf(f, readFileSync(join(root, f), "utf8"))]));
}

/** An import the layers forbid: `from` imports `to`, and why that is wrong. */
export interface LayerViolation {
  readonly from: string;
  readonly to: string;
  readonly why: string;
}

/** Every import of the graph that goes up (or across) the layers, or out of the product. */
export function layerViolations(graph: ImportGraph): LayerViolation[] {
  const found: LayerViolation[] = [];
  for (const [from, targets] of graph) {
    const layer = layerOf(from);
    if (layer === undefined) continue;
    for (const to of targets) {
      const target = layerOf(to);
      if (target === layer) continue;
      if (target === undefined) {
        found.push({ from, to, why: `${layer} imports ${relative(".", to)}, which is not part of sumac` });
        continue;
      }
      const allowed = LAYERS[layer] ?? [];
      if (!allowed.includes(target))
        found.push({
          from,
          to,
          why: `${layer} may import only ${allowed.join(", ") || "nothing"}, not ${target}`,
        });
    }
  }
  return found;
}

/** The import cycles between files: each a list of files that import each other, sorted. */
export function importCycles(graph: ImportGraph): string[][] {
  // Tarjan's strongly connected components, iteratively (deep chains would overflow recursion).
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const onStack = new Set<string>();
  const stack: string[] = [];
  const cycles: string[][] = [];
  for (const start of graph.keys()) {
    if (index.has(start)) continue;
    const work: { node: string; edge: number }[] = [{ node: start, edge: 0 }];
    index.set(start, next);
    low.set(start, next++);
    stack.push(start);
    onStack.add(start);
    while (work.length > 0) {
      const frame = work[work.length - 1]!;
      const edges = graph.get(frame.node) ?? [];
      if (frame.edge < edges.length) {
        const to = edges[frame.edge++]!;
        if (!graph.has(to)) continue;
        if (!index.has(to)) {
          index.set(to, next);
          low.set(to, next++);
          stack.push(to);
          onStack.add(to);
          work.push({ node: to, edge: 0 });
        } else if (onStack.has(to)) low.set(frame.node, Math.min(low.get(frame.node)!, index.get(to)!));
        continue;
      }
      work.pop();
      const parent = work[work.length - 1];
      if (parent !== undefined) low.set(parent.node, Math.min(low.get(parent.node)!, low.get(frame.node)!));
      if (low.get(frame.node) !== index.get(frame.node)) continue;
      const component: string[] = [];
      for (;;) {
        const member = stack.pop()!;
        onStack.delete(member);
        component.push(member);
        if (member === frame.node) break;
      }
      const selfImport = component.length === 1 && edges.includes(frame.node);
      if (component.length > 1 || selfImport) cycles.push(component.sort());
    }
  }
  return cycles;
}
