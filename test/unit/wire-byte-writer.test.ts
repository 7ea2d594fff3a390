import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ByteWriter } from "../../actors/wire/bytes.ts";

describe("byte writer", () => {
  it("byte writer - every write that grows the buffer lands in the grown one", () => {
    const writes: [string, (w: ByteWriter) => void, string][] = [
      ["u8", (w) => w.u8(0xab), "ab"],
      ["u16le", (w) => w.u16le(0x1234), "3412"],
      ["u16be", (w) => w.u16be(0x1234), "1234"],
      ["u32le", (w) => w.u32le(0x12345678), "78563412"],
      ["u32be", (w) => w.u32be(0x12345678), "12345678"],
      ["u64le", (w) => w.u64le(1n), "0100000000000000"],
      ["bytes", (w) => w.bytes(Buffer.from("cafe", "hex")), "cafe"],
      ["zeros", (w) => w.zeros(3), "000000"],
    ];
    for (const [name, write, hex] of writes) {
      const w = new ByteWriter(1).u8(0xff);
      write(w);
      assert.equal(w.toBuffer().toString("hex"), `ff${hex}`, name);
    }
  });
});
