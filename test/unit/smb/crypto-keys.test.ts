import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Cipher, deriveSessionKeys, Dialect } from "../../../actors/smb/crypto/keys.ts";

const hex = (s: string): Buffer => Buffer.from(s, "hex");

describe("smb session keys", () => {
  it("smb session keys - 2.x signs with the session key itself and has no cipher keys", () => {
    const sessionKey = hex("0123456789abcdef0123456789abcdef");
    for (const dialect of [Dialect.SMB202, Dialect.SMB210]) {
      const keys = deriveSessionKeys({ dialect, sessionKey });
      assert.deepEqual(keys.signingKey, sessionKey);
      assert.deepEqual(keys.applicationKey, sessionKey);
      assert.equal(keys.encryptionKey.length, 0);
      assert.equal(keys.decryptionKey.length, 0);
    }
  });

  it("smb session keys - a short key is right-padded with zeros to 16 bytes, a long one cut to 16", () => {
    const short = deriveSessionKeys({ dialect: Dialect.SMB210, sessionKey: hex("0102030405060708") });
    assert.equal(short.signingKey.toString("hex"), "01020304050607080000000000000000");
    const long = deriveSessionKeys({ dialect: Dialect.SMB210, sessionKey: Buffer.alloc(32, 7) });
    assert.deepEqual(long.signingKey, Buffer.alloc(16, 7));
    const short3 = deriveSessionKeys({ dialect: Dialect.SMB300, sessionKey: hex("0102030405060708") });
    const padded3 = deriveSessionKeys({
      dialect: Dialect.SMB300,
      sessionKey: hex("01020304050607080000000000000000"),
    });
    assert.deepEqual(short3, padded3);
  });

  it("smb session keys - 3.1.1 without its 64-byte preauth hash is refused", () => {
    assert.throws(
      () => deriveSessionKeys({ dialect: Dialect.SMB311, sessionKey: Buffer.alloc(16) }),
      RangeError,
    );
    assert.throws(
      () =>
        deriveSessionKeys({
          dialect: Dialect.SMB311,
          sessionKey: Buffer.alloc(16),
          preauthHash: Buffer.alloc(32),
        }),
      RangeError,
    );
  });

  // No published vector covers AES-256; these values were computed with impacket's
  // crypto.KDF_CounterMode (python3-impacket), used as a reference only, with L = 256 over the
  // full 32-byte key for the cipher keys and L = 128 over its first 16 bytes for the others.
  const fullKey = Buffer.from(Array.from({ length: 32 }, (_, i) => 0x20 + i));
  const preauthHash = Buffer.from(Array.from({ length: 64 }, (_, i) => i));
  for (const cipher of [Cipher.AES256GCM, Cipher.AES256CCM]) {
    it(`smb session keys - cipher ${cipher}: 256-bit cipher keys from the full session key`, () => {
      const keys = deriveSessionKeys({ dialect: Dialect.SMB311, sessionKey: fullKey, preauthHash, cipher });
      assert.equal(
        keys.encryptionKey.toString("hex"),
        "59d5d9f4060d5389e5e65e5e0bf210fae7870a9e398ba8ab2b4648a62a0834e8",
      );
      assert.equal(
        keys.decryptionKey.toString("hex"),
        "03741ea966624e590e1405242c81615cbdac1548820af6c813075c2d9d55fccc",
      );
      assert.equal(keys.signingKey.toString("hex"), "97225841edb404125a0fba3bb16628d3");
      assert.equal(keys.applicationKey.toString("hex"), "0b0408edf99897dd83d26f0455cc2bad");
    });
  }

  it("smb session keys - AES-128 ciphers use only the first 16 bytes of a longer key", () => {
    const long = deriveSessionKeys({
      dialect: Dialect.SMB311,
      sessionKey: fullKey,
      preauthHash,
      cipher: Cipher.AES128GCM,
    });
    const cut = deriveSessionKeys({
      dialect: Dialect.SMB311,
      sessionKey: fullKey.subarray(0, 16),
      preauthHash,
      cipher: Cipher.AES128GCM,
    });
    assert.deepEqual(long, cut);
    assert.equal(long.encryptionKey.length, 16);
  });
});
