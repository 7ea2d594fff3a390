/**
 * Bounded reading and writing of little- and big-endian binary packets, for the codecs of the
 * Windows transport (SMB2, NTLMSSP, SPNEGO, NetBIOS, DCE/RPC). They never touch a socket (STYLE.md
 * item 5): bytes in, typed values out, and back.
 *
 * Every read is checked against the buffer it reads from: a length or offset that points past the
 * end, or over the cap the caller gives, throws {@link MalformedPacketError} before anything is
 * allocated. A codec lets no other kind of exception out (no RangeError from Buffer, no TypeError):
 * a malformed packet from a hostile server is one typed error.
 */
import { errorClass } from "../../base/errors.ts";

/** A packet that does not decode: truncated, a field out of range, a length past its end or cap. */
export class MalformedPacketError extends errorClass("MALFORMED_PACKET") {}

/** Throws {@link MalformedPacketError} with `message` unless `condition` holds. */
export function check(condition: boolean, message: string): asserts condition {
  if (!condition) throw new MalformedPacketError(message);
}

/**
 * Runs a decoder and turns anything it throws other than {@link MalformedPacketError} (a bug in the
 * codec meeting an unforeseen input) into one, so that callers only ever see the typed error.
 */
export function decoding<T>(what: string, decode: () => T): T {
  try {
    return decode();
  } catch (err) {
    if (err instanceof MalformedPacketError) throw err;
    throw new MalformedPacketError(`${what}: ${err instanceof Error ? err.message : String(err)}`, {
      cause: err,
    });
  }
}

/**
 * A cursor over a buffer whose every read is bounds-checked. Offsets are relative to the buffer
 * given (for SMB2, the start of the header, as the protocol's offsets are).
 *
 * @example
 * const r = new ByteReader(frame, "SMB2 header");
 * const magic = r.bytes(4);
 * const length = r.u16le();
 */
export class ByteReader {
  /** Where the next read starts. */
  offset: number;
  readonly buffer: Buffer;
  /** Names the packet in error messages. */
  readonly what: string;

  constructor(buffer: Buffer, what: string, offset = 0) {
    this.buffer = buffer;
    this.what = what;
    check(offset >= 0 && offset <= buffer.length, `${what}: offset ${offset} outside ${buffer.length} bytes`);
    this.offset = offset;
  }

  /** Bytes left after the cursor. */
  get remaining(): number {
    return this.buffer.length - this.offset;
  }

  /** Throws unless `n` bytes are left. */
  need(n: number, field = "field"): void {
    check(
      Number.isInteger(n) && n >= 0 && n <= this.remaining,
      `${this.what}: ${field} needs ${n} bytes at offset ${this.offset}, ${this.remaining} left`,
    );
  }

  u8(): number {
    this.need(1);
    return this.buffer.readUInt8(this.offset++);
  }

  u16le(): number {
    this.need(2);
    const v = this.buffer.readUInt16LE(this.offset);
    this.offset += 2;
    return v;
  }

  u16be(): number {
    this.need(2);
    const v = this.buffer.readUInt16BE(this.offset);
    this.offset += 2;
    return v;
  }

  u32le(): number {
    this.need(4);
    const v = this.buffer.readUInt32LE(this.offset);
    this.offset += 4;
    return v;
  }

  u32be(): number {
    this.need(4);
    const v = this.buffer.readUInt32BE(this.offset);
    this.offset += 4;
    return v;
  }

  u64le(): bigint {
    this.need(8);
    const v = this.buffer.readBigUInt64LE(this.offset);
    this.offset += 8;
    return v;
  }

  /** `n` bytes, a view into the buffer (copy it when it must outlive the buffer). */
  bytes(n: number, field = "bytes"): Buffer {
    this.need(n, field);
    const v = this.buffer.subarray(this.offset, this.offset + n);
    this.offset += n;
    return v;
  }

  skip(n: number, field = "padding"): void {
    this.need(n, field);
    this.offset += n;
  }

  /** Moves the cursor to `offset` (for offset fields); throws when it lies outside the buffer. */
  seek(offset: number, field = "offset"): void {
    check(
      Number.isInteger(offset) && offset >= 0 && offset <= this.buffer.length,
      `${this.what}: ${field} ${offset} outside ${this.buffer.length} bytes`,
    );
    this.offset = offset;
  }

  /**
   * The `length` bytes at `offset` of the buffer (an offset/length pair of the packet), checked
   * against the buffer and against `cap`. A zero length gives an empty buffer whatever the offset.
   */
  slice(offset: number, length: number, cap: number, field: string): Buffer {
    check(length <= cap, `${this.what}: ${field} of ${length} bytes is over its cap of ${cap}`);
    if (length === 0) return Buffer.alloc(0);
    check(
      offset >= 0 && offset + length <= this.buffer.length,
      `${this.what}: ${field} (${length} bytes at offset ${offset}) goes past the end (${this.buffer.length} bytes)`,
    );
    return this.buffer.subarray(offset, offset + length);
  }

  /** UTF-16LE text of `byteLength` bytes at the cursor (an even number). */
  utf16le(byteLength: number, field = "string"): string {
    check(byteLength % 2 === 0, `${this.what}: ${field} has an odd length ${byteLength}`);
    return this.bytes(byteLength, field).toString("utf16le");
  }
}

/**
 * A growing buffer for encoders. Writes append at the end; `patch*` overwrite an earlier field (a
 * length or offset known only once what follows is written).
 */
export class ByteWriter {
  private chunks: Buffer;
  private used = 0;

  constructor(initialSize = 256) {
    this.chunks = Buffer.alloc(initialSize);
  }

  /** Bytes written so far. */
  get length(): number {
    return this.used;
  }

  /**
   * Reserves `n` bytes and returns where they start. Callers take the offset before naming
   * `this.chunks`: growing replaces the buffer, and a write into the old one would be lost.
   */
  private room(n: number): number {
    const at = this.used;
    if (at + n > this.chunks.length) {
      const grown = Buffer.alloc(Math.max(this.chunks.length * 2, at + n));
      this.chunks.copy(grown, 0, 0, at);
      this.chunks = grown;
    }
    this.used += n;
    return at;
  }

  u8(v: number): this {
    const at = this.room(1);
    this.chunks.writeUInt8(v, at);
    return this;
  }

  u16le(v: number): this {
    const at = this.room(2);
    this.chunks.writeUInt16LE(v, at);
    return this;
  }

  u16be(v: number): this {
    const at = this.room(2);
    this.chunks.writeUInt16BE(v, at);
    return this;
  }

  u32le(v: number): this {
    const at = this.room(4);
    this.chunks.writeUInt32LE(v >>> 0, at);
    return this;
  }

  u32be(v: number): this {
    const at = this.room(4);
    this.chunks.writeUInt32BE(v >>> 0, at);
    return this;
  }

  u64le(v: bigint): this {
    const at = this.room(8);
    this.chunks.writeBigUInt64LE(BigInt.asUintN(64, v), at);
    return this;
  }

  bytes(b: Uint8Array): this {
    const at = this.room(b.length);
    this.chunks.set(b, at);
    return this;
  }

  zeros(n: number): this {
    const at = this.room(n);
    this.chunks.fill(0, at, this.used);
    return this;
  }

  /** Zero bytes up to the next multiple of `n` (counted from the start of this writer). */
  align(n: number): this {
    const pad = (n - (this.used % n)) % n;
    return this.zeros(pad);
  }

  utf16le(text: string): this {
    return this.bytes(Buffer.from(text, "utf16le"));
  }

  patchU16le(offset: number, v: number): this {
    this.chunks.writeUInt16LE(v, offset);
    return this;
  }

  patchU32le(offset: number, v: number): this {
    this.chunks.writeUInt32LE(v >>> 0, offset);
    return this;
  }

  /** A copy of what was written. */
  toBuffer(): Buffer {
    return Buffer.from(this.chunks.subarray(0, this.used));
  }
}
