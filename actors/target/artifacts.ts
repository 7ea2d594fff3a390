/**
 * What a run pushes to every target, made once per run on the workstation: the agent bundle
 * (agent/build.ts, one file named by its hash) and, for targets without Node >= 18, this machine's
 * own Node binary, gzip-compressed once and kept by version under the state directory.
 */
import { createHash } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { mkdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import { createGzip } from "node:zlib";
import { buildAgent, type BuiltAgent } from "../../agent/build.ts";

export interface RuntimeArtifact {
  /** The gzip file on this machine. */
  readonly gzPath: string;
  readonly gzSha256: string;
  /** SHA-256 of the binary itself, checked on the target after decompression. */
  readonly sha256: string;
  readonly bytes: number;
  /** `uname -sm` of a matching target, e.g. `Linux x86_64`. */
  readonly uname: string;
  readonly version: string;
}

export interface AgentArtifacts {
  readonly bundle: BuiltAgent;
  /** Made on first use: most fleets have Node already. */
  runtime(): Promise<RuntimeArtifact>;
}

const UNAME_MACHINE: Record<string, string> = {
  x64: "x86_64",
  arm64: "aarch64",
  arm: "armv7l",
  ppc64: "ppc64le",
  s390x: "s390x",
};

/** `uname -sm` of a host this Node binary runs on, or undefined when it is not a Linux binary. */
export function unameOfThisRuntime(): string | undefined {
  const machine = UNAME_MACHINE[process.arch];
  return process.platform === "linux" && machine !== undefined ? `Linux ${machine}` : undefined;
}

async function sha256Of(path: string): Promise<string> {
  const hash = createHash("sha256");
  await pipeline(createReadStream(path), hash);
  return hash.digest("hex");
}

/** Compresses this Node binary into `cacheDir` once per version; reuses it afterwards. */
async function compressedRuntime(cacheDir: string): Promise<RuntimeArtifact> {
  const uname = unameOfThisRuntime();
  if (uname === undefined)
    throw new Error(
      `this workstation's Node (${process.platform} ${process.arch}) cannot run on a Linux target`,
    );
  await mkdir(cacheDir, { recursive: true, mode: 0o700 });
  const base = join(cacheDir, `node-${process.version}-linux-${process.arch}`);
  const meta = `${base}.json`;
  try {
    const known = JSON.parse(await readFile(meta, "utf8")) as RuntimeArtifact;
    if ((await stat(known.gzPath)).isFile() && known.version === process.version) return known;
  } catch {
    // Not made yet (or damaged): make it again.
  }
  const gzPath = `${base}.gz`;
  const partial = `${gzPath}.${process.pid}.partial`;
  try {
    await pipeline(
      createReadStream(process.execPath),
      createGzip({ level: 6 }),
      createWriteStream(partial, { mode: 0o600 }),
    );
    await rename(partial, gzPath);
  } finally {
    await rm(partial, { force: true });
  }
  const artifact: RuntimeArtifact = {
    gzPath,
    gzSha256: await sha256Of(gzPath),
    sha256: await sha256Of(process.execPath),
    bytes: (await stat(process.execPath)).size,
    uname,
    version: process.version,
  };
  await writeFile(meta, JSON.stringify(artifact), { mode: 0o600 });
  return artifact;
}

/**
 * The run's artifacts: the bundle is built now (into `bundleDir`), the runtime on first use.
 */
export async function prepareArtifacts(options: {
  bundleDir: string;
  cacheDir: string;
}): Promise<AgentArtifacts> {
  const bundle = await buildAgent({ outDir: options.bundleDir });
  let runtime: Promise<RuntimeArtifact> | undefined;
  return {
    bundle,
    runtime: () => {
      runtime ??= compressedRuntime(options.cacheDir);
      runtime.catch(() => (runtime = undefined));
      return runtime;
    },
  };
}
