/**
 * Bundles the agent into one JavaScript file that Debian 12's Node 18 runs, named by its content
 * hash: `dist/agent/sumac-agent-<first 16 hex of SHA-256>.cjs`. The workstation pushes that one
 * file; the name lets it skip a push when the target already holds the same build.
 *
 * Format: CommonJS. A `.js` file with no `package.json` beside it is CommonJS to Node 18 (syntax
 * detection of ESM came only in Node 22), and the agent is pushed alone into a temporary
 * directory; an ESM bundle would have to be named `.mjs` and also carry a `createRequire` banner,
 * because `soap` and its dependencies are CommonJS modules that `require()` Node's built-ins,
 * which esbuild's ESM output cannot do. The cost: no top-level `await` in the agent, and
 * `import.meta` does not exist, so files read next to a module (the WSDL) are inlined at build
 * time by {@link inlineAdjacentFiles}, and any other use of `import.meta` fails the build.
 *
 * Usage: `npm run build:agent -- [entry] [--out-dir DIR]` (entry default `agent/server/main.ts`).
 */
import { createHash } from "node:crypto";
import { isBuiltin } from "node:module";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { Plugin } from "esbuild";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");

export interface BuildAgentOptions {
  /** The entry module; default `agent/server/main.ts` of this repository. */
  readonly entry?: string;
  /** Where the bundle goes; default `dist/agent` of this repository. */
  readonly outDir?: string;
  /**
   * Keep what `soap` needs as a client ({@link SOAP_CLIENT_ONLY}); default false: the agent is a
   * server. The bundle test's probe entry, which calls itself as a client, sets it.
   */
  readonly soapClient?: boolean;
}

export interface BuiltAgent {
  /** Absolute path of the bundle. */
  readonly path: string;
  /** SHA-256 of the bundle's bytes, lowercase hex; its first 16 digits are in the file name. */
  readonly sha256: string;
  readonly bytes: number;
  /**
   * Absolute paths of every file the bundle was made from: the modules, the files inlined into
   * them, this build script and esbuild's package.json (a cache of the bundle is stale when one
   * changes). Set by {@link buildAgent}.
   */
  readonly inputs?: readonly string[];
}

/** The Node version the bundle must run on: Debian 12's `nodejs` package. */
export const AGENT_NODE_TARGET = "node18";

/**
 * Bundles `entry` and its dependencies (`soap` included) into one minified CommonJS file.
 *
 * @example
 * const { path, sha256 } = await buildAgent({ outDir: tmp });
 * await shell.push(path, `/tmp/sumac/${basename(path)}`);
 */
export async function buildAgent(options: BuildAgentOptions = {}): Promise<BuiltAgent> {
  const entry = resolve(options.entry ?? join(root, "agent/server/main.ts"));
  const outDir = resolve(options.outDir ?? join(root, "dist/agent"));
  const inlined = new Set<string>();
  const { build } = await import("esbuild");
  const result = await build({
    entryPoints: [entry],
    bundle: true,
    write: false,
    outfile: "sumac-agent.js",
    platform: "node",
    target: AGENT_NODE_TARGET,
    format: "cjs",
    minify: true,
    // Minifying renames classes; errors take `name` from their class (errors.ts), logs show it.
    keepNames: true,
    legalComments: "eof",
    banner: { js: "#!/usr/bin/env node" },
    // The agent's own modules import with `.ts` extensions and rely on no tsconfig paths.
    resolveExtensions: [".ts", ".js", ".mjs", ".cjs", ".json"],
    plugins: [
      inlineAdjacentFiles(inlined),
      withoutOptionalModules(),
      ...(options.soapClient === true ? [] : [withoutSoapClientTransport()]),
    ],
    metafile: true,
    absWorkingDir: root,
    // In a CommonJS bundle `import.meta` is `{}`: a URL built from it would break only on the target.
    logOverride: { "empty-import-meta": "error" },
    logLevel: "silent",
  });
  const file = result.outputFiles[0];
  if (file === undefined) throw new Error(`esbuild wrote no output for ${entry}`);
  const outside = modulesRequiredAtRuntime(file.text);
  if (outside.length > 0)
    throw new Error(
      `the agent bundle would load ${outside.join(", ")} at run time from the target's node_modules search path (a module anyone who can write a parent directory could plant): bundle them or leave them out (agent/build.ts)`,
    );
  const sha256 = createHash("sha256").update(file.contents).digest("hex");
  const path = join(outDir, `sumac-agent-${sha256.slice(0, 16)}.cjs`);
  await mkdir(outDir, { recursive: true });
  await writeFile(path, file.contents, { mode: 0o644 });
  const inputs = [
    ...Object.keys(result.metafile.inputs)
      .filter((input) => !input.includes(":"))
      .map((input) => resolve(root, input)),
    ...inlined,
    fileURLToPath(import.meta.url),
    join(root, "node_modules/esbuild/package.json"),
  ];
  return { path, sha256, bytes: file.contents.byteLength, inputs };
}

/** `readFileSync(new URL("./name", import.meta.url), "utf8")`, as `wsdl.ts` reads its WSDL. */
const ADJACENT_READ =
  /readFileSync\(\s*new URL\(\s*(["'])(\.\/[^"'\\]+)\1\s*,\s*import\.meta\.url\s*\)\s*,\s*(["'])utf-?8\3\s*\)/g;

/**
 * Replaces each read of a text file next to a module's source by the file's text, so the bundle
 * needs nothing beside it.
 */
export function inlineAdjacentFiles(inlined?: Set<string>): Plugin {
  return {
    name: "sumac-inline-adjacent-files",
    setup(b) {
      b.onLoad({ filter: /\.ts$/ }, async (args) => {
        const source = await readFile(args.path, "utf8");
        if (!source.includes("import.meta.url")) return undefined;
        const reads = [...source.matchAll(ADJACENT_READ)];
        if (reads.length === 0) return undefined;
        const texts = await Promise.all(
          reads.map((m) => readFile(resolve(dirname(args.path), m[2] ?? ""), "utf8")),
        );
        let i = 0;
        const contents = source.replace(ADJACENT_READ, () => JSON.stringify(texts[i++]));
        const watchFiles = reads.map((m) => resolve(dirname(args.path), m[2] ?? ""));
        for (const f of watchFiles) inlined?.add(f);
        return { contents, loader: "ts", watchFiles };
      });
    },
  };
}

/**
 * The modules `soap` needs only as a client (HTTP requests with axios, NTLM, multipart replies),
 * which the agent, a SOAP server that reads its WSDL from a string, never uses.
 */
export const SOAP_CLIENT_ONLY = ["axios", "axios-ntlm", "formidable"] as const;

/**
 * Replaces {@link SOAP_CLIENT_ONLY} by a module that throws, naming itself, on any use. `soap`
 * requires them when it loads; left in, they were 340 KiB of the 736 KiB bundle (mime-db alone
 * 134 KiB) and a quarter of the agent's start-up time on the target: 331 ms against 248 ms to load
 * the bundle (Node 18, test container, medians of three).
 */
export function withoutSoapClientTransport(): Plugin {
  const names = new RegExp(`^(?:${SOAP_CLIENT_ONLY.join("|")})$`);
  return {
    name: "sumac-without-soap-client-transport",
    setup(b) {
      b.onResolve({ filter: names }, (args) => ({ path: args.path, namespace: "sumac-left-out" }));
      b.onLoad({ filter: /.*/, namespace: "sumac-left-out" }, (args) => ({
        contents: [
          `const fail = () => { throw new Error(${JSON.stringify(`${args.path} is left out of the agent bundle (agent/build.ts)`)}); };`,
          // The names soap's client code takes from these modules are listed as keys, so that the
          // CommonJS interop helpers copy them and a call reaches `fail`.
          "const left = new Proxy(function () {}, { get: (_, key) => (key === '__esModule' ? false : key === 'default' ? left : fail()), apply: fail, construct: fail, ownKeys: () => ['prototype', 'create', 'NtlmClient', 'formidable'], has: () => false });",
          "module.exports = left;",
        ].join("\n"),
        loader: "js",
      }));
    },
  };
}

/**
 * Optional modules that dependencies try in a `try { require(...) }` and that are not installed
 * (debug's `supports-color`): left as they are, esbuild would keep a run-time `require`, and Node
 * would look for them in `node_modules` of every directory above the bundle on the target
 * (`/var/tmp/node_modules`, `C:\Windows\Temp\node_modules`), where a local user could put one
 * that then runs in the agent as root or SYSTEM. They resolve to an empty module instead.
 */
export const OPTIONAL_MODULES_LEFT_OUT: readonly string[] = ["supports-color"];

export function withoutOptionalModules(): Plugin {
  const names = new RegExp(`^(?:${OPTIONAL_MODULES_LEFT_OUT.join("|")})$`);
  return {
    name: "sumac-without-optional-modules",
    setup(b) {
      b.onResolve({ filter: names }, (args) => ({ path: args.path, namespace: "sumac-optional" }));
      b.onLoad({ filter: /.*/, namespace: "sumac-optional" }, () => ({
        contents: "module.exports = {};",
        loader: "js",
      }));
    },
  };
}

/** The modules a bundle's text `require`s that are not Node's own (each one a search on the target). */
export function modulesRequiredAtRuntime(text: string): string[] {
  const names = [...text.matchAll(/\brequire\(\s*["'`]([^"'`]+)["'`]\s*\)/g)].map((m) => m[1]!);
  return [...new Set(names)].filter((name) => !isBuiltin(name));
}

/** `node agent/build.ts [entry] [--out-dir DIR]`: builds and prints the path and the size. */
async function cli(argv: readonly string[]): Promise<void> {
  let entry: string | undefined;
  let outDir: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "--out-dir") outDir = argv[++i];
    else if (arg !== undefined && !arg.startsWith("-") && entry === undefined) entry = arg;
    else throw new Error(`usage: build-agent [entry] [--out-dir DIR] (unexpected ${arg})`);
  }
  const built = await buildAgent({ entry, outDir });
  process.stdout.write(
    `${relative(process.cwd(), built.path)} ${built.bytes} bytes (${(built.bytes / 1024).toFixed(1)} KiB) sha256 ${built.sha256}\n`,
  );
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  cli(process.argv.slice(2)).catch((error: unknown) => {
    process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exitCode = 1;
  });
}
