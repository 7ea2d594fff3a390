import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import { MalformedPacketError } from "../../../actors/wire/bytes.ts";
import { BLOCK, encodePaxRecords, encodeTarHeader } from "../../../actors/target/windows/tar-header.ts";
import {
  safeEntryName,
  type TarFileInput,
  type TarLimits,
  tarEntries,
} from "../../../actors/target/windows/tar.ts";
import { archive, END, entry, inPieces, plain, readAll } from "./tar-helpers.ts";

async function refused(bytes: Buffer, pattern: RegExp, limits?: TarLimits): Promise<void> {
  await assert.rejects(readAll(inPieces(bytes, [100, 512, 7]), limits), (err: unknown) => {
    assert.ok(err instanceof MalformedPacketError, `not MalformedPacketError: ${String(err)}`);
    assert.equal(err.code, "MALFORMED_PACKET");
    assert.match(err.message, pattern);
    return true;
  });
}

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
