import assert from "node:assert/strict";
import { createCipheriv, createDecipheriv } from "node:crypto";
import { describe, it } from "node:test";
import { aesCmac } from "../../../actors/smb/crypto/cmac.ts";
import { aesGmac } from "../../../actors/smb/crypto/gmac.ts";
import { smb3Kdf } from "../../../actors/smb/crypto/kdf.ts";

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ""), "hex");

describe("aes-cmac", () => {
  // RFC 4493 section 4, examples 1 to 4.
  const key = hex("2b7e1516 28aed2a6 abf71588 09cf4f3c");
  const message = hex(
    `6bc1bee2 2e409f96 e93d7e11 7393172a ae2d8a57 1e03ac9c 9eb76fac 45af8e51
     30c81c46 a35ce411 e5fbc119 1a0a52ef f69f2445 df4f9b17 ad2b417b e66c3710`,
  );
  const cases: [number, string][] = [
    [0, "bb1d6929 e9593728 7fa37d12 9b756746"],
    [16, "070a16b4 6b4d4144 f79bdd9d d04a287c"],
    [40, "dfa66747 de9ae630 30ca3261 1497c827"],
    [64, "51f0bebf 7e3b9d92 fc497417 79363cfe"],
  ];
  for (const [length, mac] of cases) {
    it(`aes-cmac - RFC 4493 example of ${length} bytes`, () => {
      assert.equal(aesCmac(key, message.subarray(0, length)).toString("hex"), hex(mac).toString("hex"));
    });
  }

  it("aes-cmac - does not modify its input and differs when one bit does", () => {
    const data = Buffer.from(message.subarray(0, 40));
    const before = Buffer.from(data);
    const mac = aesCmac(key, data);
    assert.deepEqual(data, before);
    data[39] = (data[39] ?? 0) ^ 1;
    assert.notDeepEqual(aesCmac(key, data), mac);
  });
});

describe("aes-gmac", () => {
  // "The Galois/Counter Mode of Operation (GCM)", McGrew and Viega, test case 1 (AES-128) and
  // test case 13 (AES-256): empty plaintext and AAD, so the tag is the GMAC of nothing.
  it("aes-gmac - GCM spec test case 1 (AES-128, nothing authenticated)", () => {
    assert.equal(
      aesGmac(Buffer.alloc(16), Buffer.alloc(12), Buffer.alloc(0)).toString("hex"),
      "58e2fccefa7e3061367f1d57a4e7455a",
    );
  });

  it("aes-gmac - GCM spec test case 13 (AES-256, nothing authenticated)", () => {
    assert.equal(
      aesGmac(Buffer.alloc(32), Buffer.alloc(12), Buffer.alloc(0)).toString("hex"),
      "530f8afbc74536b9a963b4f1c4cb738b",
    );
  });

  it("aes-gmac - NIST CAVS gcmEncryptExtIV128 (PTlen 0, AADlen 128, count 0)", () => {
    const tag = aesGmac(
      hex("77be63708971c4e240d1cb79e8d77feb"),
      hex("e0e00f19fed7ba0136a797f3"),
      hex("7a43ec1d9c0a5a78a0b16533a6213cab"),
    );
    assert.equal(tag.toString("hex"), "209fcc8d3675ed938e9c7166709dd946");
  });

  it("aes-gmac - refuses a nonce that is not 12 bytes", () => {
    assert.throws(() => aesGmac(Buffer.alloc(16), Buffer.alloc(11), Buffer.alloc(0)), RangeError);
  });
});

/** AES-GCM as transform.ts drives node:crypto: 16-byte tag, AAD before the plaintext. */
function gcmSeal(
  key: Buffer,
  iv: Buffer,
  plaintext: Buffer,
  aad: Buffer,
): { ciphertext: string; tag: string } {
  const c = createCipheriv(key.length === 32 ? "aes-256-gcm" : "aes-128-gcm", key, iv, { authTagLength: 16 });
  c.setAAD(aad);
  const ciphertext = Buffer.concat([c.update(plaintext), c.final()]).toString("hex");
  return { ciphertext, tag: c.getAuthTag().toString("hex") };
}

describe("aes-gcm", () => {
  // The GCM spec's test cases 2 to 4 (AES-128) and 16 (AES-256).
  const k3 = hex("feffe9928665731c6d6a8f9467308308");
  const iv3 = hex("cafebabefacedbaddecaf888");
  const p3 = hex(
    `d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72
     1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255`,
  );
  const c3 = `42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e
              21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091473f5985`.replace(/\s+/g, "");
  const a4 = hex("feedfacedeadbeeffeedfacedeadbeefabaddad2");

  it("aes-gcm - test case 2 (AES-128, one zero block)", () => {
    assert.deepEqual(gcmSeal(Buffer.alloc(16), Buffer.alloc(12), Buffer.alloc(16), Buffer.alloc(0)), {
      ciphertext: "0388dace60b6a392f328c2b971b2fe78",
      tag: "ab6e47d42cec13bdf53a67b21257bddf",
    });
  });

  it("aes-gcm - test case 3 (AES-128, 64 bytes, no AAD)", () => {
    assert.deepEqual(gcmSeal(k3, iv3, p3, Buffer.alloc(0)), {
      ciphertext: c3,
      tag: "4d5c2af327cd64a62cf35abd2ba6fab4",
    });
  });

  it("aes-gcm - test case 4 (AES-128, 60 bytes, 20 bytes of AAD)", () => {
    assert.deepEqual(gcmSeal(k3, iv3, p3.subarray(0, 60), a4), {
      ciphertext: c3.slice(0, 120),
      tag: "5bc94fbc3221a5db94fae95ae7121a47",
    });
  });

  it("aes-gcm - test case 16 (AES-256, 60 bytes, 20 bytes of AAD)", () => {
    assert.deepEqual(gcmSeal(Buffer.concat([k3, k3]), iv3, p3.subarray(0, 60), a4), {
      ciphertext:
        "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662",
      tag: "76fc6ece0f4e1768cddf8853bb2d551b",
    });
  });
});

describe("aes-ccm", () => {
  // RFC 3610 section 8, packet vector #1 (13-byte nonce, 8-byte tag), sealed and opened the way
  // transform.ts does: setAAD with plaintextLength, then one update.
  const key = hex("c0c1c2c3c4c5c6c7c8c9cacbcccdcecf");
  const nonce = hex("00000003020100a0a1a2a3a4a5");
  const aad = hex("0001020304050607");
  const plaintext = hex("08090a0b0c0d0e0f101112131415161718191a1b1c1d1e");
  const expected = "588c979a61c663d2f066d0c2c0f989806d5f6b61dac38417e8d12cfdf926e0";

  it("aes-ccm - RFC 3610 packet vector 1 seals to its published output", () => {
    const c = createCipheriv("aes-128-ccm", key, nonce, { authTagLength: 8 });
    c.setAAD(aad, { plaintextLength: plaintext.length });
    const out = Buffer.concat([c.update(plaintext), c.final(), c.getAuthTag()]);
    assert.equal(out.toString("hex"), expected);
  });

  it("aes-ccm - RFC 3610 packet vector 1 opens, and a changed tag does not", () => {
    const sealed = hex(expected);
    const open = (tag: Buffer): Buffer => {
      const d = createDecipheriv("aes-128-ccm", key, nonce, { authTagLength: 8 });
      d.setAuthTag(tag);
      d.setAAD(aad, { plaintextLength: plaintext.length });
      const out = d.update(sealed.subarray(0, plaintext.length));
      d.final();
      return out;
    };
    assert.deepEqual(open(sealed.subarray(plaintext.length)), plaintext);
    const bad = Buffer.from(sealed.subarray(plaintext.length));
    bad[0] = (bad[0] ?? 0) ^ 1;
    assert.throws(() => open(bad));
  });
});

describe("smb3 kdf", () => {
  it("smb3 kdf - L is part of the PRF input, so the 128-bit key is not a prefix of the 256-bit one", () => {
    const key = hex("419FDDF34C1E001909D362AE7FB6AF79");
    const k128 = smb3Kdf(key, "SMBSigningKey\0", Buffer.alloc(64), 128);
    const k256 = smb3Kdf(key, "SMBSigningKey\0", Buffer.alloc(64), 256);
    assert.equal(k128.length, 16);
    assert.equal(k256.length, 32);
    assert.notDeepEqual(k256.subarray(0, 16), k128);
  });

  it("smb3 kdf - a label as a string and as bytes give the same key", () => {
    const key = hex("B4546771B515F766A86735532DD6C4F0");
    const context = Buffer.from("SmbSign\0", "latin1");
    assert.deepEqual(
      smb3Kdf(key, "SMB2AESCMAC\0", context, 128),
      smb3Kdf(key, Buffer.from("SMB2AESCMAC\0", "latin1"), context, 128),
    );
  });
});
