import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { PeMachine, peMachine, peMachineField } from "../../../actors/target/windows/pe.ts";

/** The first bytes of an image: a DOS header whose e_lfanew points at "PE\0\0" and Machine. */
function image(machine: number, peOffset = 0xe8, length = 4096): Buffer {
  const b = Buffer.alloc(length);
  b.write("MZ", 0, "latin1");
  b.writeUInt32LE(peOffset, 0x3c);
  if (peOffset + 6 <= length) {
    b.write("PE\0\0", peOffset, "latin1");
    b.writeUInt16LE(machine, peOffset + 4);
  }
  return b;
}

describe("pe machine", () => {
  it("pe - AMD64, ARM64 and I386 images are x64, arm64 and x86", () => {
    assert.equal(peMachine(image(0x8664)), "x64");
    assert.equal(peMachine(image(0xaa64)), "arm64");
    assert.equal(peMachine(image(0x014c)), "x86");
    assert.deepEqual(PeMachine, { I386: 0x14c, AMD64: 0x8664, ARM64: 0xaa64 });
  });

  it("pe - another machine (ARMNT, IA64) is undefined, its raw field still readable", () => {
    assert.equal(peMachine(image(0x01c4)), undefined);
    assert.equal(peMachineField(image(0x01c4)), 0x01c4);
    assert.equal(peMachine(image(0x0200)), undefined);
  });

  it("pe - the signature may sit right at the end of what was read", () => {
    assert.equal(peMachine(image(0xaa64, 4096 - 6)), "arm64");
    assert.equal(peMachine(image(0xaa64, 0x40, 0x46)), "arm64");
  });

  it("pe - not an image: empty, short, no MZ, no PE signature", () => {
    assert.equal(peMachine(Buffer.alloc(0)), undefined);
    assert.equal(peMachine(Buffer.from("MZ")), undefined);
    assert.equal(peMachine(image(0x8664).subarray(0, 0x3f)), undefined);
    const noMz = image(0x8664);
    noMz.write("ZM", 0, "latin1");
    assert.equal(peMachine(noMz), undefined);
    const noSignature = image(0x8664);
    noSignature.write("NE\0\0", 0xe8, "latin1");
    assert.equal(peMachine(noSignature), undefined);
    // A text file that starts with MZ.
    assert.equal(
      peMachine(Buffer.from("MZ is not a program, just two letters at the start of a text".repeat(4))),
      undefined,
    );
  });

  it("pe - an e_lfanew pointing past what was read is refused, not followed", () => {
    assert.equal(peMachine(image(0x8664, 4096 - 5)), undefined);
    assert.equal(peMachine(image(0x8664, 4096)), undefined);
    assert.equal(peMachine(image(0x8664, 0xffffffff)), undefined);
    assert.equal(peMachine(image(0x8664, 0x80000000)), undefined);
  });

  it("pe - any bytes give an answer or undefined, never an exception", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), fc.nat(700), (bytes, lfanew) => {
        const b = Buffer.from(bytes);
        if (b.length >= 0x40) {
          b.write("MZ", 0, "latin1");
          b.writeUInt32LE(lfanew, 0x3c);
        }
        const got = peMachine(b);
        assert.ok(got === undefined || got === "x64" || got === "arm64" || got === "x86");
      }),
    );
  });
});
