import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { MalformedPacketError } from "../../../actors/wire/bytes.ts";
import {
  BLOCK,
  decodePaxRecords,
  decodeTarHeader,
  encodePaxRecords,
  encodeTarHeader,
} from "../../../actors/target/windows/tar-header.ts";
import { plain, resum } from "./tar-helpers.ts";

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
