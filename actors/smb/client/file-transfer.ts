/**
 * Whole-file transfers on a tree: an upload is CREATE (overwrite), WRITEs of up to the negotiated
 * size several at a time (MS-SMB2 3.2.4.7; the credit window paces them), and CLOSE; a download
 * the same with READs, refused past the caller's cap.
 */
import { createHash } from "node:crypto";
import { SumacError } from "../../../base/errors.ts";
import { RemoteUploadError } from "../../remote-errors.ts";
import { Command, HEADER_SIZE } from "../codec/header.ts";
import { Access, CreateDisposition, CreateOption, FileAttribute } from "../codec/create.ts";
import {
  Channel,
  decodeReadResponse,
  decodeWriteResponse,
  encodeReadRequest,
  encodeWriteRequestHead,
  WRITE_DATA_OFFSET,
} from "../codec/read-write.ts";
import { NtStatus } from "../codec/status.ts";
import { Budget } from "./budget.ts";
import type { CallOptions } from "./connection.ts";
import type { TreeIo } from "./tree-io.ts";
import { fillWrites, MessagePool, type FilledWrite, type UploadSource } from "./upload-source.ts";

export type { UploadSource } from "./upload-source.ts";

const EMPTY = Buffer.alloc(0);

/** WRITEs or READs in flight at once: enough to fill a LAN's pipe with 1 MiB requests. */
const IN_FLIGHT = 4;

/** A file larger than the caller's cap (readFile's maxBytes). */
export class SmbFileTooLargeError extends SumacError<"OUTPUT_TOO_LARGE"> {
  constructor(message: string) {
    super("OUTPUT_TOO_LARGE", message);
  }
}

/** How downloads open a file. */
const readSpec = {
  access: Access.FILE_READ_DATA | Access.FILE_READ_ATTRIBUTES | Access.SYNCHRONIZE,
  options: CreateOption.NON_DIRECTORY_FILE,
};

/**
 * Writes `source` to `path` (created or overwritten); resolves with its size and SHA-256 (of what
 * was sent, which the server acknowledged byte for byte).
 */
export async function writeFile(
  io: TreeIo,
  path: string,
  source: UploadSource,
  options: CallOptions & { readonly onProgress?: (bytes: number) => void },
): Promise<{ bytes: number; sha256: string }> {
  const budget = new Budget(options);
  const spec = {
    access:
      Access.FILE_WRITE_DATA |
      Access.FILE_READ_ATTRIBUTES |
      Access.FILE_WRITE_ATTRIBUTES |
      Access.SYNCHRONIZE,
    disposition: CreateDisposition.OVERWRITE_IF,
    options: CreateOption.NON_DIRECTORY_FILE,
    attributes: FileAttribute.NORMAL,
  };
  return io.withOpen(
    path,
    spec,
    () => budget.next(),
    async (file) => {
      const hash = createHash("sha256");
      const inFlight = new Set<Promise<void>>();
      let failure: Error | undefined;
      let offset = 0;
      let acknowledged = 0;
      const pool = new MessagePool(io.maxWrite);
      const writeAt = async (at: number, data: FilledWrite): Promise<void> => {
        encodeWriteRequestHead(
          { offset: BigInt(at), fileId: file.fileId, channel: Channel.NONE, remainingBytes: 0, flags: 0 },
          data.length,
        ).copy(data.message, HEADER_SIZE);
        const response = await io.call(Command.WRITE, EMPTY, `WRITE ${path}`, budget.next(), {
          payloadSize: data.length,
          inPlace: data.message,
        });
        const { count } = decodeWriteResponse(response.message);
        // A Count (MS-SMB2 2.2.22) short of what was sent leaves a hole: the upload failed.
        if (count !== data.length)
          throw new RemoteUploadError(`WRITE ${path}: ${count} of ${data.length} bytes written at ${at}`);
        // Answered: the socket is done with it (after a failure it may not be, and it is not reused).
        pool.give(data.buffer);
        acknowledged += count;
        options.onProgress?.(acknowledged);
      };
      try {
        for await (const chunk of fillWrites(source, pool)) {
          if (failure !== undefined) break;
          hash.update(chunk.message.subarray(WRITE_DATA_OFFSET));
          const p: Promise<void> = writeAt(offset, chunk).then(
            () => void inFlight.delete(p),
            (err: unknown) => {
              inFlight.delete(p);
              failure ??= err instanceof Error ? err : new Error(String(err));
            },
          );
          inFlight.add(p);
          offset += chunk.length;
          if (inFlight.size >= IN_FLIGHT) await Promise.race(inFlight);
        }
      } finally {
        // A source that fails mid-way: the WRITEs it fed settle before the handle is closed.
        await Promise.all(inFlight);
      }
      if (failure !== undefined) throw failure;
      return { bytes: offset, sha256: hash.digest("hex") };
    },
  );
}

/** One READ at `at`: empty at the end of the file (STATUS_END_OF_FILE). */
async function readChunk(
  io: TreeIo,
  fileId: Buffer,
  path: string,
  at: number,
  length: number,
  options: CallOptions,
): Promise<Buffer> {
  const body = encodeReadRequest({
    padding: 0x50,
    flags: 0,
    length,
    offset: BigInt(at),
    fileId,
    minimumCount: 0,
    channel: Channel.NONE,
    remainingBytes: 0,
  });
  const response = await io.call(Command.READ, body, `READ ${path}`, options, {
    payloadSize: length,
    ok: [NtStatus.END_OF_FILE],
  });
  if (response.header.status >>> 0 === NtStatus.END_OF_FILE) return Buffer.alloc(0);
  return decodeReadResponse(response.message).data;
}

/**
 * The content of `path` chunk by chunk, with READs ahead of the consumer (at most
 * {@link IN_FLIGHT}); to the end of the file, also when it grew since the open. The handle is
 * closed when the iteration ends, fails or is left early.
 */
export async function* readFileStream(
  io: TreeIo,
  path: string,
  options: CallOptions,
): AsyncGenerator<Buffer> {
  const budget = new Budget(options);
  const file = await io.open(path, readSpec, budget.next());
  const ahead: Promise<Buffer>[] = [];
  let next = 0;
  let done = false;
  try {
    const size = Number(file.endOfFile);
    for (;;) {
      // Ahead while within the size known at the open; past it, one READ at a time until the end.
      while (ahead.length < IN_FLIGHT && (next < size || ahead.length === 0)) {
        const p = readChunk(io, file.fileId, path, next, io.maxRead, budget.next());
        p.catch(() => {}); // observed in order below
        ahead.push(p);
        next += io.maxRead;
      }
      const data = await ahead.shift()!;
      if (data.length === 0) break;
      yield data;
      if (data.length < io.maxRead) {
        // A short READ: the file ended here (or shrank); what was asked after it is dropped.
        break;
      }
    }
    done = true;
  } finally {
    await Promise.allSettled(ahead);
    if (done) await io.close(file.fileId, budget.next());
    else await io.closeQuietly(file.fileId);
  }
}

/** Reads the whole of `path`; rejects with OUTPUT_TOO_LARGE when it is over `maxBytes`. */
export async function readFile(
  io: TreeIo,
  path: string,
  options: CallOptions & { readonly maxBytes: number },
): Promise<Buffer> {
  const budget = new Budget(options);
  return io.withOpen(
    path,
    readSpec,
    () => budget.next(),
    async (file) => {
      const tooLarge = (size: bigint | number): SmbFileTooLargeError =>
        new SmbFileTooLargeError(
          `${path} on ${io.ctx.host}: ${size} bytes, over the cap of ${options.maxBytes}`,
        );
      if (file.endOfFile > BigInt(options.maxBytes)) throw tooLarge(file.endOfFile);
      const size = Number(file.endOfFile);
      const out = Buffer.alloc(size);
      const readAt = async (at: number, length: number): Promise<number> => {
        const data = await readChunk(io, file.fileId, path, at, length, budget.next());
        if (data.length > length) throw tooLarge(at + data.length);
        data.copy(out, at);
        return data.length;
      };
      // A READ may carry less than asked (MS-SMB2 2.2.20): read on from where it stopped, until
      // the chunk is full or the file ends (0 bytes, END_OF_FILE).
      const fill = async (at: number, length: number): Promise<number> => {
        let got = 0;
        for (let n = -1; got < length && n !== 0; got += n) n = await readAt(at + got, length - got);
        return got;
      };
      const offsets: number[] = [];
      for (let at = 0; at < size; at += io.maxRead) offsets.push(at);
      // What lies before the first chunk that ended early: a file that shrank while being read
      // ends there, and nothing after it (a hole, were it counted) is returned.
      let total = 0;
      let ended = false;
      for (let i = 0; i < offsets.length && !ended; i += IN_FLIGHT) {
        const batch = offsets.slice(i, i + IN_FLIGHT);
        const lengths = batch.map((at) => Math.min(io.maxRead, size - at));
        const counts = await Promise.all(batch.map((at, k) => fill(at, lengths[k]!)));
        for (const [k, count] of counts.entries()) {
          if (ended) break;
          total += count;
          ended = count < lengths[k]!;
        }
      }
      // The file may have grown since CREATE: a READ past the end answers END_OF_FILE when not.
      if (!ended && (await readAt(size, 1).catch(() => 0)) > 0) throw tooLarge(size + 1);
      return total === size ? out : out.subarray(0, total);
    },
  );
}
