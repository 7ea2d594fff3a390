/**
 * An upload's source cut into WRITE messages built in place: each chunk's bytes go straight into
 * a reused message buffer after the room left for the SMB2 header and the WRITE body (MS-SMB2
 * 2.2.21, data at 0x70), which the connection then signs or encrypts as it is. On these machines
 * memory touched for the first time costs more than the copy itself (about 13 µs a page), so the
 * buffers are reused from one WRITE to the next rather than allocated for each.
 */
import { ReadStream } from "node:fs";
import { open, stat } from "node:fs/promises";
import { WRITE_DATA_OFFSET } from "../codec/read-write.ts";

/** What an upload reads from. */
export type UploadSource = Buffer | AsyncIterable<Buffer | Uint8Array | string>;

/** One WRITE's message: `length` bytes of data at {@link WRITE_DATA_OFFSET} of `message`. */
export interface FilledWrite {
  /** Header and body left for the caller, then the data; exactly the message's length. */
  readonly message: Buffer;
  readonly length: number;
  /** The whole buffer, to give back to the pool once the WRITE is answered. */
  readonly buffer: Buffer;
}

/** Message buffers of one size, reused. */
export class MessagePool {
  private readonly free: Buffer[] = [];
  readonly dataSize: number;

  constructor(dataSize: number) {
    this.dataSize = dataSize;
  }

  take(): Buffer {
    // Every byte of a message is written before it is sent: no need to zero it.
    return this.free.pop() ?? Buffer.allocUnsafe(WRITE_DATA_OFFSET + this.dataSize);
  }

  /** Only once the server has answered the WRITE: the socket no longer holds the buffer then. */
  give(buffer: Buffer): void {
    this.free.push(buffer);
  }
}

/**
 * The path of a file stream nothing has read from yet (fs.createReadStream(path), as the file
 * channel makes for a path), so that the file is read directly into the pool's buffers rather
 * than through the stream's freshly allocated ones.
 */
function untouchedFile(source: UploadSource): string | undefined {
  if (!(source instanceof ReadStream) || typeof source.path !== "string") return undefined;
  const range = source as unknown as { start?: number; end?: number };
  const whole = range.start === undefined && (range.end === undefined || range.end === Infinity);
  const unread = source.bytesRead === 0 && source.readableLength === 0 && source.readableFlowing === null;
  return whole && unread && !source.destroyed ? source.path : undefined;
}

/** A regular file, read in order from its start. */
async function* fromFile(path: string, pool: MessagePool): AsyncGenerator<FilledWrite> {
  const file = await open(path, "r");
  try {
    for (;;) {
      const buffer = pool.take();
      let length = 0;
      while (length < pool.dataSize) {
        const { bytesRead } = await file.read(
          buffer,
          WRITE_DATA_OFFSET + length,
          pool.dataSize - length,
          null,
        );
        if (bytesRead === 0) break;
        length += bytesRead;
      }
      if (length === 0) return pool.give(buffer);
      yield { message: buffer.subarray(0, WRITE_DATA_OFFSET + length), length, buffer };
      if (length < pool.dataSize) return;
    }
  } finally {
    await file.close();
  }
}

function* fromBuffer(source: Buffer, pool: MessagePool): Generator<FilledWrite> {
  for (let at = 0; at < source.length; at += pool.dataSize) {
    const buffer = pool.take();
    const length = source.copy(buffer, WRITE_DATA_OFFSET, at, Math.min(source.length, at + pool.dataSize));
    yield { message: buffer.subarray(0, WRITE_DATA_OFFSET + length), length, buffer };
  }
}

async function* fromIterable(
  source: AsyncIterable<Buffer | Uint8Array | string>,
  pool: MessagePool,
): AsyncGenerator<FilledWrite> {
  let buffer = pool.take();
  let length = 0;
  for await (const piece of source) {
    let rest =
      typeof piece === "string"
        ? Buffer.from(piece)
        : Buffer.from(piece.buffer, piece.byteOffset, piece.byteLength);
    while (rest.length > 0) {
      const n = rest.copy(
        buffer,
        WRITE_DATA_OFFSET + length,
        0,
        Math.min(rest.length, pool.dataSize - length),
      );
      length += n;
      rest = rest.subarray(n);
      if (length === pool.dataSize) {
        yield { message: buffer, length, buffer };
        buffer = pool.take();
        length = 0;
      }
    }
  }
  if (length > 0) yield { message: buffer.subarray(0, WRITE_DATA_OFFSET + length), length, buffer };
  else pool.give(buffer);
}

/**
 * The source as WRITE messages of `pool.dataSize` bytes of data each (the last one shorter, none
 * when it is empty), the header and body room of each left for the caller to fill.
 */
export function fillWrites(
  source: UploadSource,
  pool: MessagePool,
): Generator<FilledWrite> | AsyncGenerator<FilledWrite> {
  if (Buffer.isBuffer(source)) return fromBuffer(source, pool);
  const file = untouchedFile(source);
  if (file !== undefined) return fromFileStream(source as ReadStream, file, pool);
  return fromIterable(source, pool);
}

/**
 * A regular file is read by path, and its stream closed unread; anything else (a FIFO, a device)
 * through the stream itself, since opening it a second time would not give the same bytes.
 */
async function* fromFileStream(
  stream: ReadStream,
  path: string,
  pool: MessagePool,
): AsyncGenerator<FilledWrite> {
  const info = await stat(path).catch(() => undefined);
  if (info?.isFile() !== true) {
    yield* fromIterable(stream, pool);
    return;
  }
  stream.destroy();
  yield* fromFile(path, pool);
}
