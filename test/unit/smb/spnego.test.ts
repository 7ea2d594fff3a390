import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { MalformedPacketError } from "../../../actors/wire/bytes.ts";
import { decodeOid, DerReader, DerTag, derOid, derTlv, MAX_DER_DEPTH } from "../../../actors/smb/auth/der.ts";
import {
  decodeNegTokenInit,
  decodeNegTokenResp,
  encodeMechTypeList,
  encodeNegTokenInit,
  encodeNegTokenResp,
  MechOid,
  serverMechanisms,
  type NegTokenInit,
  type NegTokenResp,
} from "../../../actors/smb/auth/spnego.ts";

const h = (text: string): Buffer => Buffer.from(text.replace(/\s+/g, ""), "hex");
const buffer = (max: number): fc.Arbitrary<Buffer> =>
  fc.uint8Array({ maxLength: max }).map((b) => Buffer.from(b));

/** Dotted OIDs X.690 can encode: first arc 0..2, second under 40 unless the first is 2. */
const oid = fc
  .tuple(
    fc.integer({ min: 0, max: 2 }),
    fc.integer({ min: 0, max: 1000 }),
    fc.array(fc.integer({ min: 0, max: 0xffffffff }), { maxLength: 10 }),
  )
  .map(([a, b, rest]) => [a, a < 2 ? b % 40 : b, ...rest].join("."));
const latin1 = fc.string({
  unit: fc.integer({ min: 0, max: 255 }).map((c) => String.fromCharCode(c)),
  maxLength: 60,
});

const negTokenInit: fc.Arbitrary<NegTokenInit> = fc.record(
  {
    mechTypes: fc.array(oid, { minLength: 1, maxLength: 5 }),
    mechToken: buffer(300),
    mechListMIC: buffer(16),
    hintName: latin1,
  },
  { requiredKeys: ["mechTypes"], noNullPrototype: true },
);
const negTokenResp: fc.Arbitrary<NegTokenResp> = fc.record(
  {
    negState: fc.integer({ min: 0, max: 3 }),
    supportedMech: oid,
    responseToken: buffer(300),
    mechListMIC: buffer(16),
  },
  { requiredKeys: [], noNullPrototype: true },
);

function onlyMalformed(decode: (b: Buffer) => unknown, bytes: Buffer): void {
  try {
    decode(bytes);
  } catch (err) {
    assert.ok(err instanceof MalformedPacketError, `threw ${String(err)}`);
  }
}

describe("SPNEGO", () => {
  it("SPNEGO - a server's NegTokenInit2 (the hint Linux's ksmbd sends) encodes and decodes exactly", () => {
    // fs/smb/server/auth.c NEGOTIATE_GSS_HEADER with Kerberos: mechTypes krb5, MS krb5, NTLMSSP and
    // the hint name "not_defined_in_RFC4178@please_ignore".
    const hint = Buffer.concat([
      h(`60 5e 06 06 2b 06 01 05 05 02 a0 54 30 52 a0 24 30 22 06 09 2a 86 48 86 f7 12 01 02 02 06 09
         2a 86 48 82 f7 12 01 02 02 06 0a 2b 06 01 04 01 82 37 02 02 0a a3 2a 30 28 a0 26 1b 24`),
      Buffer.from("not_defined_in_RFC4178@please_ignore", "latin1"),
    ]);
    const token: NegTokenInit = {
      mechTypes: [MechOid.KERBEROS, MechOid.MS_KERBEROS, MechOid.NTLMSSP],
      hintName: "not_defined_in_RFC4178@please_ignore",
    };
    assert.deepEqual(decodeNegTokenInit(hint), token);
    assert.deepEqual(encodeNegTokenInit(token), hint);
    assert.ok(serverMechanisms(hint)?.includes(MechOid.NTLMSSP));
    assert.equal(serverMechanisms(Buffer.alloc(0)), undefined);
  });

  it("SPNEGO - the client's NegTokenInit: GSS wrapper, SPNEGO OID, NTLMSSP as the only mechanism", () => {
    const negotiate = Buffer.from("NTLMSSP\0\x01\0\0\0", "latin1");
    const token = encodeNegTokenInit({ mechTypes: [MechOid.NTLMSSP], mechToken: negotiate });
    assert.deepEqual(
      token,
      Buffer.concat([
        h(`60 2c 06 06 2b 06 01 05 05 02 a0 22 30 20 a0 0e 30 0c 06 0a 2b 06 01 04 01 82 37 02 02 0a
           a2 0e 04 0c`),
        negotiate,
      ]),
    );
    assert.deepEqual(encodeMechTypeList([MechOid.NTLMSSP]), h("30 0c 06 0a 2b 06 01 04 01 82 37 02 02 0a"));
  });

  it("SPNEGO - decode(encode(x)) = x for NegTokenInit, NegTokenInit2 and NegTokenResp", () => {
    fc.assert(
      fc.property(negTokenInit, (t) => assert.deepEqual(decodeNegTokenInit(encodeNegTokenInit(t)), t)),
    );
    fc.assert(
      fc.property(negTokenResp, (t) => assert.deepEqual(decodeNegTokenResp(encodeNegTokenResp(t)), t)),
    );
    fc.assert(fc.property(oid, (o) => assert.equal(decodeOid(derOid(o).subarray(2)), o)));
  });

  it("SPNEGO - long-form lengths are read, past 127 and past 255 bytes", () => {
    const token = Buffer.alloc(1000, 0x4e);
    const encoded = encodeNegTokenResp({ negState: 1, responseToken: token });
    assert.deepEqual(encoded.subarray(0, 4), h("a1 82 03 f9"));
    assert.deepEqual(decodeNegTokenResp(encoded).responseToken, token);
  });

  it("SPNEGO - random and mutated bytes throw nothing but MalformedPacketError", () => {
    const decoders = [decodeNegTokenInit, decodeNegTokenResp, serverMechanisms];
    fc.assert(
      fc.property(buffer(200), (bytes) => {
        for (const decode of decoders) onlyMalformed(decode, bytes);
      }),
    );
    const mutate = (valid: fc.Arbitrary<Buffer>): fc.Arbitrary<Buffer> =>
      fc.tuple(valid, fc.nat(), fc.integer({ min: 0, max: 255 })).map(([b, at, v]) => {
        const out = Buffer.from(b);
        out[at % out.length] = v;
        return out;
      });
    fc.assert(
      fc.property(mutate(negTokenInit.map(encodeNegTokenInit)), (b) => onlyMalformed(decodeNegTokenInit, b)),
    );
    fc.assert(
      fc.property(mutate(negTokenResp.map(encodeNegTokenResp)), (b) => onlyMalformed(decodeNegTokenResp, b)),
    );
  });

  it("SPNEGO - lengths past the end or over 64 KiB, indefinite lengths, trailing bytes and deep nesting are refused", () => {
    assert.throws(() => decodeNegTokenResp(h("a1 05 30 03 a0 01")), /past the end/);
    assert.throws(() => decodeNegTokenResp(h("a1 83 01 00 01 30")), /over 65536/);
    assert.throws(() => decodeNegTokenResp(h("a1 80 30 00 00 00")), /indefinite/);
    assert.throws(() => decodeNegTokenResp(h("a1 84 00 00 00 02 30 00")), /indefinite/);
    assert.throws(() => decodeNegTokenResp(h("a1 02 30 00 00")), /unexpected bytes/);
    assert.throws(() => decodeNegTokenResp(h("a1 05 30 03 a0 01 0a")), MalformedPacketError);
    assert.throws(() => decodeNegTokenResp(h("a1 07 30 05 a0 03 0a 01 04")), /negState outside/);
    assert.throws(() => new DerReader(h("bf 1f 00"), "tag").next(), /multi-byte tag/);
    assert.throws(() => decodeNegTokenInit(h("60 08 06 06 2b 06 01 05 05 03")), /not SPNEGO/);
    let nested = derTlv(DerTag.OCTET_STRING, Buffer.alloc(0));
    for (let i = 0; i <= MAX_DER_DEPTH + 1; i++) nested = derTlv(DerTag.SEQUENCE, nested);
    let reader = new DerReader(nested, "nesting");
    assert.throws(() => {
      for (;;) reader = reader.enter(DerTag.SEQUENCE);
    }, /nested deeper than 8/);
  });

  it("SPNEGO - OIDs with a non-minimal subidentifier, a cut subidentifier or a 33-bit arc are refused", () => {
    assert.equal(decodeOid(h("2b 06 01 04 01 82 37 02 02 0a")), MechOid.NTLMSSP);
    assert.throws(() => decodeOid(h("2b 80 01")), /leading zero/);
    assert.throws(() => decodeOid(h("2b 86")), /ends inside/);
    assert.throws(() => decodeOid(h("2b 90 80 80 80 00")), /over 32 bits/);
    assert.throws(() => decodeOid(Buffer.alloc(0)), /empty OID/);
    assert.throws(() => derOid("3.1"), MalformedPacketError);
    assert.throws(() => derOid("1.40"), MalformedPacketError);
    assert.throws(() => derOid("1.2.03"), MalformedPacketError);
  });
});
