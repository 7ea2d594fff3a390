/**
 * The 512-byte header of a tar archive (POSIX.1-1988 "ustar", as in IEEE Std 1003.1-2017, pax,
 * "ustar Interchange Format"; also the GNU variant GNU tar writes by default) and the records of
 * a pax extended header (same standard, pax, "pax Extended Header"). Pure functions over bytes:
 * the streaming reader and writer (tar.ts) are built on them.
 *
 * Every decoder throws only {@link MalformedPacketError} (code MALFORMED_PACKET): a tar that does
 * not decode is a malformed packet of the workstation's own making or of a registry's.
 */
import { ByteWriter, check, decoding } from "../../wire/bytes.ts";

/** The size of a header and the unit of a tar's data. */
export const BLOCK = 512;

/**
 * Type flags (pax "ustar Interchange Format", typeflag; pax "pax Extended Header" for `x` and `g`;
 * the GNU tar manual, "Basic Tar Format", for `L` and `K`).
 */
export const TarType = {
  FILE: "0",
  /** Pre-POSIX archives mark regular files with a NUL. */
  OLD_FILE: "\0",
  HARD_LINK: "1",
  SYMLINK: "2",
  CHAR_DEVICE: "3",
  BLOCK_DEVICE: "4",
  DIRECTORY: "5",
  FIFO: "6",
  CONTIGUOUS: "7",
  /** pax: records for the next entry. */
  PAX_NEXT: "x",
  /** pax: records for every entry after it. */
  PAX_GLOBAL: "g",
  /** GNU: the next entry's name, in the data. */
  GNU_LONG_NAME: "L",
  /** GNU: the next entry's link target, in the data. */
  GNU_LONG_LINK: "K",
} as const;

/** The fields of one header that sumac reads or writes. */
export interface TarHeader {
  /** For ustar, `prefix/name` joined; as written, not checked for safety here. */
  readonly name: string;
  /** One character: see {@link TarType}. */
  readonly type: string;
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  /** Bytes of data after the header (rounded up to a block there). */
  readonly size: number;
  /** Seconds since 1970. */
  readonly mtime: number;
  readonly linkName: string;
  readonly uname: string;
  readonly gname: string;
}

// Field offsets and widths (pax "ustar Interchange Format", Table: ustar Header Block).
const F = {
  name: [0, 100],
  mode: [100, 8],
  uid: [108, 8],
  gid: [116, 8],
  size: [124, 12],
  mtime: [136, 12],
  chksum: [148, 8],
  typeflag: [156, 1],
  linkname: [157, 100],
  magic: [257, 8], // magic (6) and version (2) read together
  uname: [265, 32],
  gname: [297, 32],
  prefix: [345, 155],
} as const;
type Field = keyof typeof F;

const USTAR_MAGIC = Buffer.from("ustar\u000000", "latin1");
// GNU tar's own format: "ustar  \0", and no prefix field (those bytes hold other GNU fields).
const GNU_MAGIC = Buffer.from("ustar  \u0000", "latin1");

function field(block: Buffer, f: Field): Buffer {
  const [at, width] = F[f];
  return block.subarray(at, at + width);
}

/** A NUL-terminated (or full-width) string field, UTF-8 as pax and GNU tar write it. */
function text(block: Buffer, f: Field): string {
  const raw = field(block, f);
  const end = raw.indexOf(0);
  return raw.subarray(0, end === -1 ? raw.length : end).toString("utf8");
}

/**
 * A numeric field: octal digits, optionally led by spaces and ended by a space or NUL; or, when
 * its first byte has the high bit set, GNU's big-endian base-256 (for values octal cannot hold).
 */
function numeric(block: Buffer, f: Field): number {
  const raw = field(block, f);
  if ((raw[0]! & 0x80) !== 0) {
    check(raw[0] === 0x80, `tar header: ${f} is a negative or oversized base-256 number`);
    let v = 0;
    for (const b of raw.subarray(1)) {
      v = v * 256 + b;
      check(v <= Number.MAX_SAFE_INTEGER, `tar header: ${f} is over 2^53`);
    }
    return v;
  }
  const s = raw.toString("latin1");
  const m = /^ *([0-7]*)[ \0]*$/.exec(s);
  check(m !== null, `tar header: ${f} ${JSON.stringify(s)} is not an octal number`);
  const digits = m[1]!;
  return digits === "" ? 0 : parseInt(digits, 8);
}

/** The header checksum: the bytes' sum with the checksum field counted as spaces (unsigned). */
function checksum(block: Buffer): number {
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= F.chksum[0] && i < F.chksum[0] + F.chksum[1] ? 0x20 : block[i]!;
  return sum;
}

/** Historic tars summed signed bytes; both sums are accepted, as GNU tar does. */
function signedChecksum(block: Buffer): number {
  let sum = 0;
  for (let i = 0; i < BLOCK; i++)
    sum += i >= F.chksum[0] && i < F.chksum[0] + F.chksum[1] ? 0x20 : (block[i]! << 24) >> 24;
  return sum;
}

/** True for a block of zeros: the end-of-archive marker. */
export function isZeroBlock(block: Buffer): boolean {
  for (const b of block) if (b !== 0) return false;
  return true;
}

/** Decodes one header block (ustar or GNU). Throws {@link MalformedPacketError}. */
export function decodeTarHeader(block: Buffer): TarHeader {
  return decoding("tar header", () => {
    check(block.length === BLOCK, `tar header: ${block.length} bytes, not ${BLOCK}`);
    const magic = field(block, "magic");
    const ustar = magic.subarray(0, 6).equals(USTAR_MAGIC.subarray(0, 6));
    const gnu = magic.equals(GNU_MAGIC);
    check(ustar || gnu, "tar header: no ustar magic (not a tar, or a pre-POSIX one)");
    const sum = numeric(block, "chksum");
    check(
      sum === checksum(block) || sum === signedChecksum(block),
      `tar header: checksum ${sum} does not match the header's (${checksum(block)})`,
    );
    const name = text(block, "name");
    const prefix = gnu ? "" : text(block, "prefix");
    return {
      name: prefix === "" ? name : `${prefix}/${name}`,
      type: String.fromCharCode(block[F.typeflag[0]]!),
      mode: numeric(block, "mode"),
      uid: numeric(block, "uid"),
      gid: numeric(block, "gid"),
      size: numeric(block, "size"),
      mtime: numeric(block, "mtime"),
      linkName: text(block, "linkname"),
      uname: text(block, "uname"),
      gname: text(block, "gname"),
    };
  });
}

function putText(block: Buffer, f: Field, value: string): void {
  const bytes = Buffer.from(value, "utf8");
  check(!value.includes("\0"), `tar header: ${f} ${JSON.stringify(value)} holds a NUL`);
  check(bytes.length <= F[f][1], `tar header: ${f} ${JSON.stringify(value)} is over ${F[f][1]} bytes`);
  bytes.copy(block, F[f][0]);
}

/** Octal digits filling the field but its last byte, which stays NUL. */
function putOctal(block: Buffer, f: Field, value: number): void {
  const digits = F[f][1] - 1;
  check(
    Number.isSafeInteger(value) && value >= 0 && value < 8 ** digits,
    `tar header: ${f} ${value} does not fit ${digits} octal digits`,
  );
  block.write(value.toString(8).padStart(digits, "0"), F[f][0], "latin1");
}

/**
 * Splits a long name at a `/` so that the part after fits `name` (100 bytes) and the part before
 * fits `prefix` (155 bytes): ustar's only way to hold a name over 100 bytes.
 */
function splitName(name: string): [prefix: string, name: string] {
  if (Buffer.byteLength(name) <= F.name[1]) return ["", name];
  for (let i = name.indexOf("/"); i !== -1; i = name.indexOf("/", i + 1)) {
    const [head, tail] = [name.slice(0, i), name.slice(i + 1)];
    if (Buffer.byteLength(head) <= F.prefix[1] && Buffer.byteLength(tail) <= F.name[1] && tail !== "")
      return [head, tail];
  }
  check(false, `tar header: name ${JSON.stringify(name)} cannot be held by ustar's prefix and name`);
}

/** Encodes a POSIX ustar header: the inverse of {@link decodeTarHeader} for what ustar can hold. */
export function encodeTarHeader(h: TarHeader): Buffer {
  const block = Buffer.alloc(BLOCK);
  const [prefix, name] = splitName(h.name);
  check(h.type.length === 1 && h.type.charCodeAt(0) < 0x80, `tar header: type ${JSON.stringify(h.type)}`);
  putText(block, "name", name);
  putOctal(block, "mode", h.mode);
  putOctal(block, "uid", h.uid);
  putOctal(block, "gid", h.gid);
  putOctal(block, "size", h.size);
  putOctal(block, "mtime", h.mtime);
  block.write(h.type, F.typeflag[0], "latin1");
  putText(block, "linkname", h.linkName);
  USTAR_MAGIC.copy(block, F.magic[0]);
  putText(block, "uname", h.uname);
  putText(block, "gname", h.gname);
  putText(block, "prefix", prefix);
  // Six octal digits, NUL, space: the form every tar since V7 reads.
  block.write(`${checksum(block).toString(8).padStart(6, "0")}\u0000 `, F.chksum[0], "latin1");
  return block;
}

/** Bytes of padding after `size` bytes of data, up to the next block. */
export function padding(size: number): number {
  return (BLOCK - (size % BLOCK)) % BLOCK;
}

/**
 * The records of a pax extended header: `"<length> <key>=<value>\n"`, the length counting the
 * whole record in bytes (pax "pax Extended Header"). Later records win over earlier ones.
 */
export function decodePaxRecords(data: Buffer): Map<string, string> {
  return decoding("pax header", () => {
    const records = new Map<string, string>();
    let at = 0;
    while (at < data.length) {
      const space = data.indexOf(0x20, at);
      check(space > at && space - at <= 10, `pax header: no record length at offset ${at}`);
      const digits = data.toString("latin1", at, space);
      check(/^[1-9][0-9]*$/.test(digits), `pax header: record length ${JSON.stringify(digits)}`);
      const length = Number(digits);
      const end = at + length;
      check(end <= data.length && end > space + 1, `pax header: record of ${length} bytes at ${at} overruns`);
      check(data[end - 1] === 0x0a, `pax header: record at ${at} does not end with a newline`);
      const record = data.subarray(space + 1, end - 1);
      const eq = record.indexOf(0x3d);
      check(eq > 0, `pax header: record at ${at} has no key=value`);
      records.set(record.toString("utf8", 0, eq), record.toString("utf8", eq + 1));
      at = end;
    }
    return records;
  });
}

/** Encodes pax records: the inverse of {@link decodePaxRecords}. */
export function encodePaxRecords(records: ReadonlyMap<string, string>): Buffer {
  const w = new ByteWriter();
  for (const [key, value] of records) {
    check(key !== "" && !key.includes("=") && !key.includes("\n"), `pax header: key ${JSON.stringify(key)}`);
    const body = Buffer.from(` ${key}=${value}\n`, "utf8");
    // The length counts its own digits: settle on the width that holds the total.
    let width = 1;
    while (String(width + body.length).length !== width) width++;
    w.bytes(Buffer.from(String(width + body.length), "latin1")).bytes(body);
  }
  return w.toBuffer();
}
