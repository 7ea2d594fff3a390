/**
 * The repacking of an npm package of Node for Windows into `node.tgz`: the gzip-compressed ustar
 * holding the one regular file `node.exe` that a Windows target's own `tar.exe -xzf` unpacks.
 * One streaming pass, so that node.exe (about 90 MB) is never held whole in memory.
 */
import { createHash, type Hash, randomBytes } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { rename, rm } from "node:fs/promises";
import { join } from "node:path";
import { Duplex } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createGunzip, createGzip } from "node:zlib";
import { isSumacError } from "../../../base/errors.ts";
import { hashTap, NodePackageError, type NodePin, sriOf } from "./node-package.ts";
import { tgzFileName } from "./runtime-cache.ts";
import { tarArchive, tarEntries } from "./tar.ts";
import { TarType } from "./tar-header.ts";

/** Where an npm package (any) holds Node's binary for Windows. */
export const NODE_EXE_IN_PACKAGE = "package/bin/node.exe";

// node.exe is under 100 MB; the caps stop a bomb in a tarball given through the test override.
const TAR_LIMITS = { maxHeaders: 1000, maxEntryBytes: 512 * 1024 ** 2, maxArchiveBytes: 1024 ** 3 };

/** What {@link repackNodeExe} made. */
export interface RepackedNode {
  readonly nodeSha256: string;
  readonly nodeBytes: number;
  /** A name in the directory given: `<base>-<first 16 hex digits of tgzSha256>.node.tgz`. */
  readonly tgzFile: string;
  readonly tgzSha256: string;
  readonly tgzBytes: number;
}

/**
 * Streams the package tarball at `source` into a `node.tgz` in `dir`: gunzip, the package's
 * `bin/node.exe` taken out (hashed on the way), written as the one entry of a new ustar (mode 0644,
 * mtime 0), gzip level 6, hashed again, to a temporary file renamed once whole. The package's
 * integrity is taken again on the same pass, so a file changed since it was checked is refused.
 */
export async function repackNodeExe(
  source: string,
  pin: NodePin,
  dir: string,
  base: string,
  signal: AbortSignal,
): Promise<RepackedNode> {
  const packageHash = createHash("sha512");
  const nodeHash = createHash("sha256");
  const tgzHash = createHash("sha256");
  const input = hashTap(packageHash);
  const output = hashTap(tgzHash);
  let nodeBytes: number | undefined;
  const part = join(dir, `${base}.${process.pid}-${randomBytes(4).toString("hex")}.part`);
  try {
    try {
      await pipeline(
        createReadStream(source),
        input.tap,
        createGunzip(),
        Duplex.from(async function* (unpacked: AsyncIterable<Buffer>) {
          for await (const entry of tarEntries(unpacked, TAR_LIMITS)) {
            if (entry.name !== NODE_EXE_IN_PACKAGE) continue;
            if (nodeBytes !== undefined)
              throw new NodePackageError(`${source} holds ${NODE_EXE_IN_PACKAGE} twice`);
            if (entry.type !== TarType.FILE && entry.type !== TarType.OLD_FILE)
              throw new NodePackageError(`${source}: ${NODE_EXE_IN_PACKAGE} is not a regular file`);
            nodeBytes = entry.size;
            yield* tarArchive([
              {
                name: "node.exe",
                size: entry.size,
                mode: 0o644,
                mtime: 0,
                data: hashed(entry.body, nodeHash),
              },
            ]);
          }
        }),
        createGzip({ level: 6 }),
        output.tap,
        createWriteStream(part, { mode: 0o600 }),
        { signal },
      );
    } catch (err) {
      // Not gzip, or a read or write that failed: typed like the package's other faults.
      if (signal.aborted || isSumacError(err)) throw err;
      const why = err instanceof Error ? err.message : String(err);
      throw new NodePackageError(`${source} cannot be repacked: ${why}`, { cause: err });
    }
    if (nodeBytes === undefined) throw new NodePackageError(`${source} has no ${NODE_EXE_IN_PACKAGE}`);
    if (sriOf(packageHash) !== pin.integrity)
      throw new NodePackageError(`${source} changed while it was read`);
    const tgzSha256 = tgzHash.digest("hex");
    const tgzFile = tgzFileName(base, tgzSha256);
    await rename(part, join(dir, tgzFile));
    return { nodeSha256: nodeHash.digest("hex"), nodeBytes, tgzFile, tgzSha256, tgzBytes: output.bytes() };
  } finally {
    await rm(part, { force: true });
  }
}

async function* hashed(body: AsyncIterable<Buffer>, hash: Hash): AsyncGenerator<Buffer> {
  for await (const piece of body) {
    hash.update(piece);
    yield piece;
  }
}
