/**
 * Pipelined SFTP upload: many WRITE requests in flight, as ssh2's `fastPut` does, because
 * `createWriteStream` keeps one in flight and so pays a round trip per 32 KiB (DESIGN.md). One
 * code path for files and Buffers, reading the source once, in order, and hashing exactly the
 * bytes sent: the SHA-256 checked on the target afterwards is of what went over the wire.
 */
import { createHash } from "node:crypto";
import { open } from "node:fs/promises";
import type { SFTPWrapper } from "ssh2";
import { RemoteUploadError } from "../remote-errors.ts";

export interface UploadOptions {
  /** Mode given at open (umask applies); the caller sets the final mode. */
  readonly mode: number;
  readonly signal?: AbortSignal;
  /** Bytes per WRITE request (default 32 KiB, which every SFTP server takes). */
  readonly chunkSize?: number;
  /** WRITE requests in flight (default 32). */
  readonly inFlight?: number;
}

/** A source of chunks read in order. */
interface ChunkSource {
  next(size: number): Promise<Buffer | undefined>;
  close(): Promise<void>;
}

function bufferSource(data: Buffer): ChunkSource {
  let at = 0;
  return {
    next: (size) => {
      if (at >= data.length) return Promise.resolve(undefined);
      const chunk = data.subarray(at, Math.min(at + size, data.length));
      at += chunk.length;
      return Promise.resolve(chunk);
    },
    close: () => Promise.resolve(),
  };
}

async function fileSource(path: string): Promise<ChunkSource> {
  const handle = await open(path, "r");
  return {
    next: async (size) => {
      const buf = Buffer.allocUnsafe(size);
      let length = 0;
      while (length < size) {
        const { bytesRead } = await handle.read(buf, length, size - length, null);
        if (bytesRead === 0) break;
        length += bytesRead;
      }
      return length === 0 ? undefined : buf.subarray(0, length);
    },
    close: () => handle.close(),
  };
}

function call<T>(fn: (cb: (err: Error | null | undefined, value: T) => void) => void): Promise<T> {
  return new Promise((resolve, reject) => fn((err, value) => (err ? reject(err) : resolve(value))));
}

/**
 * Writes `source` (a local path or bytes) to `remotePath`, replacing it. Resolves with the size
 * and SHA-256 (hex) of what was written; rejects with `UPLOAD_FAILED` or the abort reason.
 */
export async function uploadPipelined(
  sftp: SFTPWrapper,
  source: string | Buffer,
  remotePath: string,
  options: UploadOptions,
): Promise<{ bytes: number; sha256: string }> {
  const { signal } = options;
  signal?.throwIfAborted();
  const chunkSize = options.chunkSize ?? 32 * 1024;
  const window = options.inFlight ?? 32;
  const what = typeof source === "string" ? source : `${source.length} bytes`;
  const failed = (error: unknown): RemoteUploadError =>
    new RemoteUploadError(`cannot upload ${what} to ${remotePath}: ${(error as Error).message}`, {
      cause: error,
    });

  let src: ChunkSource;
  try {
    src = typeof source === "string" ? await fileSource(source) : bufferSource(source);
  } catch (error) {
    throw failed(error);
  }
  let handle: Buffer | undefined;
  try {
    handle = await call<Buffer>((cb) => sftp.open(remotePath, "w", { mode: options.mode }, cb)).catch(
      (e: unknown) => {
        throw failed(e);
      },
    );
    const hash = createHash("sha256");
    const pending = new Set<Promise<void>>();
    let firstError: unknown;
    let position = 0;
    for (;;) {
      if (signal?.aborted === true) throw signal.reason;
      if (firstError !== undefined) throw failed(firstError);
      if (pending.size >= window) {
        await Promise.race(pending);
        continue;
      }
      const chunk = await src.next(chunkSize);
      if (chunk === undefined) break;
      hash.update(chunk);
      const at = position;
      position += chunk.length;
      const h = handle;
      const p = call<undefined>((cb) =>
        sftp.write(h, chunk, 0, chunk.length, at, (e) => cb(e, undefined)),
      ).then(
        () => {
          pending.delete(p);
        },
        (error: unknown) => {
          pending.delete(p);
          firstError ??= error;
        },
      );
      pending.add(p);
    }
    await Promise.all(pending);
    if (firstError !== undefined) throw failed(firstError);
    signal?.throwIfAborted();
    const closing = handle;
    handle = undefined;
    await call<undefined>((cb) => sftp.close(closing, (e) => cb(e, undefined))).catch((e: unknown) => {
      throw failed(e);
    });
    return { bytes: position, sha256: hash.digest("hex") };
  } finally {
    await src.close().catch(() => undefined);
    if (handle) {
      const h = handle;
      sftp.close(h, () => undefined);
    }
  }
}
