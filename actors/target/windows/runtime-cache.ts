/**
 * The workstation's cache of Node for Windows: per package (named by `<base>`, which holds the
 * architecture, the version and the start of the integrity's digest), `<base>.json` says what
 * `node.tgz` holds and names it; the tgz is named by its own SHA-256 too, so that two processes
 * making it at once never rename different bytes over one name. A record is believed only when
 * node.tgz has its size and SHA-256.
 */
import { createHash, randomBytes } from "node:crypto";
import { createReadStream } from "node:fs";
import { readFile, rename, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import type { NodePin, WindowsArch } from "./node-package.ts";

/** Node for one Windows architecture, ready to push. */
export interface WindowsRuntime {
  readonly version: string;
  readonly arch: WindowsArch;
  /** SHA-256 of `node.exe`, lowercase hex: what the target's launcher checks after unpacking. */
  readonly nodeSha256: string;
  /** `node.tgz` on this workstation. */
  readonly tgzPath: string;
  readonly tgzSha256: string;
  readonly tgzBytes: number;
  readonly nodeBytes: number;
}

/** The name of the node.tgz of `base` whose SHA-256 is `tgzSha256`. */
export function tgzFileName(base: string, tgzSha256: string): string {
  return `${base}-${tgzSha256.slice(0, 16)}.node.tgz`;
}

/** What `<base>.json` holds. */
export interface CacheRecord {
  readonly arch: WindowsArch;
  readonly version: string;
  readonly integrity: string;
  readonly nodeSha256: string;
  readonly nodeBytes: number;
  readonly tgzFile: string;
  readonly tgzSha256: string;
  readonly tgzBytes: number;
}

async function sha256Of(path: string): Promise<string> {
  const hash = createHash("sha256");
  await pipeline(createReadStream(path), hash);
  return hash.digest("hex");
}

const isHex64 = (v: unknown): v is string => typeof v === "string" && /^[0-9a-f]{64}$/.test(v);
const isSize = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) > 0;

/** The cached runtime of `base`, or undefined when there is none or it does not check out. */
export async function readCache(
  cacheDir: string,
  base: string,
  arch: WindowsArch,
  pin: NodePin,
): Promise<WindowsRuntime | undefined> {
  let r: Partial<Record<keyof CacheRecord, unknown>>;
  try {
    r = JSON.parse(await readFile(join(cacheDir, `${base}.json`), "utf8")) as typeof r;
  } catch {
    return undefined; // not made yet, or damaged: made again
  }
  if (
    r.arch !== arch ||
    r.version !== pin.version ||
    r.integrity !== pin.integrity ||
    !isHex64(r.nodeSha256) ||
    !isHex64(r.tgzSha256) ||
    !isSize(r.nodeBytes) ||
    !isSize(r.tgzBytes) ||
    typeof r.tgzFile !== "string" ||
    // A name of this directory, never a path from the file.
    r.tgzFile !== tgzFileName(base, r.tgzSha256)
  )
    return undefined;
  const tgzPath = join(cacheDir, r.tgzFile);
  const size = await stat(tgzPath).then(
    (s) => s.size,
    () => -1,
  );
  if (size !== r.tgzBytes) return undefined;
  const sha256 = await sha256Of(tgzPath).catch(() => undefined);
  if (sha256 !== r.tgzSha256) return undefined;
  const runtime: WindowsRuntime = {
    version: pin.version,
    arch,
    nodeSha256: r.nodeSha256,
    tgzPath,
    tgzSha256: r.tgzSha256,
    tgzBytes: r.tgzBytes,
    nodeBytes: r.nodeBytes,
  };
  return runtime;
}

/** Writes `<base>.json` whole (a temporary file renamed): a reader never sees half of it. */
export async function writeCache(cacheDir: string, base: string, record: CacheRecord): Promise<void> {
  const path = join(cacheDir, `${base}.json`);
  const tmp = `${path}.${process.pid}-${randomBytes(4).toString("hex")}.tmp`;
  await writeFile(tmp, JSON.stringify(record), { mode: 0o600 });
  await rename(tmp, path);
}
