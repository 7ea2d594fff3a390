import assert from "node:assert/strict";
import { createCipheriv } from "node:crypto";
import { describe, it } from "node:test";
import fc from "fast-check";
import { SmbIntegrityError } from "../../../actors/smb/crypto/errors.ts";
import { Cipher, cipherKeyBits } from "../../../actors/smb/crypto/keys.ts";
import { NonceSource, nonceLength } from "../../../actors/smb/crypto/nonce.ts";
import {
  decodeTransformHeader,
  decryptMessage,
  encodeTransformHeader,
  encryptMessage,
  MAX_ENCRYPTED_MESSAGE,
  TRANSFORM_HEADER_SIZE,
  type TransformHeader,
} from "../../../actors/smb/crypto/transform.ts";
import { MalformedPacketError } from "../../../actors/wire/bytes.ts";

const CIPHERS = [Cipher.AES128CCM, Cipher.AES128GCM, Cipher.AES256CCM, Cipher.AES256GCM];
const bytes = (min: number, max: number) =>
  fc.uint8Array({ minLength: min, maxLength: max }).map((a) => Buffer.from(a));
const keyFor = (cipher: number) => bytes(cipherKeyBits(cipher) / 8, cipherKeyBits(cipher) / 8);
const sessionId = fc.bigInt({ min: 0n, max: (1n << 64n) - 1n });
const ORIGINAL_SIZE_OFFSET = 36;

describe("smb2 transform", () => {
  for (const cipher of CIPHERS) {
    it(`smb2 transform - cipher ${cipher}: decrypt(encrypt(m)) is m, with its session id and sizes`, () => {
      fc.assert(
        fc.property(keyFor(cipher), sessionId, bytes(0, 2048), (key, id, message) => {
          const frame = encryptMessage({ cipher, key, sessionId: id, message });
          assert.equal(frame.length, TRANSFORM_HEADER_SIZE + message.length);
          const header = decodeTransformHeader(frame);
          assert.equal(header.originalMessageSize, message.length);
          assert.equal(header.flags, 1);
          assert.equal(
            header.nonce.subarray(nonceLength(cipher)).equals(Buffer.alloc(16 - nonceLength(cipher))),
            true,
          );
          const out = decryptMessage({ cipher, key, frame });
          assert.equal(out.sessionId, id);
          assert.deepEqual(out.message, message);
        }),
        { numRuns: 200 },
      );
    });

    it(`smb2 transform - cipher ${cipher}: a flipped bit in the AAD, ciphertext or tag is an integrity failure`, () => {
      fc.assert(
        fc.property(keyFor(cipher), sessionId, bytes(1, 512), fc.nat(), (key, id, message, pick) => {
          const frame = encryptMessage({ cipher, key, sessionId: id, message });
          // Every bit after the protocol id: signature, nonce, size, flags, session id, ciphertext.
          const bit = 32 + (pick % ((frame.length - 4) * 8));
          const tampered = Buffer.from(frame);
          tampered[bit >> 3] = (tampered[bit >> 3] ?? 0) ^ (1 << (bit & 7));
          const size = tampered.readUInt32LE(ORIGINAL_SIZE_OFFSET);
          // A size pushed over the cap is refused by the codec before anything is decrypted.
          const expected = size > MAX_ENCRYPTED_MESSAGE ? MalformedPacketError : SmbIntegrityError;
          assert.throws(() => decryptMessage({ cipher, key, frame: tampered }), expected);
        }),
        { numRuns: 300 },
      );
    });

    it(`smb2 transform - cipher ${cipher}: another key is an integrity failure`, () => {
      const key = Buffer.alloc(cipherKeyBits(cipher) / 8, 1);
      const frame = encryptMessage({ cipher, key, sessionId: 5n, message: Buffer.from("hello") });
      assert.throws(
        () => decryptMessage({ cipher, key: Buffer.alloc(key.length, 2), frame }),
        (err: unknown) =>
          err instanceof SmbIntegrityError && err.code === "SMB_INTEGRITY_FAILED" && !err.retryable,
      );
    });
  }

  it("smb2 transform - a frame from one cipher does not open under another of the same key size", () => {
    const key = Buffer.alloc(16, 9);
    const frame = encryptMessage({ cipher: Cipher.AES128GCM, key, sessionId: 1n, message: Buffer.alloc(80) });
    assert.throws(() => decryptMessage({ cipher: Cipher.AES128CCM, key, frame }), SmbIntegrityError);
  });

  it("smb2 transform - a key of the wrong size, a bad nonce length or an unknown cipher is a programming error", () => {
    const message = Buffer.alloc(64);
    assert.throws(
      () => encryptMessage({ cipher: Cipher.AES256GCM, key: Buffer.alloc(16), sessionId: 1n, message }),
      RangeError,
    );
    assert.throws(
      () =>
        encryptMessage({
          cipher: Cipher.AES128GCM,
          key: Buffer.alloc(16),
          sessionId: 1n,
          message,
          nonce: Buffer.alloc(11),
        }),
      RangeError,
    );
    assert.throws(
      () => encryptMessage({ cipher: 9, key: Buffer.alloc(16), sessionId: 1n, message }),
      RangeError,
    );
  });

  it("smb2 transform - without a nonce, two encryptions of one message differ", () => {
    const input = {
      cipher: Cipher.AES128GCM,
      key: Buffer.alloc(16, 3),
      sessionId: 1n,
      message: Buffer.alloc(64),
    };
    assert.notDeepEqual(encryptMessage(input), encryptMessage(input));
  });

  it("smb2 transform - an authenticated frame whose OriginalMessageSize or flags lie is malformed", () => {
    const key = Buffer.alloc(16, 4);
    const message = Buffer.alloc(64, 7);
    /** Seals `message` under a header of our choosing, the way a (broken) server would. */
    const seal = (originalMessageSize: number, flags: number): Buffer => {
      const nonce = Buffer.alloc(16, 1);
      const header = encodeTransformHeader({
        signature: Buffer.alloc(16),
        nonce,
        originalMessageSize,
        flags,
        sessionId: 1n,
      });
      const c = createCipheriv("aes-128-gcm", key, nonce.subarray(0, 12), { authTagLength: 16 });
      c.setAAD(header.subarray(20));
      const body = Buffer.concat([c.update(message), c.final()]);
      c.getAuthTag().copy(header, 4);
      return Buffer.concat([header, body]);
    };
    assert.deepEqual(decryptMessage({ cipher: Cipher.AES128GCM, key, frame: seal(64, 1) }).message, message);
    assert.throws(
      () => decryptMessage({ cipher: Cipher.AES128GCM, key, frame: seal(65, 1) }),
      /OriginalMessageSize 65/,
    );
    assert.throws(() => decryptMessage({ cipher: Cipher.AES128GCM, key, frame: seal(64, 2) }), /flags 0x2/);
  });

  it("smb2 transform - a frame shorter than its header is malformed", () => {
    const key = Buffer.alloc(16, 4);
    const frame = encryptMessage({ cipher: Cipher.AES128GCM, key, sessionId: 1n, message: Buffer.alloc(64) });
    assert.throws(
      () =>
        decryptMessage({
          cipher: Cipher.AES128GCM,
          key,
          frame: frame.subarray(0, TRANSFORM_HEADER_SIZE - 1),
        }),
      MalformedPacketError,
    );
  });
});

describe("smb2 transform aes-256", () => {
  // No published SMB vector uses AES-256. These frames were sealed with pycryptodome (used as a
  // reference tool only) from a header packed by hand: AAD = Nonce field .. SessionId, tag into
  // Signature, 11-byte CCM and 12-byte GCM nonces at the start of the Nonce field.
  const key = Buffer.from(Array.from({ length: 32 }, (_, i) => 0x40 + i));
  const message = Buffer.concat([
    Buffer.from("fe534d4240000100000000000800010008000000000000000600000000000000fffe000001000000", "hex"),
    Buffer.from("AES-256 in SMB 3.1.1", "latin1"),
  ]);
  const sessionId = 0x100000000099n;
  const cases: [number, string][] = [
    [
      Cipher.AES256CCM,
      "fd534d420961f7ea63d2f90d0046c57948a0cfdea0a1a2a3a4a5a6a7a8a9aa00000000003c000000000001009900000000100000" +
        "d50571b179f4cfa4c6d8c6404e1587ca73cc619310fe9be7246e9aae179dc6d3effc0f79872064cc9f039038def52f2b7ccb448d61ad191ca4aa5ac7",
    ],
    [
      Cipher.AES256GCM,
      "fd534d424ac6b64b80f3ea8a1469d4dd32a6e87fa0a1a2a3a4a5a6a7a8a9aaab000000003c00000000000100990000000010000029" +
        "dc4b7da2eb9d2d796f41fe81bc31f6e717f5c7ec6f852de4dcee9ae9c27ef8a5697243c15024a1a91ffbb36cd911e98b222735a6bb3223f441b3d4",
    ],
  ];
  for (const [cipher, expected] of cases) {
    it(`smb2 transform aes-256 - cipher ${cipher} seals and opens the reference frame byte for byte`, () => {
      const nonce = Buffer.from(Array.from({ length: nonceLength(cipher) }, (_, i) => 0xa0 + i));
      const frame = encryptMessage({ cipher, key, sessionId, message, nonce });
      assert.equal(frame.toString("hex"), expected);
      assert.deepEqual(decryptMessage({ cipher, key, frame: Buffer.from(expected, "hex") }), {
        sessionId,
        message,
      });
    });
  }
});

describe("smb2 transform header", () => {
  const header: fc.Arbitrary<TransformHeader> = fc.record({
    signature: bytes(16, 16),
    nonce: bytes(16, 16),
    originalMessageSize: fc.nat({ max: MAX_ENCRYPTED_MESSAGE }),
    flags: fc.integer({ min: 0, max: 0xffff }),
    sessionId,
  });

  it("smb2 transform header - decode(encode(x)) is x, in 52 bytes", () => {
    fc.assert(
      fc.property(header, (h) => {
        const encoded = encodeTransformHeader(h);
        assert.equal(encoded.length, TRANSFORM_HEADER_SIZE);
        assert.deepEqual(decodeTransformHeader(encoded), { ...h });
      }),
    );
  });

  it("smb2 transform header - random bytes decode or throw MalformedPacketError, nothing else", () => {
    const withMagic = bytes(0, 80).map((b) => Buffer.concat([Buffer.from([0xfd, 0x53, 0x4d, 0x42]), b]));
    fc.assert(
      fc.property(fc.oneof(bytes(0, 80), withMagic), (frame) => {
        try {
          decodeTransformHeader(frame);
        } catch (err) {
          assert.ok(err instanceof MalformedPacketError, String(err));
        }
      }),
      { numRuns: 500 },
    );
  });

  it("smb2 transform header - random frames given to decrypt are malformed or fail integrity, nothing else", () => {
    const frameArb = bytes(0, 200).map((b) =>
      Buffer.concat([
        Buffer.from([0xfd, 0x53, 0x4d, 0x42]),
        b.subarray(0, 32),
        Buffer.from([b.length, 0, 0, 0, 0, 0, 1, 0]),
        b,
      ]),
    );
    fc.assert(
      fc.property(fc.constantFrom(...CIPHERS), frameArb, (cipher, frame) => {
        try {
          decryptMessage({ cipher, key: Buffer.alloc(cipherKeyBits(cipher) / 8), frame });
          assert.fail("a random frame authenticated");
        } catch (err) {
          assert.ok(err instanceof MalformedPacketError || err instanceof SmbIntegrityError, String(err));
        }
      }),
      { numRuns: 300 },
    );
  });

  it("smb2 transform header - a wrong protocol id, a short buffer or an oversized message is malformed", () => {
    const good = encodeTransformHeader({
      signature: Buffer.alloc(16),
      nonce: Buffer.alloc(16),
      originalMessageSize: 10,
      flags: 1,
      sessionId: 1n,
    });
    const smb2 = Buffer.from(good);
    smb2[0] = 0xfe;
    assert.throws(() => decodeTransformHeader(smb2), /protocol id/);
    assert.throws(() => decodeTransformHeader(good.subarray(0, 51)), MalformedPacketError);
    const big = Buffer.from(good);
    big.writeUInt32LE(MAX_ENCRYPTED_MESSAGE + 1, ORIGINAL_SIZE_OFFSET);
    assert.throws(() => decodeTransformHeader(big), /over its cap/);
  });
});

describe("smb2 nonce source", () => {
  it("smb2 nonce source - a random prefix, then a little-endian counter, of the cipher's length", () => {
    const ccm = new NonceSource(Cipher.AES128CCM, (n) => Buffer.alloc(n, 0xab));
    assert.equal(ccm.next().toString("hex"), "abababab".slice(0, 6) + "0000000000000000");
    assert.equal(ccm.next().toString("hex"), "ababab" + "0100000000000000");
    const gcm = new NonceSource(Cipher.AES256GCM, (n) => Buffer.alloc(n, 0xcd));
    assert.equal(gcm.next().toString("hex"), "cdcdcdcd" + "0000000000000000");
  });

  it("smb2 nonce source - never repeats within a session", () => {
    const source = new NonceSource(Cipher.AES128GCM);
    const seen = new Set<string>();
    for (let i = 0; i < 100_000; i++) seen.add(source.next().toString("hex"));
    assert.equal(seen.size, 100_000);
  });

  it("smb2 nonce source - given to encryptMessage, its nonces go into successive frames", () => {
    const nonces = new NonceSource(Cipher.AES128CCM, (n) => Buffer.alloc(n, 0x5a));
    const key = Buffer.alloc(16, 6);
    const input = { cipher: Cipher.AES128CCM, key, sessionId: 2n, message: Buffer.alloc(70, 1), nonces };
    const first = encryptMessage(input);
    const second = encryptMessage(input);
    assert.equal(
      decodeTransformHeader(first).nonce.toString("hex"),
      "5a5a5a" + "0000000000000000" + "0000000000",
    );
    assert.equal(
      decodeTransformHeader(second).nonce.toString("hex"),
      "5a5a5a" + "0100000000000000" + "0000000000",
    );
    assert.deepEqual(
      decryptMessage({ cipher: Cipher.AES128CCM, key, frame: second }).message,
      Buffer.alloc(70, 1),
    );
    assert.throws(() => encryptMessage({ ...input, cipher: Cipher.AES128GCM }), /nonce source/);
  });
});
