/**
 * What every SMB2 message codec shares (MS-SMB2 2.2): a body starts after the 64-byte header with
 * its StructureSize, and its offsets count from the start of the header. Decoders get the whole
 * message; encoders return the body alone, writing offsets as body position + {@link HEADER_SIZE}.
 */
import { ByteReader, ByteWriter, check, decoding } from "../../wire/bytes.ts";
import { HEADER_SIZE } from "./header.ts";

/** Caps on the variable parts of messages, checked before anything is copied. */
export const Cap = {
  /** A GSS/SPNEGO token in NEGOTIATE and SESSION_SETUP. */
  SECURITY_BUFFER: 64 * 1024,
  /** READ and WRITE data: 8 MiB, the largest MaxReadSize a client asks, plus slack. */
  DATA: 8 * 1024 * 1024 + 64 * 1024,
  /** A path or share name, in bytes of UTF-16LE. */
  NAME: 32 * 1024,
  /** Negotiate contexts, create contexts, IOCTL and info buffers other than file data. */
  CONTEXTS: 64 * 1024,
  /** Dialects in a negotiate request. */
  DIALECTS: 64,
  /** Negotiate contexts in one message. */
  NEGOTIATE_CONTEXTS: 32,
  /** Algorithm ids in one negotiate context. */
  ALGORITHMS: 64,
  /** Entries decoded from one QUERY_DIRECTORY response. */
  DIRECTORY_ENTRIES: 16 * 1024,
  /** The output of QUERY_DIRECTORY, QUERY_INFO and IOCTL. */
  OUTPUT: 1024 * 1024 + 64 * 1024,
} as const;

/**
 * A reader placed after the StructureSize of the body of `message`, which must be `size`. The
 * body needs at least the fixed part (`size` rounded down to even: an odd size announces a
 * variable part, MS-SMB2 2.2).
 */
export function bodyReader(message: Buffer, what: string, size: number): ByteReader {
  const r = new ByteReader(message, what);
  check(
    message.length >= HEADER_SIZE + (size & ~1),
    `${what}: ${message.length} bytes, too short for a header and a body of ${size & ~1}`,
  );
  r.seek(HEADER_SIZE);
  const structureSize = r.u16le();
  check(structureSize === size, `${what}: StructureSize ${structureSize}, not ${size}`);
  return r;
}

/**
 * A copy of the `length` bytes at header offset `offset`, checked against the message and `cap`,
 * and refused when it overlaps the header or the fixed part of the body (whose StructureSize
 * {@link bodyReader} checked).
 */
export function bufferAt(r: ByteReader, offset: number, length: number, cap: number, field: string): Buffer {
  if (length !== 0) {
    const fixedEnd = HEADER_SIZE + (r.buffer.readUInt16LE(HEADER_SIZE) & ~1);
    check(offset >= fixedEnd, `${r.what}: ${field} at offset ${offset} overlaps the fixed fields`);
  }
  return Buffer.from(r.slice(offset, length, cap, field));
}

/** UTF-16LE text of `length` bytes at header offset `offset`, capped at {@link Cap.NAME}. */
export function textAt(r: ByteReader, offset: number, length: number, field: string): string {
  check(length % 2 === 0, `${r.what}: ${field} has an odd length ${length}`);
  return bufferAt(r, offset, length, Cap.NAME, field).toString("utf16le");
}

/** Header offset of a body position. */
export function headerOffset(bodyPosition: number): number {
  return bodyPosition + HEADER_SIZE;
}

/** Throws unless `n` fits in an unsigned field of `bits` bits (encoders refuse to truncate). */
export function checkFits(n: number, bits: 8 | 16 | 32, field: string): void {
  check(Number.isInteger(n) && n >= 0 && n < 2 ** bits, `${field} ${n} does not fit in ${bits} bits`);
}

/** The one zero byte a body whose variable part is empty still carries (MS-SMB2 2.2). */
export const ONE_ZERO: Buffer = Buffer.alloc(1);
/** No bytes. */
export const NONE: Buffer = Buffer.alloc(0);

/**
 * The bytes of `message` after header offset `end` (where the body's fields and variable parts
 * stop): padding that a sender chose. Undefined when they are `usual`, what the encoder writes when
 * given no trailer, so that decode(encode(x)) is x while a captured message still re-encodes
 * byte for byte.
 */
export function readTrailer(r: ByteReader, end: number, usual: Buffer): Buffer | undefined {
  const at = Math.min(end, r.buffer.length);
  const rest = r.slice(at, r.buffer.length - at, Cap.CONTEXTS, "padding after the body");
  return rest.equals(usual) ? undefined : Buffer.from(rest);
}

/** Header offset of the first byte after the `length` bytes at `offset` (none when empty). */
export function endOf(offset: number, length: number): number {
  return length === 0 ? 0 : offset + length;
}

/** The body of the messages that carry nothing: StructureSize 4 and a reserved field. */
export function encodeReservedOnly(): Buffer {
  return Buffer.from([4, 0, 0, 0]);
}

/** Checks the body of a message that carries nothing (StructureSize 4). */
export function decodeReservedOnly(message: Buffer, what: string): Record<string, never> {
  return decoding(what, () => {
    bodyReader(message, what, 4).skip(2, "reserved");
    return {};
  });
}

/**
 * The body QUERY_INFO and QUERY_DIRECTORY responses share (MS-SMB2 2.2.38, 2.2.34): StructureSize
 * 9, then the offset and length of one output buffer.
 */
export interface OutputResponse {
  readonly output: Buffer;
  readonly trailer?: Buffer;
}

/** Encodes an {@link OutputResponse} body. */
export function encodeOutputResponse(what: string, res: OutputResponse): Buffer {
  check(res.output.length <= Cap.OUTPUT, `${what}: output over its cap`);
  return new ByteWriter(8 + res.output.length)
    .u16le(9)
    .u16le(headerOffset(8))
    .u32le(res.output.length)
    .bytes(res.output)
    .bytes(res.trailer ?? (res.output.length === 0 ? ONE_ZERO : NONE))
    .toBuffer();
}

/** Decodes the whole message of an {@link OutputResponse}. */
export function decodeOutputResponse(what: string, message: Buffer): OutputResponse {
  return decoding(what, () => {
    const r = bodyReader(message, what, 9);
    const offset = r.u16le();
    const length = r.u32le();
    const output = bufferAt(r, offset, length, Cap.OUTPUT, "output");
    const end = Math.max(headerOffset(8), endOf(offset, length));
    const trailer = readTrailer(r, end, length === 0 ? ONE_ZERO : NONE);
    return trailer ? { output, trailer } : { output };
  });
}
