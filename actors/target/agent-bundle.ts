/**
 * The agent bundle of a run: built by agent/build.ts (one `.js` file named by its hash) into the
 * workstation's state directory, and shared by every target's push. A failed build is not kept,
 * so a later target tries again.
 *
 * Built once, reused by later runs: `manifest.json` beside the bundle lists the files it was made
 * from with their sizes and modification times. While none of them changed and the bundle still
 * has its hash, a run takes it as it is, without starting esbuild (about 0.3 s of every run's
 * start, before any target could be pushed to). Only a bundle in the same directory, under the
 * name its build gives it and at most {@link MAX_BUNDLE_BYTES}, is taken from a manifest: the
 * manifest names what every target is sent.
 */
import { createHash } from "node:crypto";
import { readFile, rename, stat, writeFile } from "node:fs/promises";
import { basename, join, resolve } from "node:path";
import { buildAgent, type BuiltAgent } from "../../agent/build.ts";

export type { BuiltAgent };

const MANIFEST = "manifest.json";
const MANIFEST_VERSION = 1;
/** More than this in a manifest is not ours: rebuild. */
const MAX_MANIFEST_BYTES = 1024 * 1024;
/** More than this in a bundle is not one of ours (it is about 400 KiB): rebuild, do not hash it. */
export const MAX_BUNDLE_BYTES = 16 * 1024 * 1024;
/** The name agent/build.ts gives a bundle: the first 16 hex digits of its SHA-256. */
const BUNDLE_NAME = /^sumac-agent-([0-9a-f]{16})\.cjs$/;

interface Manifest {
  readonly version: number;
  readonly entry: string;
  readonly path: string;
  readonly sha256: string;
  /** [path, size, mtimeMs] of each input when the bundle was built. */
  readonly inputs: readonly (readonly [string, number, number])[];
}

/**
 * A function giving the run's bundle, on first call from the cache in `outDir`
 * (`<stateDir>/cache/agent` in a run) or built into it.
 *
 * @example
 * const bundle = agentBundleOnce({ outDir: join(stateDir, "cache", "agent") });
 * const { path, sha256 } = await bundle();
 */
export function agentBundleOnce(options: { outDir: string; entry?: string }): () => Promise<BuiltAgent> {
  let built: Promise<BuiltAgent> | undefined;
  return () => {
    built ??= cachedBuild(options.outDir, options.entry);
    built.catch(() => (built = undefined));
    return built;
  };
}

/** The bundle named by the manifest in `outDir` when it is current, else a new build. */
export async function cachedBuild(outDir: string, entry?: string): Promise<BuiltAgent> {
  const entryKey = entry ?? "(default)";
  const manifestPath = join(outDir, MANIFEST);
  const cached = await fromManifest(outDir, manifestPath, entryKey);
  if (cached !== undefined) return cached;
  const started = Date.now();
  const built = await buildAgent({ outDir, ...(entry === undefined ? {} : { entry }) });
  const inputs = await Promise.all(
    (built.inputs ?? []).map(async (path) => {
      const st = await stat(path);
      return [path, st.size, st.mtimeMs] as const;
    }),
  );
  // A file changed while esbuild read it may not be in the bundle as the manifest would say.
  if (inputs.length > 0 && inputs.every(([, , mtime]) => mtime < started)) {
    const manifest: Manifest = {
      version: MANIFEST_VERSION,
      entry: entryKey,
      path: built.path,
      sha256: built.sha256,
      inputs,
    };
    const tmp = `${manifestPath}.${process.pid}.tmp`;
    await writeFile(tmp, `${JSON.stringify(manifest)}\n`, { mode: 0o600 });
    await rename(tmp, manifestPath);
  }
  return built;
}

async function fromManifest(
  outDir: string,
  manifestPath: string,
  entryKey: string,
): Promise<BuiltAgent | undefined> {
  try {
    if ((await stat(manifestPath)).size > MAX_MANIFEST_BYTES) return undefined;
    const text = await readFile(manifestPath, "utf8");
    const m = JSON.parse(text) as Partial<Manifest>;
    if (
      m.version !== MANIFEST_VERSION ||
      m.entry !== entryKey ||
      typeof m.path !== "string" ||
      typeof m.sha256 !== "string" ||
      !Array.isArray(m.inputs) ||
      m.inputs.length === 0
    )
      return undefined;
    // Only a bundle of this directory, under the name its build gives it, is taken.
    const name = BUNDLE_NAME.exec(basename(m.path));
    if (m.path !== resolve(outDir, basename(m.path)) || name === null || !m.sha256.startsWith(name[1] ?? "-"))
      return undefined;
    const inputs: string[] = [];
    for (const input of m.inputs as unknown[]) {
      if (!Array.isArray(input)) return undefined;
      const [path, size, mtime] = input as unknown[];
      if (typeof path !== "string" || typeof size !== "number" || typeof mtime !== "number") return undefined;
      const st = await stat(path);
      if (st.size !== size || st.mtimeMs !== mtime) return undefined;
      inputs.push(path);
    }
    if ((await stat(m.path)).size > MAX_BUNDLE_BYTES) return undefined;
    const bytes = await readFile(m.path);
    if (createHash("sha256").update(bytes).digest("hex") !== m.sha256) return undefined;
    return { path: m.path, sha256: m.sha256, bytes: bytes.byteLength, inputs };
  } catch {
    // No manifest, a damaged one, an input or the bundle gone: build again.
    return undefined;
  }
}
