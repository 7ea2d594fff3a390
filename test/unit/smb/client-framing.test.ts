import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { Deframer, encodeFrame } from "../../../actors/smb/client/framing.ts";
import { MalformedPacketError } from "../../../actors/wire/bytes.ts";

function message(length: number, fill: number): Buffer {
  return Buffer.alloc(length, fill);
}

describe("smb client framing", () => {
  it("framing - a message's frame is a zero byte and a 24-bit big-endian length", () => {
    const frame = encodeFrame(message(0x012345, 7));
    assert.deepEqual([...frame.subarray(0, 4)], [0x00, 0x01, 0x23, 0x45]);
    assert.equal(frame.length, 0x012345 + 4);
  });

  it("framing - messages split across chunks anywhere come out whole and in order", () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 1, max: 300 }), { minLength: 1, maxLength: 6 }),
        fc.array(fc.integer({ min: 1, max: 50 }), { minLength: 1, maxLength: 20 }),
        (lengths, cuts) => {
          const messages = lengths.map((n, i) => message(n, i + 1));
          const stream = Buffer.concat(messages.map(encodeFrame));
          const deframer = new Deframer(1024);
          const out: Buffer[] = [];
          let at = 0;
          let i = 0;
          while (at < stream.length) {
            const step = cuts[i++ % cuts.length]!;
            out.push(...deframer.push(stream.subarray(at, at + step)));
            at += step;
          }
          assert.deepEqual(out, messages);
          assert.equal(deframer.buffered, 0);
        },
      ),
    );
  });

  it("framing - NetBIOS keep-alives (type 0x85) between messages are skipped", () => {
    const keepAlive = Buffer.from([0x85, 0, 0, 0]);
    const deframer = new Deframer(1024);
    const out = deframer.push(Buffer.concat([keepAlive, encodeFrame(message(70, 1)), keepAlive]));
    assert.deepEqual(out, [message(70, 1)]);
    assert.equal(deframer.buffered, 0);
  });

  it("framing - a length over the cap is refused from the header, before the body arrives", () => {
    const deframer = new Deframer(64 * 1024);
    // Only the 4-byte header of a 16 MiB frame: refused without waiting for (or holding) its body.
    assert.throws(() => deframer.push(Buffer.from([0, 0xff, 0xff, 0xff])), MalformedPacketError);
    assert.ok(deframer.buffered <= 4);
  });

  it("framing - the cap grows after NEGOTIATE", () => {
    const deframer = new Deframer(100);
    assert.throws(() => deframer.push(encodeFrame(message(200, 1))), MalformedPacketError);
    const again = new Deframer(100);
    again.setCap(300);
    assert.deepEqual(again.push(encodeFrame(message(200, 1))), [message(200, 1)]);
  });

  it("framing - other session packet types are refused", () => {
    assert.throws(() => new Deframer(1024).push(Buffer.from([0x82, 0, 0, 0])), MalformedPacketError);
  });
});
