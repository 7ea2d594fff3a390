/**
 * The few NDR 2.0 constructions the svcctl calls use (C706 chapter 14, little-endian, as MS-RPCE
 * 2.2.5 negotiates): context handles, strings behind top-level reference and unique pointers,
 * and DWORDs. Top-level [in] pointers have their referents written right after themselves
 * (C706 14.3.12.1), so a request stub is a flat sequence of these.
 *
 * Unique pointers get referent IDs 0x00020000, 0x00020004, ... in the order they are written, as
 * Windows' own stubs number them. Alignment gaps are zeros.
 */
import { ByteReader, ByteWriter, check } from "../wire/bytes.ts";

/** Bytes of a context handle (MS-RPCE 2.2.5.2.1: 4-byte attributes, 16-byte UUID). */
export const CONTEXT_HANDLE_LENGTH = 20;

/** The longest string the codecs accept, in UTF-16 units with its terminator (MS-SCMR 2.2.1 caps names at 256). */
export const MAX_STRING_UNITS = 4096;

const FIRST_REFERENT_ID = 0x00020000;

/** A writer of one stub, numbering unique pointers as it goes. */
export class StubWriter {
  readonly w = new ByteWriter(128);
  private nextReferent = FIRST_REFERENT_ID;

  u32(v: number): this {
    this.w.align(4).u32le(v);
    return this;
  }

  handle(handle: Buffer): this {
    check(handle.length === CONTEXT_HANDLE_LENGTH, `a context handle has ${handle.length} bytes, not 20`);
    this.w.align(4).bytes(handle);
    return this;
  }

  /** A [string] wchar_t* behind a reference pointer: the conformant varying array only (C706 14.3.4). */
  refString(text: string): this {
    const units = Buffer.from(`${text}\0`, "utf16le");
    const count = units.length / 2;
    this.w.align(4).u32le(count).u32le(0).u32le(count).bytes(units);
    return this;
  }

  /** A [string, unique] wchar_t*: a referent ID (0 for null) and then the string. */
  uniqueString(text: string | null): this {
    if (text === null) return this.u32(0);
    this.u32(this.referent());
    return this.refString(text);
  }

  /** A null unique pointer. */
  nullPointer(): this {
    return this.u32(0);
  }

  private referent(): number {
    const id = this.nextReferent;
    this.nextReferent += 4;
    return id;
  }

  toBuffer(): Buffer {
    return this.w.toBuffer();
  }
}

/** A reader of one stub; every read is bounds-checked. */
export class StubReader {
  readonly r: ByteReader;

  constructor(stub: Buffer, what: string) {
    this.r = new ByteReader(stub, what);
  }

  private align(n: number): void {
    this.r.skip((n - (this.r.offset % n)) % n, "alignment");
  }

  u32(): number {
    this.align(4);
    return this.r.u32le();
  }

  handle(): Buffer {
    this.align(4);
    return Buffer.from(this.r.bytes(CONTEXT_HANDLE_LENGTH, "context handle"));
  }

  /** A [string] wchar_t* array: offset 0, actual count = max count, ending in its terminator. */
  refString(field: string): string {
    const max = this.u32();
    const offset = this.r.u32le();
    const actual = this.r.u32le();
    check(max <= MAX_STRING_UNITS, `${this.r.what}: ${field} of ${max} units is over its cap`);
    check(offset === 0 && actual === max, `${this.r.what}: ${field} is not a whole string`);
    check(actual >= 1, `${this.r.what}: ${field} has no terminator`);
    const text = this.r.utf16le(actual * 2, field);
    check(text.endsWith("\0"), `${this.r.what}: ${field} does not end in a null`);
    return text.slice(0, -1);
  }

  uniqueString(field: string): string | null {
    return this.u32() === 0 ? null : this.refString(field);
  }

  /** Throws unless every byte was read: trailing bytes mean the stub is not what was expected. */
  end(): void {
    check(this.r.remaining === 0, `${this.r.what}: ${this.r.remaining} bytes after the last field`);
  }
}
