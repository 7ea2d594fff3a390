import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { MalformedPacketError, decoding } from "../../../actors/wire/bytes.ts";
import { NdrReader, NdrWriter } from "../../../actors/rpc/ndr.ts";

describe("ndr", () => {
  it("ndr - a unique [string] and a DWORD encode as ROpenSCManagerW's stub does (referent, counts, NUL, padding)", () => {
    const stub = new NdrWriter().uniqueWstring("ab").uniqueWstring(undefined).u32(0xf003f).toBuffer();
    assert.equal(
      stub.toString("hex"),
      "00000200" + "03000000" + "00000000" + "03000000" + "610062000000" + "0000" + "00000000" + "3f000f00",
    );
  });

  it("ndr - alignment counts from the stub's start: u8 then u64 pads 7 bytes, u16 after u8 pads 1", () => {
    const stub = new NdrWriter().u8(1).u64(2n).u8(3).u16(4).toBuffer();
    assert.equal(stub.toString("hex"), "01000000000000000200000000000000" + "03" + "00" + "0400");
    const r = new NdrReader(stub, "t");
    assert.deepEqual([r.u8(), r.u64(), r.u8(), r.u16(), r.remaining], [1, 2n, 3, 4, 0]);
  });

  it("ndr - what the writer writes the reader reads back (strings, arrays, handles, pointers)", () => {
    fc.assert(
      fc.property(
        fc.option(
          fc.string({ maxLength: 40 }).filter((s) => !s.includes("\0")),
          { nil: undefined },
        ),
        fc.option(fc.uint8Array({ maxLength: 50 }), { nil: undefined }),
        fc.uint8Array({ minLength: 20, maxLength: 20 }),
        fc.integer({ min: 0, max: 0xffffffff }),
        fc.bigUint64Array({ minLength: 1, maxLength: 1 }),
        (s, bytes, handle, n, [h]) => {
          const stub = new NdrWriter()
            .u8(7)
            .uniqueWstring(s)
            .uniqueConformantBytes(bytes)
            .contextHandle(handle)
            .uniqueU32(s === undefined ? undefined : n)
            .u16(n & 0xffff)
            .u64(h!)
            .u32(n)
            .toBuffer();
          const r = new NdrReader(stub, "t");
          assert.equal(r.u8(), 7);
          assert.equal(r.uniqueWstring(), s);
          const b = r.uniqueConformantBytes();
          assert.deepEqual(b === undefined ? undefined : new Uint8Array(b), bytes);
          assert.deepEqual(new Uint8Array(r.contextHandle()), handle);
          assert.equal(r.uniqueU32(), s === undefined ? undefined : n);
          assert.deepEqual([r.u16(), r.u64(), r.u32(), r.remaining], [n & 0xffff, h, n, 0]);
        },
      ),
    );
  });

  it("ndr - counts past the buffer, over the cap, inconsistent or without NUL throw only MalformedPacketError", () => {
    const bad = [
      "00000200" + "ffffff7f00000000ffffff7f", // a count past the end
      "00000200" + "02000000" + "01000000" + "02000000" + "610000000000", // offset + actual > max
      "00000200" + "02000000" + "00000000" + "02000000" + "61006200", // no NUL
      "00000200" + "00000000" + "00000000" + "00000000", // empty, no NUL
    ];
    for (const hex of bad)
      assert.throws(
        () => decoding("t", () => new NdrReader(Buffer.from(hex, "hex"), "t").uniqueWstring()),
        MalformedPacketError,
      );
    const big = new NdrWriter().wstring("x".repeat(100)).toBuffer();
    assert.throws(() => new NdrReader(big, "t").wstring(50), MalformedPacketError);
    const arr = new NdrWriter().conformantBytes(Buffer.alloc(100)).toBuffer();
    assert.throws(() => new NdrReader(arr, "t").conformantBytes(99), MalformedPacketError);
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (raw) => {
        try {
          decoding("t", () => {
            const r = new NdrReader(Buffer.from(raw), "t");
            r.uniqueWstring(1000);
            r.uniqueConformantBytes(1000);
            r.contextHandle();
          });
        } catch (err) {
          assert.ok(err instanceof MalformedPacketError, String(err));
        }
      }),
    );
  });
});
