/**
 * A small streaming tar reader and writer: enough to take `package/bin/node.exe` out of an npm
 * package (npm writes ustar, with pax headers for long names) and to write `node.tgz`'s one-file
 * ustar for a Windows target's `tar.exe`. Data is streamed through, never held whole (node.exe is
 * about 90 MB); only headers and pax/GNU long-name data, under their caps, are buffered.
 *
 * Names are checked as they are read: an absolute name, a drive letter, a backslash or a `..`
 * component makes the whole archive refused, whatever the caller would do with the entry. Link
 * targets are given as they are: nothing here creates files.
 */
import { check, MalformedPacketError } from "../../wire/bytes.ts";
import {
  BLOCK,
  decodePaxRecords,
  decodeTarHeader,
  encodeTarHeader,
  isZeroBlock,
  padding,
  TarType,
} from "./tar-header.ts";

/** Caps on what a read archive may hold; over one, it is refused with MALFORMED_PACKET. */
export interface TarLimits {
  /** Headers read, pax and GNU long-name ones included. Default 10,000. */
  readonly maxHeaders?: number;
  /** Bytes of one entry's data. Default 1 GiB. */
  readonly maxEntryBytes?: number;
  /** Bytes of one pax or GNU long-name header's data. Default 64 KiB. */
  readonly maxMetaBytes?: number;
  /** Bytes after the end-of-archive block (record padding). Default 1 MiB. */
  readonly maxTrailingBytes?: number;
  /** Bytes of the whole archive (a decompression bomb stops here). Default 4 GiB. */
  readonly maxArchiveBytes?: number;
}

/** One entry of an archive, pax and GNU long names applied. */
export interface TarEntry {
  /** Relative, `/`-separated, without `.` components or a trailing `/` (`.` for the root). */
  readonly name: string;
  /** See {@link TarType}. */
  readonly type: string;
  readonly size: number;
  readonly mode: number;
  readonly mtime: number;
  /** A link's target, unchecked (links are never followed or made here). */
  readonly linkName: string;
  /** The data: read it at most once, before asking for the next entry; what is left unread is skipped. */
  readonly body: AsyncIterable<Buffer>;
}

/**
 * An entry name made relative and normal, or MALFORMED_PACKET when it could reach outside the
 * directory it is extracted to: absolute (`/x`, `C:x`, `\\server`), with `..`, a backslash (a
 * separator on Windows) or a NUL.
 */
export function safeEntryName(raw: string): string {
  check(raw !== "", "tar: an entry without a name");
  check(!raw.includes("\0"), `tar: entry name ${JSON.stringify(raw)} holds a NUL`);
  check(!raw.includes("\\"), `tar: entry name ${JSON.stringify(raw)} holds a backslash`);
  check(
    !raw.startsWith("/") && !/^[A-Za-z]:/.test(raw),
    `tar: entry name ${JSON.stringify(raw)} is absolute`,
  );
  const parts = raw.split("/").filter((p) => p !== "" && p !== ".");
  check(!parts.includes(".."), `tar: entry name ${JSON.stringify(raw)} climbs out with ..`);
  return parts.length === 0 ? "." : parts.join("/");
}

const truncated = (what: string): MalformedPacketError =>
  new MalformedPacketError(`tar: the archive ends inside ${what}`);

/** Pulls exact byte counts out of an async source of chunks, buffering only what a read needs. */
class Input {
  private buffered: Buffer = Buffer.alloc(0);
  private ended = false;
  private total = 0;
  private readonly source: AsyncIterator<Uint8Array>;
  private readonly cap: number;

  constructor(source: AsyncIterable<Uint8Array>, cap: number) {
    this.source = source[Symbol.asyncIterator]();
    this.cap = cap;
  }

  /** One more chunk appended; false at the end of the source. */
  private async pull(): Promise<boolean> {
    if (this.ended) return false;
    const next = await this.source.next();
    if (next.done === true) {
      this.ended = true;
      return false;
    }
    const chunk = Buffer.from(next.value.buffer, next.value.byteOffset, next.value.byteLength);
    this.total += chunk.length;
    check(this.total <= this.cap, `tar: the archive is over its cap of ${this.cap} bytes`);
    this.buffered = this.buffered.length === 0 ? chunk : Buffer.concat([this.buffered, chunk]);
    return true;
  }

  /** Exactly `n` bytes (a header, long-name data), or undefined when the source ends before any. */
  async exact(n: number, what: string): Promise<Buffer | undefined> {
    while (this.buffered.length < n) {
      if (!(await this.pull())) {
        if (this.buffered.length === 0) return undefined;
        throw truncated(what);
      }
    }
    const out = this.buffered.subarray(0, n);
    this.buffered = this.buffered.subarray(n);
    return out;
  }

  /** The next `n` bytes in the pieces they arrive in. */
  async *stream(n: number, what: string): AsyncGenerator<Buffer> {
    let left = n;
    while (left > 0) {
      if (this.buffered.length === 0 && !(await this.pull())) throw truncated(what);
      const piece = this.buffered.subarray(0, left);
      this.buffered = this.buffered.subarray(piece.length);
      left -= piece.length;
      yield piece;
    }
  }

  async skip(n: number, what: string): Promise<void> {
    for await (const _ of this.stream(n, what));
  }

  /** Reads to the end; throws when more than `cap` bytes are left. */
  async drain(cap: number): Promise<void> {
    let left = this.buffered.length;
    this.buffered = Buffer.alloc(0);
    while (await this.pull()) {
      left += this.buffered.length;
      this.buffered = Buffer.alloc(0);
      check(left <= cap, `tar: more than ${cap} bytes after the end-of-archive block`);
    }
  }

  async close(): Promise<void> {
    if (!this.ended) await this.source.return?.();
  }
}

/**
 * The entries of a tar archive (ustar, GNU long names, pax extended headers), as `source`
 * delivers its bytes (a file or a gunzip stream). Throws MALFORMED_PACKET on a damaged, truncated
 * or unsafe archive, or one over a cap of `limits`. GNU sparse files and multi-volume parts are
 * refused (their data is not laid out as their size says).
 *
 * @example
 * for await (const entry of tarEntries(createReadStream(path).pipe(createGunzip()))) {
 *   if (entry.name === "package/bin/node.exe") await pipeline(entry.body, createWriteStream(out));
 * }
 */
export async function* tarEntries(
  source: AsyncIterable<Uint8Array>,
  limits: TarLimits = {},
): AsyncGenerator<TarEntry, void, undefined> {
  const maxHeaders = limits.maxHeaders ?? 10_000;
  const maxEntryBytes = limits.maxEntryBytes ?? 1024 ** 3;
  const maxMetaBytes = limits.maxMetaBytes ?? 64 * 1024;
  const input = new Input(source, limits.maxArchiveBytes ?? 4 * 1024 ** 3);
  // Data (and padding) of the last entry that its reader did not take; skipped before the next.
  let unread = 0;
  // Only the latest entry's body may be read: an older one's bytes are behind the cursor.
  let serial = 0;
  let headers = 0;
  let pax = new Map<string, string>();
  let longName: string | undefined;
  let longLink: string | undefined;
  try {
    for (;;) {
      await input.skip(unread, "an entry's data");
      unread = 0;
      const block = await input.exact(BLOCK, "a header");
      if (block === undefined) throw new MalformedPacketError("tar: the archive has no end-of-archive block");
      if (isZeroBlock(block)) {
        check(pax.size === 0 && longName === undefined, "tar: an extended header with no entry after it");
        await input.drain(limits.maxTrailingBytes ?? 1024 * 1024);
        return;
      }
      headers += 1;
      check(headers <= maxHeaders, `tar: more than ${maxHeaders} headers`);
      const h = decodeTarHeader(block);
      if (
        (
          [TarType.PAX_NEXT, TarType.PAX_GLOBAL, TarType.GNU_LONG_NAME, TarType.GNU_LONG_LINK] as string[]
        ).includes(h.type)
      ) {
        check(
          h.size <= maxMetaBytes,
          `tar: a ${h.type} header of ${h.size} bytes, over its cap of ${maxMetaBytes}`,
        );
        const data = (await input.exact(h.size + padding(h.size), "an extended header")) ?? Buffer.alloc(0);
        const body = data.subarray(0, h.size);
        if (h.type === TarType.PAX_NEXT) pax = new Map([...pax, ...decodePaxRecords(body)]);
        // Global records name no file: checked for form and otherwise not used.
        else if (h.type === TarType.PAX_GLOBAL) decodePaxRecords(body);
        else if (h.type === TarType.GNU_LONG_NAME) longName = nulTerminated(body);
        else longLink = nulTerminated(body);
        continue;
      }
      check(
        h.type !== "S" && h.type !== "M",
        `tar: GNU sparse or multi-volume entry ${JSON.stringify(h.name)}`,
      );
      check(![...pax.keys()].some((k) => k.startsWith("GNU.sparse.")), "tar: a pax-described sparse entry");
      const name = safeEntryName(pax.get("path") ?? longName ?? h.name);
      const size = pax.has("size") ? paxSize(pax.get("size")!) : h.size;
      check(size <= maxEntryBytes, `tar: entry ${name} of ${size} bytes is over its cap of ${maxEntryBytes}`);
      const linkName = pax.get("linkpath") ?? longLink ?? h.linkName;
      pax = new Map();
      longName = longLink = undefined;
      const mine = ++serial;
      let taken = false;
      unread = size + padding(size);
      const body = async function* (): AsyncGenerator<Buffer> {
        if (mine !== serial || taken)
          throw new Error(`tar: the data of ${name} was read already or passed over`);
        taken = true;
        for await (const piece of input.stream(size, name)) {
          unread -= piece.length;
          yield piece;
        }
      };
      yield {
        name,
        type: h.type,
        size,
        mode: h.mode,
        mtime: h.mtime,
        linkName,
        body: { [Symbol.asyncIterator]: body },
      };
    }
  } finally {
    await input.close();
  }
}

function nulTerminated(data: Buffer): string {
  const end = data.indexOf(0);
  return data.toString("utf8", 0, end === -1 ? data.length : end);
}

function paxSize(value: string): number {
  check(
    /^[0-9]{1,16}$/.test(value) && Number.isSafeInteger(Number(value)),
    `tar: pax size ${JSON.stringify(value)}`,
  );
  return Number(value);
}

/** A regular file to write into an archive. */
export interface TarFileInput {
  /** Relative and normal (as {@link safeEntryName} gives it), at most 255 bytes. */
  readonly name: string;
  readonly size: number;
  /** Default 0o644. */
  readonly mode?: number;
  /** Seconds since 1970; default 0, so that the same files give the same bytes. */
  readonly mtime?: number;
  /** Exactly `size` bytes. */
  readonly data: AsyncIterable<Uint8Array> | Uint8Array;
}

/**
 * A POSIX ustar archive of regular files, as its bytes come (pipe it into gzip, a hash, a file):
 * owner 0:0 without names, each file's data checked against its size, two zero blocks at the end.
 */
export async function* tarArchive(files: Iterable<TarFileInput>): AsyncGenerator<Buffer, void, undefined> {
  for (const file of files) {
    check(
      safeEntryName(file.name) === file.name,
      `tar: ${JSON.stringify(file.name)} is not a normal relative name`,
    );
    yield encodeTarHeader({
      name: file.name,
      type: TarType.FILE,
      mode: file.mode ?? 0o644,
      uid: 0,
      gid: 0,
      size: file.size,
      mtime: file.mtime ?? 0,
      linkName: "",
      uname: "",
      gname: "",
    });
    let written = 0;
    const data = file.data instanceof Uint8Array ? [file.data] : file.data;
    for await (const chunk of data) {
      written += chunk.byteLength;
      check(written <= file.size, `tar: ${file.name} gave more than its ${file.size} bytes`);
      yield Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    }
    check(written === file.size, `tar: ${file.name} gave ${written} bytes, not ${file.size}`);
    if (padding(file.size) > 0) yield Buffer.alloc(padding(file.size));
  }
  yield Buffer.alloc(2 * BLOCK);
}
