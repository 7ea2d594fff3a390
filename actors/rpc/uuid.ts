/**
 * UUIDs and presentation syntax identifiers on the DCE/RPC wire. A UUID is a GUID in the mixed
 * endianness of MS-DTYP 2.3.4.2 (Data1, Data2, Data3 little-endian, Data4 as is), which is also
 * C706 Appendix A's encoding under a little-endian drep.
 */
import { type ByteReader, type ByteWriter, check } from "../wire/bytes.ts";

/** A presentation syntax (C706 12.6.3.1 p_syntax_id_t): an interface UUID and its version. */
export interface SyntaxId {
  /** Lower-case `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`. */
  readonly uuid: string;
  /** The major version (the low 16 bits of if_version). */
  readonly version: number;
  /** The minor version (the high 16 bits of if_version). */
  readonly minor: number;
}

/** NDR 2.0, the transfer syntax sumac proposes (C706 14, MS-RPCE 2.2.4.12). */
export const NDR20: SyntaxId = { uuid: "8a885d04-1ceb-11c9-9fe8-08002b104860", version: 2, minor: 0 };

/** The all-zero syntax a rejected presentation result carries (C706 12.6.3.1). */
export const NULL_SYNTAX: SyntaxId = { uuid: "00000000-0000-0000-0000-000000000000", version: 0, minor: 0 };

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** True for a UUID in the canonical lower-case form. */
export function isUuid(text: string): boolean {
  return UUID_RE.test(text);
}

/** The 16 wire bytes of `uuid` (MS-DTYP 2.3.4.2). */
export function encodeUuid(uuid: string): Buffer {
  const text = uuid.toLowerCase();
  check(isUuid(text), `UUID: ${JSON.stringify(uuid)} is not a UUID`);
  const hex = text.replaceAll("-", "");
  const out = Buffer.from(hex, "hex");
  out.writeUInt32LE(out.readUInt32BE(0), 0);
  out.writeUInt16LE(out.readUInt16BE(4), 4);
  out.writeUInt16LE(out.readUInt16BE(6), 6);
  return out;
}

/** Reads 16 wire bytes as a lower-case UUID. */
export function readUuid(r: ByteReader): string {
  const b = Buffer.from(r.bytes(16, "UUID"));
  b.writeUInt32BE(b.readUInt32LE(0), 0);
  b.writeUInt16BE(b.readUInt16LE(4), 4);
  b.writeUInt16BE(b.readUInt16LE(6), 6);
  const h = b.toString("hex");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** Writes a p_syntax_id_t: the UUID, then if_version as major (low 16 bits) and minor. */
export function writeSyntax(w: ByteWriter, s: SyntaxId): void {
  w.bytes(encodeUuid(s.uuid)).u16le(s.version).u16le(s.minor);
}

/** Reads a p_syntax_id_t. */
export function readSyntax(r: ByteReader): SyntaxId {
  const uuid = readUuid(r);
  const version = r.u16le();
  const minor = r.u16le();
  return { uuid, version, minor };
}

/** True when two syntaxes name the same interface and version. */
export function sameSyntax(a: SyntaxId, b: SyntaxId): boolean {
  return a.uuid === b.uuid && a.version === b.version && a.minor === b.minor;
}
