import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import {
  decodeSessionHeader,
  decodeSessionPacket,
  encodeSessionHeader,
  encodeSessionPacket,
  negativeSessionMeaning,
  NegativeSessionCode,
  type SessionPacket,
} from "../../../actors/netbios/session-codec.ts";
import { MalformedPacketError } from "../../../actors/wire/bytes.ts";
import { ipv4, netbiosName } from "./arbitraries.ts";

const first = (s: string): string => Buffer.from(s).toString("hex");

describe("netbios session codec", () => {
  it("session - a session request names the called and the calling name, first-level encoded (RFC 1002 4.3.2)", () => {
    const bytes = encodeSessionPacket({
      kind: "session-request",
      called: { name: "WINTARGET", suffix: 0x20, scope: "" },
      calling: { name: "SUMAC", suffix: 0x00, scope: "" },
    });
    const expected =
      "81000044" +
      `20${first(`FHEJEOFEEBFCEHEFFE${"CA".repeat(7)}`)}00` +
      `20${first(`FDFFENEBED${"CA".repeat(10)}AA`)}00`;
    assert.equal(bytes.toString("hex"), expected);
  });

  it("session - the answers: positive, negative with its code, retarget, keep-alive", () => {
    assert.deepEqual(decodeSessionPacket(Buffer.from("82000000", "hex")), {
      kind: "positive-session-response",
    });
    assert.deepEqual(decodeSessionPacket(Buffer.from("8300000182", "hex")), {
      kind: "negative-session-response",
      errorCode: NegativeSessionCode.CALLED_NAME_NOT_PRESENT,
    });
    assert.equal(negativeSessionMeaning(0x82), "called name not present");
    assert.equal(negativeSessionMeaning(0x42), "unknown error code 0x42");
    assert.deepEqual(decodeSessionPacket(Buffer.from("84000006ac1100020139", "hex")), {
      kind: "retarget-session-response",
      address: "172.17.0.2",
      port: 313,
    });
    assert.deepEqual(decodeSessionPacket(Buffer.from("85000000", "hex")), { kind: "keep-alive" });
  });

  it("session - a session message's length takes the E bit as its 17th bit", () => {
    assert.deepEqual(decodeSessionHeader(Buffer.from("0001ffff", "hex")), { type: 0, length: 0x1ffff });
    assert.equal(encodeSessionHeader(0, 0x10000).toString("hex"), "00010000");
    assert.throws(() => encodeSessionHeader(0, 0x20000), MalformedPacketError);
    assert.throws(() => decodeSessionHeader(Buffer.from("00020000", "hex")), /reserved flag bits/);
  });

  it("session - wrong trailer lengths are refused", () => {
    for (const h of [
      "8200000100",
      "830000020000",
      "8400000501020304",
      "85000001ff",
      "82000001",
      "8600000000",
    ]) {
      assert.throws(() => decodeSessionPacket(Buffer.from(h, "hex")), MalformedPacketError, h);
    }
  });

  const packet: fc.Arbitrary<SessionPacket> = fc.oneof(
    fc.record({ kind: fc.constant("session-request" as const), called: netbiosName, calling: netbiosName }),
    fc.constant({ kind: "positive-session-response" as const }),
    fc.record({ kind: fc.constant("negative-session-response" as const), errorCode: fc.nat(255) }),
    fc.record({
      kind: fc.constant("retarget-session-response" as const),
      address: ipv4,
      port: fc.nat(0xffff),
    }),
    fc.constant({ kind: "keep-alive" as const }),
    fc.record({
      kind: fc.constant("session-message" as const),
      payload: fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b)),
    }),
  );
  const plain = (p: SessionPacket): unknown => JSON.parse(JSON.stringify(p)) as unknown;

  it("session - decode(encode(x)) is x", () => {
    fc.assert(
      fc.property(packet, (p) => {
        assert.deepEqual(plain(decodeSessionPacket(encodeSessionPacket(p))), plain(p));
      }),
      { numRuns: 500 },
    );
  });

  it("session - random and mutated packets throw MalformedPacketError or decode, nothing else", () => {
    const decodeOrMalformed = (bytes: Uint8Array): void => {
      try {
        decodeSessionPacket(Buffer.from(bytes));
      } catch (err) {
        assert.ok(err instanceof MalformedPacketError, String(err));
      }
    };
    fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), decodeOrMalformed), { numRuns: 2000 });
    fc.assert(
      fc.property(packet, fc.nat(), fc.nat(255), (p, at, value) => {
        const bytes = encodeSessionPacket(p);
        bytes[at % bytes.length] = value;
        decodeOrMalformed(bytes);
      }),
      { numRuns: 2000 },
    );
  });
});
