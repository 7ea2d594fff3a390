import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { MalformedPacketError } from "../../../actors/wire/bytes.ts";
import {
  avFlags,
  avTimestamp,
  decodeAvPairs,
  encodeAvPairs,
  MAX_TARGET_INFO,
  type AvPair,
} from "../../../actors/smb/auth/ntlm-av-pairs.ts";
import {
  decodeAuthenticate,
  decodeChallenge,
  decodeNegotiate,
  encodeAuthenticate,
  encodeChallenge,
  encodeNegotiate,
  NegotiateFlags,
  type AuthenticateMessage,
  type ChallengeMessage,
  type NegotiateMessage,
} from "../../../actors/smb/auth/ntlm-messages.ts";

const buffer = (max: number, min = 0): fc.Arbitrary<Buffer> =>
  fc.uint8Array({ minLength: min, maxLength: max }).map((b) => Buffer.from(b));
const oem = fc.string({
  unit: fc.integer({ min: 0, max: 255 }).map((c) => String.fromCharCode(c)),
  maxLength: 40,
});
const unicode = fc.string({ unit: "binary", maxLength: 40 });
const flags = fc.integer({ min: 0, max: 0xffffffff });
const version = fc.record(
  {
    major: fc.integer({ min: 0, max: 255 }),
    minor: fc.integer({ min: 0, max: 255 }),
    build: fc.integer({ min: 0, max: 0xffff }),
    revision: fc.integer({ min: 0, max: 255 }),
  },
  { noNullPrototype: true },
);
const avPair: fc.Arbitrary<AvPair> = fc.record(
  { id: fc.integer({ min: 1, max: 0xffff }), value: buffer(48) },
  { noNullPrototype: true },
);
const avPairs = fc.array(avPair, { maxLength: 12 });
/** Text in the encoding the flags choose. */
const textFor = (f: number): fc.Arbitrary<string> => ((f & NegotiateFlags.UNICODE) !== 0 ? unicode : oem);

const negotiate: fc.Arbitrary<NegotiateMessage> = fc.record(
  { flags, domain: oem, workstation: oem, version },
  { requiredKeys: ["flags", "domain", "workstation"], noNullPrototype: true },
);

const challenge: fc.Arbitrary<ChallengeMessage> = flags.chain((f) =>
  fc.record(
    {
      flags: fc.constant(f),
      targetName: textFor(f),
      serverChallenge: buffer(8, 8),
      targetInfo: avPairs,
      version,
    },
    { requiredKeys: ["flags", "targetName", "serverChallenge"], noNullPrototype: true },
  ),
);

const authenticate: fc.Arbitrary<AuthenticateMessage> = flags.chain((f) =>
  fc
    .record(
      {
        flags: fc.constant(f),
        lmChallengeResponse: buffer(24),
        ntChallengeResponse: buffer(300),
        domain: textFor(f),
        user: textFor(f),
        workstation: textFor(f),
        encryptedRandomSessionKey: buffer(16),
        version,
        mic: buffer(16, 16),
      },
      {
        requiredKeys: [
          "flags",
          "lmChallengeResponse",
          "ntChallengeResponse",
          "domain",
          "user",
          "workstation",
          "encryptedRandomSessionKey",
        ],
        noNullPrototype: true,
      },
    )
    // A MIC follows the VERSION field: a message with a MIC always has one.
    .filter((m) => m.mic === undefined || m.version !== undefined),
);

/** Runs `decode` and fails unless it returns or throws MalformedPacketError. */
function onlyMalformed(decode: (b: Buffer) => unknown, bytes: Buffer): void {
  try {
    decode(bytes);
  } catch (err) {
    assert.ok(err instanceof MalformedPacketError, `threw ${String(err)}`);
  }
}

/** Valid messages with a few bytes overwritten, to reach deeper than random bytes do. */
const mutated = (valid: fc.Arbitrary<Buffer>): fc.Arbitrary<Buffer> =>
  fc
    .tuple(
      valid,
      fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }),
    )
    .map(([bytes, edits]) => {
      const out = Buffer.from(bytes);
      for (const [at, value] of edits) if (out.length > 0) out[at % out.length] = value;
      return out;
    });

describe("NTLM messages", () => {
  it("NTLM messages - decode(encode(x)) = x for NEGOTIATE, CHALLENGE and AUTHENTICATE", () => {
    fc.assert(fc.property(negotiate, (m) => assert.deepEqual(decodeNegotiate(encodeNegotiate(m)), m)));
    fc.assert(fc.property(challenge, (m) => assert.deepEqual(decodeChallenge(encodeChallenge(m)), m)));
    fc.assert(
      fc.property(authenticate, (m) => assert.deepEqual(decodeAuthenticate(encodeAuthenticate(m)), m)),
    );
  });

  it("NTLM messages - decode(encode(x)) = x for AV_PAIR lists", () => {
    fc.assert(fc.property(avPairs, (pairs) => assert.deepEqual(decodeAvPairs(encodeAvPairs(pairs)), pairs)));
  });

  it("NTLM messages - random and mutated bytes throw nothing but MalformedPacketError", () => {
    const decoders = [decodeNegotiate, decodeChallenge, decodeAuthenticate, decodeAvPairs];
    fc.assert(
      fc.property(buffer(200), (bytes) => {
        for (const decode of decoders) onlyMalformed(decode, bytes);
      }),
    );
    // Random bytes behind a valid signature and type, so that the field checks are reached.
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 3 }), buffer(200), (type, rest) => {
        const head = Buffer.concat([Buffer.from("NTLMSSP\0", "latin1"), Buffer.from([type, 0, 0, 0])]);
        for (const decode of decoders) onlyMalformed(decode, Buffer.concat([head, rest]));
      }),
      { numRuns: 300 },
    );
    fc.assert(fc.property(mutated(challenge.map(encodeChallenge)), (b) => onlyMalformed(decodeChallenge, b)));
    fc.assert(
      fc.property(mutated(authenticate.map(encodeAuthenticate)), (b) => onlyMalformed(decodeAuthenticate, b)),
    );
    fc.assert(fc.property(mutated(negotiate.map(encodeNegotiate)), (b) => onlyMalformed(decodeNegotiate, b)));
  });

  it("NTLM messages - VERSION and MIC are read only when the payload starts after them", () => {
    const base: AuthenticateMessage = {
      flags: NegotiateFlags.UNICODE,
      lmChallengeResponse: Buffer.alloc(24),
      ntChallengeResponse: Buffer.alloc(48, 7),
      domain: "D",
      user: "u",
      workstation: "",
      encryptedRandomSessionKey: Buffer.alloc(16, 5),
    };
    const v = { major: 10, minor: 0, build: 20348, revision: 15 };
    const plain = encodeAuthenticate(base);
    // The domain's offset (MS-NLMP 2.2.1.3 DomainNameFields at 28): the first payload field.
    assert.equal(plain.readUInt32LE(32), 64, "the payload right after the flags");
    const withMic = encodeAuthenticate({ ...base, version: v, mic: Buffer.alloc(16, 0x11) });
    assert.equal(withMic.readUInt32LE(32), 88);
    assert.deepEqual(withMic.subarray(72, 88), Buffer.alloc(16, 0x11));
    assert.deepEqual(decodeAuthenticate(withMic).mic, Buffer.alloc(16, 0x11));
    assert.equal(decodeAuthenticate(plain).version, undefined);
    // All fields empty: the length of the message tells.
    const empty = { ...base, lmChallengeResponse: Buffer.alloc(0), ntChallengeResponse: Buffer.alloc(0) };
    const bare = { ...empty, domain: "", user: "", encryptedRandomSessionKey: Buffer.alloc(0) };
    assert.deepEqual(decodeAuthenticate(encodeAuthenticate({ ...bare, version: v })), {
      ...bare,
      version: v,
    });
  });

  it("NTLM messages - a field past the end, inside the fixed part or over its cap is refused", () => {
    const c = encodeChallenge({
      flags: NegotiateFlags.UNICODE,
      targetName: "Server",
      serverChallenge: Buffer.alloc(8, 1),
      targetInfo: [{ id: 1, value: Buffer.alloc(4) }],
    });
    assert.throws(() => decodeChallenge(c.subarray(0, c.length - 1)), MalformedPacketError);
    const inside = Buffer.from(c);
    inside.writeUInt32LE(8, 16); // the target name's offset, into the signature
    assert.throws(() => decodeChallenge(inside), /inside the fixed part/);
    const odd = Buffer.from(c);
    odd.writeUInt16LE(5, 12); // a UTF-16 target name of 5 bytes
    assert.throws(() => decodeChallenge(odd), /odd length/);
    const big = Buffer.concat([c, Buffer.alloc(MAX_TARGET_INFO)]);
    big.writeUInt16LE(MAX_TARGET_INFO + 1, 40); // target info length over its cap
    assert.throws(() => decodeChallenge(big), /over its cap/);
    assert.throws(() => decodeChallenge(Buffer.alloc(17 * 1024)), /over/);
    const wrongType = Buffer.from(c);
    wrongType.writeUInt32LE(3, 8);
    assert.throws(() => decodeChallenge(wrongType), /message type 3, not 2/);
  });

  it("NTLM messages - AV_PAIR lists need their MsvAvEOL; timestamps and flags have fixed sizes", () => {
    assert.throws(() => decodeAvPairs(Buffer.from([1, 0, 2, 0, 0x41, 0])), MalformedPacketError);
    assert.throws(() => decodeAvPairs(Buffer.from([0, 0, 1, 0, 9])), /MsvAvEOL with a length/);
    const stamp = Buffer.alloc(8);
    stamp.writeBigUInt64LE(133000000000000000n);
    assert.equal(avTimestamp([{ id: 7, value: stamp }]), 133000000000000000n);
    assert.equal(avTimestamp([]), undefined);
    assert.throws(() => avTimestamp([{ id: 7, value: Buffer.alloc(4) }]), MalformedPacketError);
    assert.equal(avFlags([{ id: 6, value: Buffer.from([2, 0, 0, 0]) }]), 2);
    assert.throws(() => avFlags([{ id: 6, value: Buffer.alloc(2) }]), MalformedPacketError);
    // Bytes after MsvAvEOL (the 4 zeros of an NTLMv2 client challenge) are not part of the list.
    assert.deepEqual(decodeAvPairs(Buffer.from([0, 0, 0, 0, 0, 0, 0, 0])), []);
  });
});
