/** Helpers of the tar tests: reading whole archives, delivering bytes in pieces, raw entries. */
import { Readable } from "node:stream";
import {
  BLOCK,
  encodeTarHeader,
  type TarHeader,
  TarType,
} from "../../../actors/target/windows/tar-header.ts";
import {
  tarArchive,
  type TarFileInput,
  type TarLimits,
  tarEntries,
} from "../../../actors/target/windows/tar.ts";

export interface Read {
  readonly name: string;
  readonly type: string;
  readonly size: number;
  readonly mode: number;
  readonly mtime: number;
  readonly linkName: string;
  readonly data: Buffer;
}

export async function readAll(source: AsyncIterable<Uint8Array>, limits?: TarLimits): Promise<Read[]> {
  const out: Read[] = [];
  for await (const e of tarEntries(source, limits)) {
    const pieces: Buffer[] = [];
    for await (const piece of e.body) pieces.push(piece);
    out.push({ ...e, data: Buffer.concat(pieces) });
  }
  return out;
}

/** `bytes` delivered in pieces of the given sizes (cycled), as a stream or a socket would. */
export function inPieces(bytes: Buffer, sizes: readonly number[] = [bytes.length || 1]): Readable {
  const pieces: Buffer[] = [];
  for (let at = 0, i = 0; at < bytes.length; i++) {
    const n = Math.max(1, sizes[i % sizes.length]!);
    pieces.push(bytes.subarray(at, at + n));
    at += n;
  }
  return Readable.from(pieces);
}

export async function archive(files: readonly TarFileInput[]): Promise<Buffer> {
  const out: Buffer[] = [];
  for await (const piece of tarArchive(files)) out.push(piece);
  return Buffer.concat(out);
}

export const plain: TarHeader = {
  name: "a",
  type: TarType.FILE,
  mode: 0o644,
  uid: 0,
  gid: 0,
  size: 0,
  mtime: 0,
  linkName: "",
  uname: "",
  gname: "",
};

/** A raw header (the encoder does not judge names), with `data` after it padded to a block. */
export function entry(h: Partial<TarHeader>, data: Buffer = Buffer.alloc(0)): Buffer {
  const size = h.size ?? data.length;
  const pad = Buffer.alloc((BLOCK - (size % BLOCK)) % BLOCK);
  return Buffer.concat([encodeTarHeader({ ...plain, ...h, size }), data, pad]);
}

export const END = Buffer.alloc(2 * BLOCK);

/** Sets the checksum of a header changed by hand, so that only the change is wrong. */
export function resum(block: Buffer): Buffer {
  block.fill(0x20, 148, 156);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += block[i]!;
  block.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148, "latin1");
  return block;
}
