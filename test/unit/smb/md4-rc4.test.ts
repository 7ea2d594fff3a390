import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { md4 } from "../../../actors/smb/auth/md4.ts";
import { createRc4 } from "../../../actors/smb/auth/rc4.ts";

const hex = (b: Buffer): string => b.toString("hex");

describe("md4", () => {
  it("md4 - the test suite of RFC 1320 (appendix A.5)", () => {
    const suite: [string, string][] = [
      ["", "31d6cfe0d16ae931b73c59d7e0c089c0"],
      ["a", "bde52cb31de33e46245e05fbdbd6fb24"],
      ["abc", "a448017aaf21d8525fc10ae87aa6729d"],
      ["message digest", "d9130a8164549fe818874806e1c7014b"],
      ["abcdefghijklmnopqrstuvwxyz", "d79e1c308aa5bbcdeea8ed63df412da9"],
      ["ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", "043f8582f241db351ce627e153e7f0e4"],
      [
        "12345678901234567890123456789012345678901234567890123456789012345678901234567890",
        "e33b4ddc9c38f2199c3e7b164fcc0536",
      ],
    ];
    for (const [input, digest] of suite) assert.equal(hex(md4(Buffer.from(input, "latin1"))), digest, input);
  });

  it('md4 - the NT hash of MS-NLMP 4.2.2.1.2 (NTOWFv1 of "Password")', () => {
    assert.equal(hex(md4(Buffer.from("Password", "utf16le"))), "a4f49c406510bdcab6824ee7c30fd852");
  });

  it("md4 - lengths around the 56-byte padding boundary each give a distinct 16-byte digest", () => {
    const digests = new Set<string>();
    for (let n = 50; n <= 130; n++) {
      const d = md4(Buffer.alloc(n, 0x61));
      assert.equal(d.length, 16);
      digests.add(hex(d));
    }
    assert.equal(digests.size, 81);
  });
});

describe("rc4", () => {
  it("rc4 - keystreams of RFC 6229 (40-bit and 128-bit keys, offsets 0 and 16)", () => {
    const stream = (key: string): string => hex(createRc4(Buffer.from(key, "hex")).update(Buffer.alloc(32)));
    assert.equal(
      stream("0102030405"),
      "b2396305f03dc027ccc3524a0a1118a8" + "6982944f18fc82d589c403a47a0d0919",
    );
    assert.equal(
      stream("0102030405060708090a0b0c0d0e0f10"),
      "9ac7cc9a609d1ef7b2932899cde41b97" + "5248c4959014126a6e8a84f11d1a9e1c",
    );
  });

  it("rc4 - the state carries across updates: pieces give the same stream as one call", () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 1, maxLength: 32 }),
        fc.uint8Array({ maxLength: 200 }),
        fc.integer({ min: 0, max: 200 }),
        (key, data, cut) => {
          const whole = createRc4(key).update(data);
          const handle = createRc4(key);
          const at = Math.min(cut, data.length);
          const pieces = Buffer.concat([
            handle.update(data.subarray(0, at)),
            handle.update(data.subarray(at)),
          ]);
          assert.deepEqual(pieces, whole);
          // And decrypting is encrypting again from the start.
          assert.deepEqual(createRc4(key).update(whole), Buffer.from(data));
        },
      ),
    );
  });

  it("rc4 - a key of 0 or 257 bytes is refused", () => {
    assert.throws(() => createRc4(Buffer.alloc(0)), RangeError);
    assert.throws(() => createRc4(Buffer.alloc(257)), RangeError);
  });
});
