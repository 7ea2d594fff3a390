/**
 * What every SMB2 message codec shares (MS-SMB2 2.2): a body starts after the 64-byte header with
 * its StructureSize, and its offsets count from the start of the header. Decoders get the whole
 * message; encoders return the body alone, writing offsets as body position + {@link HEADER_SIZE}.
 */
import { ByteReader, check } from "../../wire/bytes.ts";
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

/** A copy of the `length` bytes at header offset `offset`, checked against the message and `cap`. */
export function bufferAt(r: ByteReader, offset: number, length: number, cap: number, field: string): Buffer {
  if (length !== 0) check(offset >= HEADER_SIZE, `${r.what}: ${field} offset ${offset} lies in the header`);
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
