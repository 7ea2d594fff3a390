import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { promisify } from "node:util";
import fc from "fast-check";
import { MalformedPacketError } from "../../../actors/wire/bytes.ts";
import {
  BLOCK,
  decodePaxRecords,
  decodeTarHeader,
  encodePaxRecords,
  encodeTarHeader,
  type TarHeader,
  TarType,
} from "../../../actors/target/windows/tar-header.ts";
import {
  safeEntryName,
  tarArchive,
  type TarFileInput,
  type TarLimits,
  tarEntries,
} from "../../../actors/target/windows/tar.ts";

const run = promisify(execFile);

interface Read {
  readonly name: string;
  readonly type: string;
  readonly size: number;
  readonly mode: number;
  readonly mtime: number;
  readonly linkName: string;
  readonly data: Buffer;
}

async function readAll(source: AsyncIterable<Uint8Array>, limits?: TarLimits): Promise<Read[]> {
  const out: Read[] = [];
  for await (const e of tarEntries(source, limits)) {
    const pieces: Buffer[] = [];
    for await (const piece of e.body) pieces.push(piece);
    out.push({ ...e, data: Buffer.concat(pieces) });
  }
  return out;
}

/** `bytes` delivered in pieces of the given sizes (cycled), as a stream or a socket would. */
function inPieces(bytes: Buffer, sizes: readonly number[] = [bytes.length || 1]): Readable {
  const pieces: Buffer[] = [];
  for (let at = 0, i = 0; at < bytes.length; i++) {
    const n = Math.max(1, sizes[i % sizes.length]!);
    pieces.push(bytes.subarray(at, at + n));
    at += n;
  }
  return Readable.from(pieces);
}

async function archive(files: readonly TarFileInput[]): Promise<Buffer> {
  const out: Buffer[] = [];
  for await (const piece of tarArchive(files)) out.push(piece);
  return Buffer.concat(out);
}

const plain: TarHeader = {
  name: "a",
  type: TarType.FILE,
  mode: 0o644,
  uid: 0,
  gid: 0,
  size: 0,
  mtime: 0,
  linkName: "",
  uname: "",
  gname: "",
};

/** A raw header (the encoder does not judge names), with `data` after it padded to a block. */
function entry(h: Partial<TarHeader>, data: Buffer = Buffer.alloc(0)): Buffer {
  const size = h.size ?? data.length;
  const pad = Buffer.alloc((BLOCK - (size % BLOCK)) % BLOCK);
  return Buffer.concat([encodeTarHeader({ ...plain, ...h, size }), data, pad]);
}

const END = Buffer.alloc(2 * BLOCK);

/** Sets the checksum of a header changed by hand, so that only the change is wrong. */
function resum(block: Buffer): Buffer {
  block.fill(0x20, 148, 156);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += block[i]!;
  block.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148, "latin1");
  return block;
}

async function refused(bytes: Buffer, pattern: RegExp, limits?: TarLimits): Promise<void> {
  await assert.rejects(readAll(inPieces(bytes, [100, 512, 7]), limits), (err: unknown) => {
    assert.ok(err instanceof MalformedPacketError, `not MalformedPacketError: ${String(err)}`);
    assert.equal(err.code, "MALFORMED_PACKET");
    assert.match(err.message, pattern);
    return true;
  });
}

const segment = fc.stringMatching(/^[a-zA-Z0-9_.-]{1,40}$/).filter((s) => s !== "." && s !== "..");
const safeName = fc
  .array(segment, { minLength: 1, maxLength: 8 })
  .map((parts) => parts.join("/"))
  .filter((n) => n.length <= 255);
// Over 100 bytes: held by ustar's prefix and name fields together.
const longName = fc
  .array(fc.stringMatching(/^[a-z]{20,40}$/), { minLength: 4, maxLength: 6 })
  .map((parts) => parts.join("/"))
  .filter((n) => n.length > 100 && n.length <= 255);

describe("tar header codec", () => {
  it("tar header - decode(encode(h)) is h for every header ustar holds", () => {
    const header = fc.record({
      name: fc.oneof(safeName, longName),
      type: fc.constantFrom("0", "1", "2", "5", "7", "x"),
      mode: fc.integer({ min: 0, max: 0o7777777 }),
      uid: fc.integer({ min: 0, max: 0o7777777 }),
      gid: fc.integer({ min: 0, max: 0o7777777 }),
      size: fc.integer({ min: 0, max: 8 ** 11 - 1 }),
      mtime: fc.integer({ min: 0, max: 8 ** 11 - 1 }),
      linkName: fc.stringMatching(/^[a-z/.]{0,100}$/),
      uname: fc.stringMatching(/^[a-z]{0,31}$/),
      gname: fc.stringMatching(/^[a-z]{0,31}$/),
    });
    let split = 0;
    fc.assert(
      fc.property(header, (h) => {
        let block: Buffer;
        try {
          block = encodeTarHeader(h);
        } catch (err) {
          // A name over 100 bytes with no `/` that leaves both halves short enough.
          assert.ok(err instanceof MalformedPacketError && h.name.length > 100);
          return;
        }
        if (h.name.length > 100) split++;
        assert.equal(block.length, BLOCK);
        assert.deepEqual(decodeTarHeader(block), { ...h });
      }),
      { numRuns: 300 },
    );
    assert.ok(split > 0, "no long name went through the prefix field");
  });

  it("tar header - pax records decode to what was encoded, lengths counting themselves", () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.tuple(fc.stringMatching(/^[a-zA-Z.]{1,20}$/), fc.string({ maxLength: 300 })), {
          selector: ([k]) => k,
          maxLength: 6,
        }),
        (pairs) => {
          const records = new Map(pairs);
          assert.deepEqual(decodePaxRecords(encodePaxRecords(records)), records);
        },
      ),
    );
    // Around a change of width: 99 bytes with "99", and one more value byte gives 101 with "101"
    // (no record of 100 bytes holds a 91-byte path: "100" would need one more digit).
    const ninetyNine = encodePaxRecords(new Map([["path", "x".repeat(90)]]));
    assert.equal(ninetyNine.length, 99);
    assert.equal(ninetyNine.toString("latin1", 0, 3), "99 ");
    const hundredOne = encodePaxRecords(new Map([["path", "x".repeat(91)]]));
    assert.equal(hundredOne.length, 101);
    assert.equal(hundredOne.toString("latin1", 0, 4), "101 ");
  });

  it("tar header - a bad checksum, a missing magic and non-octal numbers are refused", () => {
    const good = encodeTarHeader({ ...plain, size: 5 });
    const badSum = Buffer.from(good);
    badSum[0] = 0x62;
    assert.throws(() => decodeTarHeader(badSum), /checksum/);
    const noMagic = Buffer.from(good);
    noMagic.fill(0, 257, 265);
    assert.throws(() => decodeTarHeader(resum(noMagic)), /magic/);
    const badSize = Buffer.from(good);
    badSize.write("0000000009x", 124, "latin1");
    assert.throws(() => decodeTarHeader(resum(badSize)), /size .* not an octal number/);
    assert.throws(() => decodeTarHeader(good.subarray(0, 511)), MalformedPacketError);
  });

  it("tar header - GNU base-256 sizes are read; negative ones refused", () => {
    const big = Buffer.from(encodeTarHeader(plain));
    big.fill(0, 124, 136);
    big[124] = 0x80;
    big.writeUIntBE(9 * 2 ** 33, 130, 6);
    assert.equal(decodeTarHeader(resum(big)).size, 9 * 2 ** 33);
    big[124] = 0xff;
    assert.throws(() => decodeTarHeader(resum(big)), /negative/);
  });

  it("tar header - pax records with a wrong length, no newline or no key are refused", () => {
    assert.throws(() => decodePaxRecords(Buffer.from("13 path=abc\n")), /overruns/);
    assert.throws(() => decodePaxRecords(Buffer.from("11 path=abc!")), /newline/);
    assert.throws(() => decodePaxRecords(Buffer.from("7 =abc\n")), /key=value/);
    assert.throws(() => decodePaxRecords(Buffer.from("x path=abc\n")), /length/);
    assert.throws(() => decodePaxRecords(Buffer.from("99999999999 p")), /record length/);
  });
});

describe("tar stream", () => {
  it("tar - what tarArchive writes, tarEntries reads back, however the bytes are cut", async () => {
    const files: TarFileInput[] = [
      { name: "empty", size: 0, data: Buffer.alloc(0) },
      { name: "one-block", size: 512, data: randomBytes(512), mode: 0o600, mtime: 1_700_000_000 },
      { name: "d/odd", size: 1000, data: randomBytes(1000) },
      { name: `${"deep/".repeat(30)}long-name.bin`, size: 7_000, data: randomBytes(7_000) },
    ];
    const bytes = await archive(files);
    assert.equal(bytes.length % BLOCK, 0);
    for (const cuts of [[bytes.length], [1], [511, 513], [4096, 3, 100_000]]) {
      const read = await readAll(inPieces(bytes, cuts));
      assert.deepEqual(
        read.map((e) => [e.name, e.type, e.size, e.mode, e.mtime, e.data]),
        files.map((f) => [f.name, "0", f.size, f.mode ?? 0o644, f.mtime ?? 0, f.data]),
      );
    }
  });

  it("tar - data streamed in through tarArchive is checked against the size given", async () => {
    const data = (): Readable => Readable.from([Buffer.alloc(10), Buffer.alloc(10)]);
    await assert.rejects(archive([{ name: "a", size: 15, data: data() }]), /more than its 15 bytes/);
    await assert.rejects(archive([{ name: "a", size: 25, data: data() }]), /gave 20 bytes, not 25/);
    await assert.rejects(archive([{ name: "../a", size: 0, data: Buffer.alloc(0) }]), MalformedPacketError);
    await assert.rejects(archive([{ name: "./a", size: 0, data: Buffer.alloc(0) }]), /not a normal/);
  });

  it("tar - an entry's data left unread is skipped; read too late, it is refused", async () => {
    const bytes = await archive([
      { name: "a", size: 3000, data: Buffer.alloc(3000, 1) },
      { name: "b", size: 3, data: Buffer.from("bbb") },
    ]);
    const names: string[] = [];
    let first: AsyncIterable<Buffer> | undefined;
    for await (const e of tarEntries(inPieces(bytes, [700]))) {
      names.push(e.name);
      if (e.name === "a") {
        first = e.body;
        // Half of it only.
        for await (const piece of e.body) if (piece.length > 0) break;
      } else {
        const pieces: Buffer[] = [];
        for await (const piece of e.body) pieces.push(piece);
        assert.equal(Buffer.concat(pieces).toString(), "bbb");
      }
    }
    assert.deepEqual(names, ["a", "b"]);
    await assert.rejects(async () => {
      for await (const _ of first!);
    }, /read already or passed over/);
  });

  it("tar - entry names are made relative and normal, and unsafe ones refused", () => {
    assert.equal(safeEntryName("./a//b/./c/"), "a/b/c");
    assert.equal(safeEntryName("./"), ".");
    for (const bad of [
      "",
      "/etc/passwd",
      "a/../../b",
      "..",
      "C:/Windows",
      "c:x",
      "a\\..\\b",
      "\\\\srv\\x",
      "a\0b",
    ])
      assert.throws(() => safeEntryName(bad), MalformedPacketError, JSON.stringify(bad));
  });

  it("tar - an archive with `..` or an absolute name is refused, however the name is given", async () => {
    await refused(Buffer.concat([entry({ name: "package/../../x" }), END]), /climbs out/);
    await refused(Buffer.concat([entry({ name: "/etc/cron.d/x" }), END]), /absolute/);
    await refused(Buffer.concat([entry({ name: "ok" }), entry({ name: "C:/x" }), END]), /absolute/);
    const pax = encodePaxRecords(new Map([["path", "../escape"]]));
    await refused(
      Buffer.concat([entry({ name: "PaxHeader/ok", type: "x" }, pax), entry({ name: "ok" }), END]),
      /climbs/,
    );
    const long = Buffer.from("/abs/name\0");
    await refused(
      Buffer.concat([entry({ name: "././@LongLink", type: "L" }, long), entry({ name: "ok" }), END]),
      /absolute/,
    );
  });

  it("tar - damaged and truncated archives are refused with MALFORMED_PACKET", async () => {
    const good = await archive([{ name: "f", size: 2000, data: randomBytes(2000) }]);
    await refused(good.subarray(0, 1500), /ends inside f/);
    await refused(good.subarray(0, 300), /ends inside a header/);
    await refused(good.subarray(0, BLOCK + 2048), /no end-of-archive block/);
    const badSum = Buffer.from(good);
    badSum[10] = 0x41;
    await refused(badSum, /checksum/);
    await refused(randomBytes(4096), /magic|checksum/);
    const pax = encodePaxRecords(new Map([["path", "x"]]));
    await refused(
      Buffer.concat([entry({ name: "p", type: "x" }, pax), END]),
      /extended header with no entry/,
    );
    await refused(
      Buffer.concat([entry({ name: "p", type: "x" }, Buffer.from("5 ab\n")), entry({ name: "x" }), END]),
      /pax/,
    );
    await refused(Buffer.concat([entry({ name: "s", type: "S" }), END]), /sparse/);
  });

  it("tar - caps on headers, entry size, extended headers, trailing and total bytes", async () => {
    const many = Buffer.concat([...Array.from({ length: 6 }, (_, i) => entry({ name: `f${i}` })), END]);
    assert.equal((await readAll(inPieces(many), { maxHeaders: 6 })).length, 6);
    await refused(many, /more than 5 headers/, { maxHeaders: 5 });
    const big = Buffer.concat([entry({ name: "big" }, Buffer.alloc(5000)), END]);
    await refused(big, /over its cap of 4096/, { maxEntryBytes: 4096 });
    // A size field claiming far more than follows: refused from the header, before any read.
    await refused(
      Buffer.concat([entry({ name: "huge", size: 8 ** 11 - 1 }).subarray(0, BLOCK), END]),
      /over its cap/,
    );
    const pax = encodePaxRecords(new Map([["comment", "c".repeat(2000)]]));
    await refused(
      Buffer.concat([entry({ name: "p", type: "x" }, pax), entry({ name: "x" }), END]),
      /over its cap of 1024/,
      {
        maxMetaBytes: 1024,
      },
    );
    const trailing = Buffer.concat([entry({ name: "x" }), END, Buffer.alloc(20_000)]);
    assert.equal((await readAll(inPieces(trailing))).length, 1);
    await refused(trailing, /after the end-of-archive/, { maxTrailingBytes: 10_240 });
    await refused(big, /archive is over its cap of 4000/, { maxArchiveBytes: 4000 });
  });

  it("tar - pax path and size override the header's", async () => {
    const name = `${"x".repeat(180)}/${"y".repeat(150)}`;
    const pax = encodePaxRecords(
      new Map([
        ["path", name],
        ["size", "3"],
      ]),
    );
    const bytes = Buffer.concat([
      entry({ name: "PaxHeader/x", type: "x" }, pax),
      encodeTarHeader({ ...plain, name: "short", size: 0 }),
      Buffer.from("abc"),
      Buffer.alloc(509),
      END,
    ]);
    const [e] = await readAll(inPieces(bytes));
    assert.equal(e?.name, name);
    assert.equal(e?.data.toString(), "abc");
  });
});

describe("tar and GNU tar", () => {
  let dir: string;
  let gnuTar: string | undefined;
  const files = new Map<string, Buffer>();

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "sumac-tar-test-"));
    const version = await run("tar", ["--version"]).then(
      (r) => r.stdout,
      () => "",
    );
    gnuTar = version.includes("GNU tar") ? version.split("\n")[0] : undefined;
    // 189 bytes: a GNU long name, a pax path, or ustar's prefix and name.
    const dirName = "long-directory-name-".repeat(3);
    const long = `${dirName}/${dirName}/${"and-a-long-file-name-".repeat(3)}.bin`;
    for (const [name, size] of [
      ["small.txt", 12],
      ["bin/node.exe", 200_001],
      [long, 513],
      ["empty", 0],
    ] as const) {
      const data = randomBytes(size);
      files.set(name, data);
      await mkdir(join(dir, "src", name, ".."), { recursive: true });
      await writeFile(join(dir, "src", name), data);
    }
    await symlink("small.txt", join(dir, "src", "link"));
  });

  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  for (const format of ["gnu", "pax", "ustar"] as const) {
    it(`tar - an archive GNU tar writes in ${format} format is read as GNU tar wrote it`, async (t) => {
      if (gnuTar === undefined) return t.skip("no GNU tar on PATH");
      const out = join(dir, `${format}.tar`);
      const args = ["-C", join(dir, "src"), `--format=${format}`, "-cf", out, "."];
      await run("tar", args);
      const read = await readAll(inPieces(await readFile(out), [10_000]));
      t.diagnostic(`${gnuTar}, ${format}: ${read.length} entries`);
      const regular = new Map(read.filter((e) => e.type === TarType.FILE).map((e) => [e.name, e.data]));
      assert.deepEqual(regular, files);
      const link = read.find((e) => e.name === "link");
      assert.equal(link?.type, TarType.SYMLINK);
      assert.equal(link?.linkName, "small.txt");
      assert.ok(read.some((e) => e.name === "." && e.type === TarType.DIRECTORY));
      assert.ok(read.some((e) => e.name === "bin" && e.type === TarType.DIRECTORY));
    });
  }

  it("tar - GNU tar reads what tarArchive writes, names over 100 bytes included", async (t) => {
    if (gnuTar === undefined) return t.skip("no GNU tar on PATH");
    const long = `${"d".repeat(120)}/${"f".repeat(90)}`;
    const data = randomBytes(3333);
    const out = join(dir, "ours.tar");
    await writeFile(
      out,
      await archive([
        { name: long, size: data.length, data, mtime: 86_400 },
        { name: "node.exe", size: 5, data: Buffer.from("MZ..."), mode: 0o644 },
      ]),
    );
    const listing = await run("tar", ["--numeric-owner", "--full-time", "-tvf", out], { env: { TZ: "UTC" } });
    assert.match(listing.stdout, new RegExp(`-rw-r--r-- 0/0 +3333 1970-01-02 00:00:00 ${long}\n`));
    assert.match(listing.stdout, /-rw-r--r-- 0\/0 +5 1970-01-01 00:00:00 node.exe\n/);
    const extracted = join(dir, "extracted");
    await mkdir(extracted);
    await run("tar", ["-C", extracted, "-xf", out]);
    const back = await readFile(join(extracted, long));
    assert.equal(
      createHash("sha256").update(back).digest("hex"),
      createHash("sha256").update(data).digest("hex"),
    );
  });
});
