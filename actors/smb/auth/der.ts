/**
 * The subset of ASN.1 DER (ITU-T X.690) that SPNEGO's tokens use: single-byte tags, short and
 * long-form definite lengths, OCTET STRING, OBJECT IDENTIFIER, ENUMERATED, GeneralString and
 * constructed types read by schema.
 *
 * Reading is bounded: a length over {@link MAX_DER_LENGTH} or past its parent, an indefinite length,
 * a multi-byte tag, or nesting deeper than {@link MAX_DER_DEPTH} throws MalformedPacketError.
 */
import { check } from "../../wire/bytes.ts";

/** The largest length a token or any of its parts may claim. */
export const MAX_DER_LENGTH = 64 * 1024;
/** The deepest nesting read (SPNEGO's deepest field is six levels down). */
export const MAX_DER_DEPTH = 8;
/** The most arcs an OBJECT IDENTIFIER may have. */
const MAX_OID_ARCS = 32;

/** The tags used (X.690 8.1.2: class, constructed bit, number). */
export const DerTag = {
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  OBJECT_IDENTIFIER: 0x06,
  ENUMERATED: 0x0a,
  GENERAL_STRING: 0x1b,
  SEQUENCE: 0x30,
  /** [APPLICATION 0], constructed: GSS-API's InitialContextToken (RFC 2743 3.1). */
  APPLICATION_0: 0x60,
} as const;

/** The constructed context-specific tag `[n]`. */
export const contextTag = (n: number): number => 0xa0 | n;

/** The definite length `n`, short form under 128, long form otherwise (X.690 8.1.3). */
function encodeLength(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

/** One TLV: `tag`, the length of the contents, the contents. */
export function derTlv(tag: number, ...contents: Buffer[]): Buffer {
  const body = Buffer.concat(contents);
  check(body.length <= MAX_DER_LENGTH, `DER: ${body.length} bytes, over ${MAX_DER_LENGTH}`);
  return Buffer.concat([Buffer.from([tag]), encodeLength(body.length), body]);
}

const ARC = /^(0|[1-9][0-9]{0,9})$/;

/** An OBJECT IDENTIFIER TLV from its dotted form (X.690 8.19). */
export function derOid(oid: string): Buffer {
  const parts = oid.split(".");
  check(
    parts.length >= 2 && parts.length <= MAX_OID_ARCS && parts.every((p) => ARC.test(p)),
    `DER: bad OID ${oid}`,
  );
  const arcs = parts.map(Number);
  const [first, second] = arcs as [number, number];
  check(
    arcs.every((a) => a <= 0xffffffff),
    `DER: an arc of ${oid} is over 32 bits`,
  );
  check(first <= 2 && (first === 2 || second < 40), `DER: bad first arcs in ${oid}`);
  const bytes: number[] = [];
  for (const sub of [first * 40 + second, ...arcs.slice(2)]) {
    const groups = [sub % 128];
    for (let v = Math.floor(sub / 128); v > 0; v = Math.floor(v / 128)) groups.unshift(0x80 | (v % 128));
    bytes.push(...groups);
  }
  return derTlv(DerTag.OBJECT_IDENTIFIER, Buffer.from(bytes));
}

/** The dotted form of an OBJECT IDENTIFIER's contents (X.690 8.19, minimal subidentifiers). */
export function decodeOid(content: Buffer): string {
  check(content.length > 0, "DER: an empty OID");
  const subs: number[] = [];
  let value = 0;
  let fresh = true;
  for (const byte of content) {
    check(!(fresh && byte === 0x80), "DER: an OID subidentifier with a leading zero group");
    value = value * 128 + (byte & 0x7f);
    // The first subidentifier holds two arcs (40 * first + second): 80 more is still 32-bit arcs.
    check(value <= 0xffffffff + (subs.length === 0 ? 80 : 0), "DER: an OID arc over 32 bits");
    fresh = (byte & 0x80) === 0;
    if (fresh) {
      subs.push(value);
      value = 0;
    }
  }
  check(fresh, "DER: an OID ends inside a subidentifier");
  check(subs.length < MAX_OID_ARCS, `DER: an OID of more than ${MAX_OID_ARCS} arcs`);
  const [head, ...rest] = subs as [number, ...number[]];
  const first = head < 40 ? 0 : head < 80 ? 1 : 2;
  return [first, head - first * 40, ...rest].join(".");
}

/** One element read: its tag and its contents. */
export interface DerElement {
  readonly tag: number;
  readonly content: Buffer;
}

/**
 * A cursor over a run of DER elements (a token, or a constructed element's contents).
 *
 * @example
 * const seq = new DerReader(token, "NegTokenResp").enter(contextTag(1)).enter(DerTag.SEQUENCE);
 * const state = seq.optional(contextTag(0));
 */
export class DerReader {
  private offset = 0;
  private readonly buffer: Buffer;
  private readonly depth: number;
  readonly what: string;

  constructor(buffer: Buffer, what: string, depth = 0) {
    check(buffer.length <= MAX_DER_LENGTH + 8, `${what}: ${buffer.length} bytes, over ${MAX_DER_LENGTH}`);
    check(depth <= MAX_DER_DEPTH, `${what}: nested deeper than ${MAX_DER_DEPTH}`);
    this.buffer = buffer;
    this.what = what;
    this.depth = depth;
  }

  /** True when every element has been read. */
  get done(): boolean {
    return this.offset >= this.buffer.length;
  }

  /** The next element's tag, without reading it; undefined at the end. */
  peekTag(): number | undefined {
    return this.done ? undefined : this.buffer[this.offset];
  }

  /** Reads the next element, whatever its tag. */
  next(): DerElement {
    const buf = this.buffer;
    check(this.offset + 2 <= buf.length, `${this.what}: truncated element at ${this.offset}`);
    const tag = buf[this.offset] as number;
    check((tag & 0x1f) !== 0x1f, `${this.what}: a multi-byte tag at ${this.offset}`);
    let first = buf[this.offset + 1] as number;
    let at = this.offset + 2;
    let length = first;
    if (first >= 0x80) {
      first &= 0x7f;
      check(
        first >= 1 && first <= 3,
        `${this.what}: a length of ${first} bytes (or indefinite) at ${this.offset}`,
      );
      check(at + first <= buf.length, `${this.what}: truncated length at ${this.offset}`);
      length = buf.readUIntBE(at, first);
      at += first;
    }
    check(length <= MAX_DER_LENGTH, `${this.what}: a length of ${length}, over ${MAX_DER_LENGTH}`);
    check(
      at + length <= buf.length,
      `${this.what}: ${length} bytes at ${at} go past the end (${buf.length})`,
    );
    this.offset = at + length;
    return { tag, content: buf.subarray(at, at + length) };
  }

  /** The contents of the next element, which must have `tag`. */
  read(tag: number, field = "element"): Buffer {
    const actual = this.peekTag();
    check(actual === tag, `${this.what}: ${field} has tag ${hex(actual)}, not ${hex(tag)}`);
    return this.next().content;
  }

  /** The contents of the next element if it has `tag`, else nothing read. */
  optional(tag: number): Buffer | undefined {
    return this.peekTag() === tag ? this.next().content : undefined;
  }

  /** A reader over the contents of the next element, which must have `tag`. */
  enter(tag: number, field = "element"): DerReader {
    return new DerReader(this.read(tag, field), this.what, this.depth + 1);
  }

  /** A reader over `content` (an element read with `optional`), one level down. */
  inside(content: Buffer): DerReader {
    return new DerReader(content, this.what, this.depth + 1);
  }

  /** Throws unless every element has been read. */
  end(): void {
    check(this.done, `${this.what}: ${this.buffer.length - this.offset} unexpected bytes at ${this.offset}`);
  }
}

const hex = (tag: number | undefined): string => (tag === undefined ? "none" : `0x${tag.toString(16)}`);
