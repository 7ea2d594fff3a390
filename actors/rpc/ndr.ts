/**
 * NDR 2.0 marshalling for DCE/RPC stubs (C706 chapter 14, MS-RPCE 2.2.5), little-endian, as the
 * packed drep of every PDU sumac sends says (C706 14.2.5, 0x10 0x00 0x00 0x00).
 *
 * Alignment is relative to the start of the stub (C706 14.2.2: "the octet stream begins at an
 * alignment boundary"), which is why a stub is written into its own writer and read from its own
 * buffer, never at an offset inside a PDU.
 *
 * Pointers: operation parameters are top-level pointers, whose referent follows at once (C706
 * 14.3.12.1); the `unique*` helpers write and read that form. Pointers embedded in a structure
 * or array defer their referents until after it (C706 14.3.12.3): a caller writes the referent ids
 * with {@link NdrWriter.pointer} inside the structure, then the referents, in the same order.
 *
 * @example
 * // ROpenSCManagerW (MS-SCMR 3.1.4.15): [in,string,unique] lpMachineName, lpDatabaseName, [in] DWORD
 * const stub = new NdrWriter().uniqueWstring("host").uniqueWstring("ServicesActive").u32(0xf003f).toBuffer();
 * // its answer: [out] SC_RPC_HANDLE, then the DWORD return value
 * const r = new NdrReader(answer, "ROpenSCManagerW answer");
 * const handle = r.contextHandle();
 * const status = r.u32();
 */
import { ByteReader, ByteWriter, check } from "../wire/bytes.ts";

/** Size of a context handle on the wire (C706 Appendix N, MS-RPCE 2.2.4.1): attributes and a UUID. */
export const CONTEXT_HANDLE_SIZE = 20;
/** Default cap of one string read, in UTF-16 code units with the NUL. */
export const NDR_MAX_STRING_UNITS = 32 * 1024;
/** Default cap of one byte array read. */
export const NDR_MAX_ARRAY_BYTES = 4 * 1024 * 1024;
/** The first referent id the writer gives (any non-zero value is valid; Windows starts here too). */
const FIRST_REFERENT = 0x00020000;

/** Writes one NDR 2.0 stub; every method returns the writer so calls chain. */
export class NdrWriter {
  private readonly w = new ByteWriter();
  private nextReferent = FIRST_REFERENT;

  /** Bytes written so far (the stub's offset of the next field before its alignment). */
  get length(): number {
    return this.w.length;
  }

  /** Zero padding up to a multiple of `n` from the stub's start. */
  align(n: 1 | 2 | 4 | 8): this {
    this.w.align(n);
    return this;
  }

  u8(v: number): this {
    this.w.u8(v);
    return this;
  }

  u16(v: number): this {
    this.w.align(2).u16le(v);
    return this;
  }

  u32(v: number): this {
    this.w.align(4).u32le(v);
    return this;
  }

  /** A hyper (C706 14.2.5), aligned to 8. */
  u64(v: bigint): this {
    this.w.align(8).u64le(v);
    return this;
  }

  /** Raw bytes without alignment or count (a fixed array of bytes, C706 14.3.3.1). */
  bytes(b: Uint8Array): this {
    this.w.bytes(b);
    return this;
  }

  /** A unique or full pointer's referent id: a fresh non-zero id when `present`, else 0 (NULL). */
  pointer(present: boolean): this {
    if (!present) return this.u32(0);
    const id = this.nextReferent;
    this.nextReferent += 4;
    return this.u32(id);
  }

  /**
   * A conformant varying string, `[string] wchar_t*` (C706 14.3.4.2): max_count, offset 0,
   * actual_count, then UTF-16LE units and a terminating NUL, all counts including the NUL.
   */
  wstring(text: string): this {
    check(!text.includes("\0"), "NDR: a [string] with a NUL inside");
    const units = text.length + 1;
    this.u32(units).u32(0).u32(units);
    this.w.utf16le(text).u16le(0);
    return this;
  }

  /** A top-level `[unique, string] wchar_t*`: NULL when `text` is undefined. */
  uniqueWstring(text: string | undefined): this {
    this.pointer(text !== undefined);
    return text === undefined ? this : this.wstring(text);
  }

  /** A conformant array of bytes, `[size_is(n)] byte*` (C706 14.3.3.2): max_count then the bytes. */
  conformantBytes(data: Uint8Array): this {
    this.u32(data.length);
    this.w.bytes(data);
    return this;
  }

  /** A top-level `[unique, size_is(n)] byte*`: NULL when `data` is undefined. */
  uniqueConformantBytes(data: Uint8Array | undefined): this {
    this.pointer(data !== undefined);
    return data === undefined ? this : this.conformantBytes(data);
  }

  /** A top-level `[unique] DWORD*` (RCreateServiceW's lpdwTagId): NULL when `v` is undefined. */
  uniqueU32(v: number | undefined): this {
    this.pointer(v !== undefined);
    return v === undefined ? this : this.u32(v);
  }

  /** A context handle (MS-RPCE 2.2.4.1), 20 opaque bytes aligned to 4. */
  contextHandle(handle: Uint8Array): this {
    check(handle.length === CONTEXT_HANDLE_SIZE, `NDR: a context handle of ${handle.length} bytes, not 20`);
    this.w.align(4).bytes(handle);
    return this;
  }

  /** A copy of the stub. */
  toBuffer(): Buffer {
    return this.w.toBuffer();
  }
}

/**
 * Reads one NDR 2.0 stub. Every count is checked against the bytes left and a cap before anything
 * is allocated; every failure is a MalformedPacketError. Callers wrap their decode of a whole
 * answer in `decoding()`.
 */
export class NdrReader {
  private readonly r: ByteReader;

  /** `stub` must start at the stub's first byte: alignment counts from there. */
  constructor(stub: Buffer, what: string) {
    this.r = new ByteReader(stub, what);
  }

  /** Bytes left after the cursor. */
  get remaining(): number {
    return this.r.remaining;
  }

  /** Where the cursor is, from the stub's start. */
  get offset(): number {
    return this.r.offset;
  }

  /** Skips the padding up to a multiple of `n` (its content is not checked: C706 leaves it unspecified). */
  align(n: 1 | 2 | 4 | 8): this {
    this.r.skip((n - (this.r.offset % n)) % n, "alignment padding");
    return this;
  }

  u8(): number {
    return this.r.u8();
  }

  u16(): number {
    return this.align(2).r.u16le();
  }

  u32(): number {
    return this.align(4).r.u32le();
  }

  u64(): bigint {
    return this.align(8).r.u64le();
  }

  /** `n` raw bytes (a fixed array), a copy. */
  bytes(n: number, field = "bytes"): Buffer {
    return Buffer.from(this.r.bytes(n, field));
  }

  /** A pointer's referent id; 0 is NULL. */
  pointer(): number {
    return this.u32();
  }

  /**
   * A conformant varying `[string] wchar_t*`, without its terminating NUL. Checks that
   * offset + actual_count ≤ max_count, that actual_count is within `maxUnits` and the buffer, and
   * that the string ends with a NUL (C706 14.3.4.2: a [string] includes its terminator).
   */
  wstring(maxUnits = NDR_MAX_STRING_UNITS, field = "string"): string {
    const what = `${this.r.what}: ${field}`;
    const maxCount = this.u32();
    const offset = this.u32();
    const actual = this.u32();
    check(
      offset <= maxCount && actual <= maxCount - offset,
      `${what}: offset ${offset} and actual count ${actual} exceed max count ${maxCount}`,
    );
    check(actual >= 1, `${what}: an empty [string] without its NUL`);
    check(actual <= maxUnits, `${what}: ${actual} units, over the cap of ${maxUnits}`);
    const raw = this.r.bytes(actual * 2, field);
    check(raw.readUInt16LE(raw.length - 2) === 0, `${what}: not terminated by a NUL`);
    return raw.subarray(0, raw.length - 2).toString("utf16le");
  }

  /** A top-level `[unique, string] wchar_t*`; undefined for NULL. */
  uniqueWstring(maxUnits = NDR_MAX_STRING_UNITS, field = "string"): string | undefined {
    return this.pointer() === 0 ? undefined : this.wstring(maxUnits, field);
  }

  /** A conformant array of bytes: max_count, then that many bytes (a copy). */
  conformantBytes(maxBytes = NDR_MAX_ARRAY_BYTES, field = "array"): Buffer {
    const count = this.u32();
    check(count <= maxBytes, `${this.r.what}: ${field} of ${count} bytes, over the cap of ${maxBytes}`);
    return this.bytes(count, field);
  }

  /** A top-level `[unique, size_is(n)] byte*`; undefined for NULL. */
  uniqueConformantBytes(maxBytes = NDR_MAX_ARRAY_BYTES, field = "array"): Buffer | undefined {
    return this.pointer() === 0 ? undefined : this.conformantBytes(maxBytes, field);
  }

  /** A top-level `[unique] DWORD*`; undefined for NULL. */
  uniqueU32(): number | undefined {
    return this.pointer() === 0 ? undefined : this.u32();
  }

  /** A context handle (MS-RPCE 2.2.4.1): 20 bytes aligned to 4, a copy. */
  contextHandle(): Buffer {
    return this.align(4).bytes(CONTEXT_HANDLE_SIZE, "context handle");
  }
}
