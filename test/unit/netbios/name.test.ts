import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import {
  decodeFirstLevel,
  encodeFirstLevel,
  isNetbiosName,
  nameBytes,
  netbiosNameProblem,
  readEncodedName,
  writeEncodedName,
} from "../../../actors/netbios/name.ts";
import { ByteReader, ByteWriter, MalformedPacketError } from "../../../actors/wire/bytes.ts";
import { netbiosName } from "./arbitraries.ts";

function encoded(name: Parameters<typeof writeEncodedName>[1]): Buffer {
  const w = new ByteWriter();
  writeEncodedName(w, name);
  return w.toBuffer();
}

describe("netbios name", () => {
  it("netbios name - RFC 1001 14.1's example: FRED padded with spaces", () => {
    assert.equal(
      encodeFirstLevel({ name: "FRED", suffix: 0x20 }).toString("latin1"),
      "EGFCEFEECACACACACACACACACACACACA",
    );
  });

  it("netbios name - the suffix is the 16th byte, after space padding", () => {
    assert.equal(
      encodeFirstLevel({ name: "WINTARGET", suffix: 0x00 }).toString("latin1"),
      "FHEJEOFEEBFCEHEFFECACACACACACAAA",
    );
    assert.deepEqual(decodeFirstLevel(Buffer.from("FHEJEOFEEBFCEHEFFECACACACACACAAA")), {
      name: "WINTARGET",
      suffix: 0,
    });
  });

  it("netbios name - the wildcard is padded with zero bytes (RFC 1002 4.2.17)", () => {
    assert.deepEqual([...nameBytes({ name: "*", suffix: 0 })], [0x2a, ...Array<number>(15).fill(0)]);
    assert.equal(encodeFirstLevel({ name: "*", suffix: 0 }).toString(), `CK${"A".repeat(30)}`);
  });

  it("netbios name - second-level encoding carries the scope as labels", () => {
    const bytes = encoded({ name: "FRED", suffix: 0x20, scope: "NETBIOS.COM" });
    assert.equal(
      bytes.toString("hex"),
      "20" +
        Buffer.from("EGFCEFEECACACACACACACACACACACACA").toString("hex") +
        "07" +
        Buffer.from("NETBIOS").toString("hex") +
        "03" +
        Buffer.from("COM").toString("hex") +
        "00",
    );
  });

  it("netbios name - decode(encode(x)) is x", () => {
    fc.assert(
      fc.property(netbiosName, (n) => {
        const r = new ByteReader(encoded(n), "test");
        assert.deepEqual(readEncodedName(r), { ...n });
        assert.equal(r.remaining, 0);
      }),
    );
  });

  it("netbios name - a backward pointer is followed, a forward or looping one refused", () => {
    const name = encoded({ name: "FRED", suffix: 0x20, scope: "" });
    const withPointer = Buffer.concat([name, Buffer.from([0xc0, 0x00, 0xee])]);
    const r = new ByteReader(withPointer, "test", name.length);
    assert.deepEqual(readEncodedName(r), { name: "FRED", suffix: 0x20, scope: "" });
    assert.equal(r.offset, name.length + 2);
    const self = Buffer.from([0xc0, 0x00]);
    assert.throws(() => readEncodedName(new ByteReader(self, "test")), MalformedPacketError);
    const forward = Buffer.concat([Buffer.from([0xc0, 0x02]), name]);
    assert.throws(() => readEncodedName(new ByteReader(forward, "test")), MalformedPacketError);
    assert.throws(
      () => readEncodedName(new ByteReader(withPointer, "test", name.length), false),
      /compression pointer/,
    );
  });

  it("netbios name - a first label that is not 32 letters A..P is refused", () => {
    const bad = encoded({ name: "FRED", suffix: 0x20, scope: "" });
    bad[5] = 0x5a; // 'Z'
    assert.throws(() => readEncodedName(new ByteReader(bad, "test")), /outside A..P/);
    assert.throws(() => readEncodedName(new ByteReader(Buffer.from([3, 65, 65, 65, 0]), "test")), /not 32/);
  });

  it("netbios name - users' names: letters, digits and Microsoft's punctuation, no dots", () => {
    for (const ok of ["WINTARGET", "a", "web-01", "X!@#$%^&()-'{}~", "123456789012345", "a_b"]) {
      assert.equal(netbiosNameProblem(ok), undefined, ok);
    }
    for (const bad of ["", "SIXTEEN-LETTERS!", "web.example", "*SMBSERVER", "a b", "a\\b", "é", "a\u0000"]) {
      assert.equal(isNetbiosName(bad), false, bad);
      assert.match(netbiosNameProblem(bad) ?? "", /is not a NetBIOS name/);
    }
  });
});
