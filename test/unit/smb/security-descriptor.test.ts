/**
 * The security descriptor and SID codecs (actors/smb/codec/security-descriptor.ts, sid.ts) on
 * vectors assembled by hand from MS-DTYP 2.4.2.2, 2.4.4 to 2.4.6, on vectors another implementation
 * made (impacket's SR_SECURITY_DESCRIPTOR, and Samba's own answer: test/fixtures/smb/
 * security-descriptor/make-vectors.py), round trips of random descriptors, and malformed input.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import { ByteWriter, MalformedPacketError } from "../../../actors/wire/bytes.ts";
import {
  AceFlag,
  canonicalSid,
  decodeSecurityDescriptor,
  decodeSid,
  encodeSecurityDescriptor,
  encodeSid,
  isSid,
  privateDirectoryDacl,
  SdControl,
  type Ace,
  type Acl,
  type SecurityDescriptor,
} from "../../../actors/smb/codec/security-descriptor.ts";

interface Vector {
  name: string;
  hex: string;
  expected: {
    control: number;
    owner?: string;
    group?: string;
    dacl?: {
      revision: number;
      aces: (
        | { type: "allowed" | "denied"; flags: number; mask: number; sid: string }
        | { type: "other"; aceType: number; flags: number; bodyHex: string }
      )[];
    } | null;
  };
}

const vectors = JSON.parse(
  readFileSync(join(import.meta.dirname, "../../fixtures/smb/security-descriptor/vectors.json"), "utf8"),
) as Vector[];

/** What the decoder gives for what impacket read: Control without the bits the shape implies. */
function fromImpacket(e: Vector["expected"]): SecurityDescriptor {
  const implied = SdControl.DACL_PRESENT | SdControl.SACL_PRESENT | SdControl.SELF_RELATIVE;
  const dacl =
    e.dacl === undefined
      ? undefined
      : e.dacl === null
        ? null
        : {
            revision: e.dacl.revision,
            aces: e.dacl.aces.map((a): Ace =>
              a.type === "other"
                ? { type: "other", aceType: a.aceType, flags: a.flags, body: Buffer.from(a.bodyHex, "hex") }
                : a,
            ),
          };
  return {
    control: e.control & ~implied,
    ...(e.owner !== undefined ? { owner: e.owner } : {}),
    ...(e.group !== undefined ? { group: e.group } : {}),
    ...(dacl !== undefined ? { dacl } : {}),
  };
}

const malformed = { name: "MalformedPacketError" };

describe("security descriptor codec", () => {
  it("security descriptor - SIDs in binary form as MS-DTYP 2.4.2.2 lays them out, both ways", () => {
    // Revision 1, 2 subauthorities, authority 5 (6 bytes big-endian), 32 and 544 little-endian.
    const admins = Buffer.from("01020000000000052000000020020000", "hex");
    assert.deepEqual(encodeSid("S-1-5-32-544"), admins);
    assert.equal(decodeSid(admins), "S-1-5-32-544");
    const system = Buffer.from("010100000000000512000000", "hex");
    assert.deepEqual(encodeSid("S-1-5-18"), system);
    assert.equal(decodeSid(system), "S-1-5-18");
    // An authority of 2^32 or more is written in hexadecimal (MS-DTYP 2.4.2.1).
    const big = Buffer.from("01011234567890ab01000000", "hex");
    assert.equal(decodeSid(big), "S-1-0x1234567890AB-1");
    assert.deepEqual(encodeSid("S-1-0x1234567890ab-1"), big);
    assert.equal(decodeSid(Buffer.from("010000000000000500", "hex")), "S-1-5");
  });

  it("security descriptor - SID strings are checked and made canonical", () => {
    assert.equal(canonicalSid("s-1-5-32-0544"), "S-1-5-32-544");
    assert.equal(canonicalSid("S-1-4294967296-7"), "S-1-0x000100000000-7");
    assert.equal(canonicalSid("S-1-0x000000000005-18"), "S-1-5-18");
    for (const bad of [
      "S-2-5-18",
      "S-1",
      "S-1-5-",
      "S-1-5-4294967296",
      "S-1-281474976710656",
      `S-1-5${"-1".repeat(16)}`,
      "S-1-5-18 ",
      "Administrators",
    ]) {
      assert.equal(isSid(bad), false, bad);
      assert.throws(() => encodeSid(bad), malformed, bad);
    }
    assert.equal(isSid(`S-1-5${"-1".repeat(15)}`), true);
  });

  it("security descriptor - a descriptor assembled from the field tables of MS-DTYP 2.4.6, 2.4.5 and 2.4.4.2 decodes", () => {
    const sid = encodeSid("S-1-5-32-544");
    const ace = new ByteWriter()
      .u8(0) // ACCESS_ALLOWED_ACE_TYPE
      .u8(AceFlag.OBJECT_INHERIT | AceFlag.CONTAINER_INHERIT)
      .u16le(8 + sid.length)
      .u32le(0x001f01ff)
      .bytes(sid)
      .toBuffer();
    const acl = new ByteWriter()
      .u8(2)
      .u8(0)
      .u16le(8 + ace.length)
      .u16le(1)
      .u16le(0)
      .bytes(ace)
      .toBuffer();
    const owner = encodeSid("S-1-5-18");
    const sd = new ByteWriter()
      .u8(1)
      .u8(0)
      .u16le(0x8000 | 0x1000 | 0x0004) // SELF_RELATIVE, DACL_PROTECTED, DACL_PRESENT
      .u32le(20 + acl.length) // OffsetOwner, after the DACL
      .u32le(0)
      .u32le(0)
      .u32le(20) // OffsetDacl
      .bytes(acl)
      .bytes(owner)
      .toBuffer();
    const decoded = decodeSecurityDescriptor(sd);
    assert.deepEqual(decoded, {
      control: SdControl.DACL_PROTECTED,
      owner: "S-1-5-18",
      dacl: {
        revision: 2,
        aces: [{ type: "allowed", flags: 3, mask: 0x001f01ff, sid: "S-1-5-32-544" }],
      },
    });
    assert.deepEqual(encodeSecurityDescriptor(decoded), sd, "the encoder lays it out the same way");
  });

  it("security descriptor - impacket's vectors and Samba's answer decode as impacket reads them", () => {
    assert.ok(vectors.length >= 6, `${vectors.length} vectors`);
    assert.ok(
      vectors.some((v) => v.name.startsWith("Samba")),
      "Samba's answer is among them",
    );
    for (const v of vectors) {
      const bytes = Buffer.from(v.hex, "hex");
      const decoded = decodeSecurityDescriptor(bytes);
      assert.deepEqual(decoded, fromImpacket(v.expected), v.name);
      assert.deepEqual(decodeSecurityDescriptor(encodeSecurityDescriptor(decoded)), decoded, v.name);
      // impacket lays descriptors out as Windows does, and so does the encoder; Samba puts the
      // owner and group first.
      if (!v.name.startsWith("Samba"))
        assert.equal(encodeSecurityDescriptor(decoded).toString("hex"), v.hex, v.name);
    }
  });

  it("security descriptor - what setDacl sends is byte for byte what impacket builds", () => {
    const ours = encodeSecurityDescriptor({
      control: SdControl.DACL_PROTECTED,
      dacl: privateDirectoryDacl(),
    });
    const impacket = vectors.find((v) => v.name.startsWith("sumac's private DACL"));
    assert.ok(impacket);
    assert.equal(ours.toString("hex"), impacket.hex);
  });

  it("security descriptor - absent, NULL and empty DACLs are told apart", () => {
    const none = decodeSecurityDescriptor(encodeSecurityDescriptor({ control: 0, owner: "S-1-5-18" }));
    assert.equal("dacl" in none, false);
    const nullDacl = encodeSecurityDescriptor({ control: 0, dacl: null });
    assert.equal(nullDacl.readUInt16LE(2) & SdControl.DACL_PRESENT, SdControl.DACL_PRESENT);
    assert.equal(nullDacl.readUInt32LE(16), 0, "OffsetDacl 0");
    assert.equal(decodeSecurityDescriptor(nullDacl).dacl, null);
    assert.deepEqual(
      decodeSecurityDescriptor(encodeSecurityDescriptor({ control: 0, dacl: { revision: 2, aces: [] } }))
        .dacl,
      {
        revision: 2,
        aces: [],
      },
    );
  });

  it("security descriptor - the encoder refuses what it cannot write", () => {
    const acl = (aces: Ace[]): Acl => ({ revision: 2, aces });
    const allowed = (sid: string): Ace => ({ type: "allowed", flags: 0, mask: 1, sid });
    for (const sd of [
      { control: SdControl.DACL_PRESENT },
      { control: SdControl.SELF_RELATIVE },
      { control: 0x10000 },
      { control: 0, owner: "BUILTIN\\Administrators" },
      { control: 0, dacl: { revision: 3, aces: [] } },
      { control: 0, dacl: acl([{ type: "allowed", flags: 0x100, mask: 1, sid: "S-1-5-18" }]) },
      { control: 0, dacl: acl([{ type: "allowed", flags: 0, mask: 2 ** 32, sid: "S-1-5-18" }]) },
      { control: 0, dacl: acl([{ type: "other", aceType: 0, flags: 0, body: Buffer.alloc(4) }]) },
      { control: 0, dacl: acl(Array.from({ length: 5000 }, () => allowed("S-1-5-32-544"))) },
    ] as SecurityDescriptor[])
      assert.throws(() => encodeSecurityDescriptor(sd), malformed, JSON.stringify(sd).slice(0, 80));
  });

  it("security descriptor - malformed descriptors are MALFORMED_PACKET, nothing else", () => {
    const good = encodeSecurityDescriptor({
      control: 0,
      owner: "S-1-5-32-544",
      dacl: privateDirectoryDacl(),
    });
    const edit = (at: number, write: (b: Buffer) => void): Buffer => {
      const b = Buffer.from(good);
      write(b.subarray(at));
      return b;
    };
    const daclAt = good.readUInt32LE(16);
    const cases: [string, Buffer][] = [
      ["empty", Buffer.alloc(0)],
      ["revision 2", edit(0, (b) => b.writeUInt8(2))],
      ["not self-relative", edit(2, (b) => b.writeUInt16LE(0x0004))],
      ["owner offset past the end", edit(4, (b) => b.writeUInt32LE(good.length))],
      ["owner offset inside the header", edit(4, (b) => b.writeUInt32LE(8))],
      ["DACL offset past the end", edit(16, (b) => b.writeUInt32LE(0xffffffff))],
      ["ACL revision 3", edit(daclAt, (b) => b.writeUInt8(3))],
      ["AclSize past the end", edit(daclAt + 2, (b) => b.writeUInt16LE(0xfff0))],
      ["AclSize under its header", edit(daclAt + 2, (b) => b.writeUInt16LE(4))],
      ["more ACEs than fit", edit(daclAt + 4, (b) => b.writeUInt16LE(1000))],
      ["an ACE count past the ACEs", edit(daclAt + 4, (b) => b.writeUInt16LE(3))],
      ["AceSize under 4", edit(daclAt + 10, (b) => b.writeUInt16LE(2))],
      ["AceSize past the ACL", edit(daclAt + 10, (b) => b.writeUInt16LE(0x400))],
      ["a SID past its ACE", edit(daclAt + 10, (b) => b.writeUInt16LE(12))],
      ["a SID of revision 2", edit(daclAt + 16, (b) => b.writeUInt8(2))],
      ["a SID of 16 subauthorities", edit(daclAt + 17, (b) => b.writeUInt8(16))],
      ["over its cap", Buffer.concat([good, Buffer.alloc(200_000)])],
    ];
    for (const [what, bytes] of cases) assert.throws(() => decodeSecurityDescriptor(bytes), malformed, what);
    for (let n = 0; n < good.length; n++)
      assert.throws(() => decodeSecurityDescriptor(good.subarray(0, n)), malformed, `cut to ${n} bytes`);
  });
});

const sidArb = fc
  .tuple(
    fc.bigInt({ min: 0n, max: 2n ** 48n - 1n }),
    fc.array(fc.integer({ min: 0, max: 0xffffffff }), { maxLength: 15 }),
  )
  .map(([authority, subs]) =>
    canonicalSid(
      `S-1-${authority < 2n ** 32n ? authority : `0x${authority.toString(16).padStart(12, "0")}`}${subs.map((s) => `-${s}`).join("")}`,
    ),
  );
const aceArb: fc.Arbitrary<Ace> = fc.oneof(
  fc.record(
    {
      type: fc.constantFrom("allowed" as const, "denied" as const),
      flags: fc.integer({ min: 0, max: 0xff }),
      mask: fc.integer({ min: 0, max: 0xffffffff }),
      sid: sidArb,
    },
    { noNullPrototype: true },
  ),
  fc.record(
    {
      type: fc.constant("other" as const),
      aceType: fc.integer({ min: 2, max: 0xff }),
      flags: fc.integer({ min: 0, max: 0xff }),
      body: fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b)),
    },
    { noNullPrototype: true },
  ),
);
const aclArb: fc.Arbitrary<Acl | null> = fc.option(
  fc.record(
    { revision: fc.constantFrom(2, 4), aces: fc.array(aceArb, { maxLength: 12 }) },
    { noNullPrototype: true },
  ),
  { nil: null },
);
const implied = SdControl.DACL_PRESENT | SdControl.SACL_PRESENT | SdControl.SELF_RELATIVE;
const sdArb: fc.Arbitrary<SecurityDescriptor> = fc.record(
  {
    control: fc.integer({ min: 0, max: 0xffff }).map((c) => c & ~implied),
    owner: sidArb,
    group: sidArb,
    sacl: aclArb,
    dacl: aclArb,
  },
  { requiredKeys: ["control"], noNullPrototype: true },
);

describe("security descriptor codec properties", () => {
  it("security descriptor - decoding what was encoded gives the descriptor back", () => {
    fc.assert(
      fc.property(sdArb, (sd) => {
        assert.deepEqual(decodeSecurityDescriptor(encodeSecurityDescriptor(sd)), sd);
      }),
      { numRuns: 500 },
    );
  });

  it("security descriptor - SIDs round trip through binary and text", () => {
    fc.assert(
      fc.property(sidArb, (sid) => {
        assert.equal(decodeSid(encodeSid(sid)), sid);
        assert.equal(canonicalSid(sid), sid);
      }),
      { numRuns: 500 },
    );
  });

  it("security descriptor - random bytes, and valid descriptors with a byte changed, only ever throw MALFORMED_PACKET", () => {
    const refusesOrDecodes = (bytes: Buffer): void => {
      try {
        decodeSecurityDescriptor(bytes);
      } catch (err) {
        assert.ok(err instanceof MalformedPacketError, String(err));
      }
    };
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (b) => refusesOrDecodes(Buffer.from(b))),
      { numRuns: 1000 },
    );
    fc.assert(
      fc.property(sdArb, fc.nat(), fc.integer({ min: 0, max: 0xff }), (sd, at, value) => {
        const bytes = encodeSecurityDescriptor(sd);
        bytes[at % bytes.length] = value;
        refusesOrDecodes(bytes);
      }),
      { numRuns: 1000 },
    );
  });
});
