/**
 * NetBIOS names (RFC 1001 5.2, 14): 15 characters padded with spaces and a 16th byte, the suffix,
 * that says which service registered the name (0x20 the file server, 0x00 the workstation). On the
 * wire a name is first-level encoded (RFC 1001 14.1: each byte as two letters 'A'..'P', 32 in all)
 * and, in the name service, second-level encoded as a domain name (RFC 1001 14.2, RFC 1002 4.1):
 * a 32-byte label, then the scope's labels, then a zero byte.
 *
 * Names are bytes in the host's OEM code page; this codec reads and writes them as latin1, one
 * character a byte, which is exact for the names users may give (see {@link netbiosNameProblem}).
 */
import { check, type ByteReader, type ByteWriter } from "../wire/bytes.ts";

/** The characters of a name before the suffix. */
export const NAME_CHARS = 15;
/** The encoded form's length: two letters per byte of the 16. */
export const FIRST_LEVEL_LENGTH = 32;
/** RFC 1002 4.1 (as RFC 883): a domain name, scope included, is at most 255 bytes on the wire. */
const MAX_ENCODED_NAME = 255;
const MAX_LABEL = 63;
/** Compression pointers followed while reading one name; each must point backwards, so no loop. */
const MAX_POINTERS = 4;

/** Suffixes sumac meets (the 16th byte; see MS-BRWS and [MS-NBTE] for the full list). */
export const NameSuffix = {
  /** The workstation service: every Windows host registers its name with it. */
  WORKSTATION: 0x00,
  MESSENGER: 0x03,
  /** The file server service: the name to reach SMB on. */
  FILE_SERVER: 0x20,
  DOMAIN_MASTER_BROWSER: 0x1b,
  MASTER_BROWSER: 0x1d,
  BROWSER_ELECTION: 0x1e,
} as const;

/** One NetBIOS name. */
export interface NetbiosName {
  /**
   * Up to 15 characters, without the padding spaces (so a name cannot end with a space). `"*"` is
   * the wildcard of node status requests (RFC 1002 4.2.17), padded with zero bytes instead.
   */
  readonly name: string;
  /** The 16th byte. */
  readonly suffix: number;
  /** The NetBIOS scope, dot-separated labels; `""` (no scope) almost everywhere. */
  readonly scope: string;
}

/** The wildcard name a node status request asks (RFC 1002 4.2.17). */
export const WILDCARD_NAME: NetbiosName = { name: "*", suffix: 0x00, scope: "" };

/**
 * The 16 bytes of a name: its characters padded to 15 (spaces, or zeros for the wildcard), then
 * the suffix (RFC 1001 14.1).
 */
export function nameBytes(n: Pick<NetbiosName, "name" | "suffix">): Buffer {
  check(n.name.length >= 1 && n.name.length <= NAME_CHARS, `NetBIOS name: ${n.name.length} characters`);
  check(/^[\x00-\xff]*$/.test(n.name), "NetBIOS name: a character beyond latin1");
  check(!n.name.endsWith(" "), "NetBIOS name: ends with a space (the padding)");
  check(Number.isInteger(n.suffix) && n.suffix >= 0 && n.suffix <= 0xff, `NetBIOS name: suffix ${n.suffix}`);
  const bytes = Buffer.alloc(16, n.name === "*" ? 0x00 : 0x20);
  bytes.write(n.name, 0, "latin1");
  bytes[15] = n.suffix;
  return bytes;
}

/** The name and suffix in 16 bytes (a node status table's entries and the inverse of {@link nameBytes}). */
export function nameFromBytes(bytes: Buffer): Pick<NetbiosName, "name" | "suffix"> {
  check(bytes.length === 16, `NetBIOS name: ${bytes.length} bytes, not 16`);
  const suffix = bytes[15]!;
  const chars = bytes.subarray(0, NAME_CHARS);
  if (chars[0] === 0x2a && chars.subarray(1).every((b) => b === 0)) return { name: "*", suffix };
  const name = chars.toString("latin1").replace(/ +$/, "");
  check(name.length > 0, "NetBIOS name: all padding");
  return { name, suffix };
}

/** First-level encoding (RFC 1001 14.1): each half-byte plus 'A', "FRED" → "EGFCEFEE" + "CA"×12. */
export function encodeFirstLevel(n: Pick<NetbiosName, "name" | "suffix">): Buffer {
  const out = Buffer.alloc(FIRST_LEVEL_LENGTH);
  nameBytes(n).forEach((b, i) => {
    out[2 * i] = 0x41 + (b >> 4);
    out[2 * i + 1] = 0x41 + (b & 0x0f);
  });
  return out;
}

/** The inverse of {@link encodeFirstLevel}; refuses letters outside 'A'..'P'. */
export function decodeFirstLevel(label: Buffer): Pick<NetbiosName, "name" | "suffix"> {
  check(label.length === FIRST_LEVEL_LENGTH, `NetBIOS name: a first label of ${label.length} bytes, not 32`);
  const bytes = Buffer.alloc(16);
  for (let i = 0; i < 16; i++) {
    const hi = label[2 * i]! - 0x41;
    const lo = label[2 * i + 1]! - 0x41;
    check(hi >= 0 && hi < 16 && lo >= 0 && lo < 16, "NetBIOS name: a letter outside A..P");
    bytes[i] = (hi << 4) | lo;
  }
  return nameFromBytes(bytes);
}

function scopeLabels(scope: string): string[] {
  if (scope === "") return [];
  const labels = scope.split(".");
  for (const label of labels) {
    check(label.length >= 1 && label.length <= MAX_LABEL, `NetBIOS scope: a label of ${label.length} bytes`);
    check(/^[\x00-\xff]*$/.test(label), "NetBIOS scope: a character beyond latin1");
  }
  return labels;
}

/** Writes the name second-level encoded (RFC 1001 14.2): the 32-byte label, the scope's, a zero. */
export function writeEncodedName(w: ByteWriter, n: NetbiosName): void {
  const labels = scopeLabels(n.scope);
  const size = 1 + FIRST_LEVEL_LENGTH + labels.reduce((sum, l) => sum + 1 + l.length, 0) + 1;
  check(size <= MAX_ENCODED_NAME, `NetBIOS name: ${size} bytes encoded, over ${MAX_ENCODED_NAME}`);
  w.u8(FIRST_LEVEL_LENGTH).bytes(encodeFirstLevel(n));
  for (const label of labels) w.u8(label.length).bytes(Buffer.from(label, "latin1"));
  w.u8(0);
}

/**
 * Reads a second-level encoded name at the cursor. A label may be a compression pointer (RFC 1002
 * 4.1, RFC 883): the rest of the name is then read at an earlier offset of the same message, at most
 * {@link MAX_POINTERS} times and always backwards, so a hostile packet cannot make it loop. The
 * session service (RFC 1002 4.3.2) has no pointers: `allowPointers` false refuses them.
 */
export function readEncodedName(r: ByteReader, allowPointers = true): NetbiosName {
  const labels: Buffer[] = [];
  let at = r.offset;
  let resumeAt: number | undefined;
  let pointers = 0;
  let size = 0;
  for (;;) {
    check(at < r.buffer.length, `${r.what}: a name runs past the end`);
    const len = r.buffer[at]!;
    if ((len & 0xc0) === 0xc0) {
      check(allowPointers, `${r.what}: a compression pointer where none may be`);
      check(at + 1 < r.buffer.length, `${r.what}: a name's pointer runs past the end`);
      const target = ((len & 0x3f) << 8) | r.buffer[at + 1]!;
      check(++pointers <= MAX_POINTERS, `${r.what}: more than ${MAX_POINTERS} name pointers`);
      check(target < at, `${r.what}: a name pointer that does not point backwards`);
      resumeAt ??= at + 2;
      at = target;
      continue;
    }
    check((len & 0xc0) === 0, `${r.what}: a label type 0x${(len & 0xc0).toString(16)} (reserved)`);
    size += 1 + len;
    check(size <= MAX_ENCODED_NAME, `${r.what}: a name over ${MAX_ENCODED_NAME} bytes`);
    if (len === 0) break;
    check(at + 1 + len <= r.buffer.length, `${r.what}: a label runs past the end`);
    labels.push(r.buffer.subarray(at + 1, at + 1 + len));
    at += 1 + len;
  }
  r.seek(resumeAt ?? at + 1, "name end");
  const [first, ...scope] = labels;
  check(first !== undefined, `${r.what}: an empty name`);
  return { ...decodeFirstLevel(first), scope: scope.map((l) => l.toString("latin1")).join(".") };
}

const USER_NAME = /^[A-Za-z0-9!@#$%^&()\-'{}~_]{1,15}$/;

/**
 * Why `name` is not a NetBIOS name sumac accepts from a user, or undefined when it is one: 1 to 15
 * of letters, digits and `! @ # $ % ^ & ( ) - ' { } ~ _` (Microsoft's allowed characters for
 * computer names). Dots, which NetBIOS itself allows, are refused: a dotted host is a DNS name (so
 * `auto` resolution never asks the NetBIOS name service about `web.example.net`), and Microsoft
 * advises against dots in computer names for the same confusion. Spaces, `*` (the wildcard, and
 * `*SMBSERVER`), `\ / : ? " < > |` and control characters are refused too.
 */
export function netbiosNameProblem(name: string): string | undefined {
  if (USER_NAME.test(name)) return undefined;
  return `${JSON.stringify(name)} is not a NetBIOS name: 1 to 15 of letters, digits and !@#$%^&()-'{}~_`;
}

/** True when {@link netbiosNameProblem} has nothing to say. */
export function isNetbiosName(name: string): boolean {
  return netbiosNameProblem(name) === undefined;
}
