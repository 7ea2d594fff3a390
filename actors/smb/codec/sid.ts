/**
 * Security identifiers (MS-DTYP 2.4.2): the binary form a security descriptor carries (2.4.2.2)
 * and the string form people and logs read (2.4.2.1, `S-1-5-32-544`). The codecs hand SIDs
 * around as their canonical string, so that comparing two SIDs is comparing two strings.
 */
import { ByteReader, ByteWriter, check, decoding } from "../../wire/bytes.ts";

/** SIDs sumac names (MS-DTYP 2.4.2.4). */
export const WellKnownSid = {
  EVERYONE: "S-1-1-0",
  CREATOR_OWNER: "S-1-3-0",
  LOCAL_SYSTEM: "S-1-5-18",
  BUILTIN_ADMINISTRATORS: "S-1-5-32-544",
  BUILTIN_USERS: "S-1-5-32-545",
} as const;

/** MS-DTYP 2.4.2.2: SubAuthorityCount is at most 15. */
export const MAX_SUB_AUTHORITIES = 15;
const SID_REVISION = 1;
const AUTHORITY_MAX = 2n ** 48n - 1n;
const DECIMAL_AUTHORITY_LIMIT = 2n ** 32n;

/** A SID taken apart: the 48-bit IdentifierAuthority and up to 15 32-bit subauthorities. */
interface SidParts {
  readonly authority: bigint;
  readonly subAuthorities: readonly number[];
}

const SID_TEXT = /^S-1-(0[xX][0-9A-Fa-f]{12}|\d{1,15})((?:-\d{1,10}){0,15})$/i;

function parse(text: string): SidParts {
  const m = SID_TEXT.exec(text);
  check(
    m !== null,
    `a SID ${JSON.stringify(text.slice(0, 100))} is not of the form S-1-<authority>-<sub>...`,
  );
  const [, authorityText = "", rest = ""] = m;
  const authority = BigInt(authorityText);
  check(authority <= AUTHORITY_MAX, `SID ${text}: the authority does not fit in 48 bits`);
  const subAuthorities = rest === "" ? [] : rest.slice(1).split("-").map(Number);
  for (const s of subAuthorities) check(s <= 0xffffffff, `SID ${text}: a subauthority over 32 bits`);
  return { authority, subAuthorities };
}

function format(parts: SidParts): string {
  // MS-DTYP 2.4.2.1: the authority in decimal below 2^32, else as 12 hexadecimal digits.
  const authority =
    parts.authority < DECIMAL_AUTHORITY_LIMIT
      ? parts.authority.toString()
      : `0x${parts.authority.toString(16).toUpperCase().padStart(12, "0")}`;
  return ["S", "1", authority, ...parts.subAuthorities.map(String)].join("-");
}

/**
 * The canonical string form of a SID string (upper-case `S`, no leading zeros, the authority as
 * MS-DTYP 2.4.2.1 writes it); throws MALFORMED_PACKET on anything that is not a SID.
 *
 * @example
 * canonicalSid("s-1-5-32-0544") // "S-1-5-32-544"
 */
export function canonicalSid(text: string): string {
  return format(parse(text));
}

/** True when `text` is a SID in string form. */
export function isSid(text: string): boolean {
  try {
    parse(text);
    return true;
  } catch {
    return false;
  }
}

/** Writes the binary SID (MS-DTYP 2.4.2.2) of `text`. */
export function writeSid(w: ByteWriter, text: string): ByteWriter {
  const { authority, subAuthorities } = parse(text);
  w.u8(SID_REVISION)
    .u8(subAuthorities.length)
    .u16be(Number(authority >> 32n))
    .u32be(Number(authority & 0xffffffffn));
  for (const s of subAuthorities) w.u32le(s);
  return w;
}

/** Bytes of the binary form of the SID `text`. */
export function sidLength(text: string): number {
  return 8 + 4 * parse(text).subAuthorities.length;
}

/** Reads a binary SID at the reader's cursor, bounded by the buffer. */
export function readSid(r: ByteReader): string {
  const revision = r.u8();
  check(revision === SID_REVISION, `${r.what}: a SID of revision ${revision}, not 1`);
  const count = r.u8();
  check(count <= MAX_SUB_AUTHORITIES, `${r.what}: a SID with ${count} subauthorities, over 15`);
  r.need(6 + 4 * count, "SID");
  const authority = (BigInt(r.u16be()) << 32n) | BigInt(r.u32be());
  const subAuthorities: number[] = [];
  for (let i = 0; i < count; i++) subAuthorities.push(r.u32le());
  return format({ authority, subAuthorities });
}

/** The binary form of a SID (MS-DTYP 2.4.2.2). */
export function encodeSid(text: string): Buffer {
  return writeSid(new ByteWriter(sidLength(text)), text).toBuffer();
}

/** A binary SID at the start of `buffer`, as its string. */
export function decodeSid(buffer: Buffer): string {
  return decoding("SID", () => readSid(new ByteReader(buffer, "SID")));
}
