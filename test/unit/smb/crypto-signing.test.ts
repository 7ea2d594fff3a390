import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { describe, it } from "node:test";
import fc from "fast-check";
import { Command, encodeHeader, HeaderFlag } from "../../../actors/smb/codec/header.ts";
import { aesGmac } from "../../../actors/smb/crypto/gmac.ts";
import { Dialect, SigningAlgorithm } from "../../../actors/smb/crypto/keys.ts";
import {
  gmacNonce,
  signingAlgorithmFor,
  signMessage,
  verifySignature,
} from "../../../actors/smb/crypto/signing.ts";
import { MalformedPacketError } from "../../../actors/wire/bytes.ts";

const key = Buffer.from("00112233445566778899aabbccddeeff", "hex");
const ALGORITHMS = [SigningAlgorithm.HMAC_SHA256, SigningAlgorithm.AES_CMAC, SigningAlgorithm.AES_GMAC];

/** A TREE_CONNECT-sized message: header and a body. */
function message(opts: { command?: number; flags?: number; messageId?: bigint } = {}): Buffer {
  const header = encodeHeader({
    creditCharge: 1,
    status: 0,
    command: opts.command ?? Command.TREE_CONNECT,
    credits: 1,
    flags: opts.flags ?? 0,
    nextCommand: 0,
    messageId: opts.messageId ?? 0x1122334455667788n,
    treeId: 0,
    sessionId: 0x100000000025n,
    signature: Buffer.alloc(16, 0xee),
  });
  return Buffer.concat([
    header,
    Buffer.from("0900000048001d00", "hex"),
    Buffer.from("\\\\host\\IPC$", "utf16le"),
  ]);
}

describe("smb2 signing algorithm", () => {
  it("smb2 signing algorithm - 2.x signs with HMAC-SHA256, 3.0.x with AES-CMAC whatever is offered", () => {
    assert.equal(signingAlgorithmFor(Dialect.SMB202), SigningAlgorithm.HMAC_SHA256);
    assert.equal(
      signingAlgorithmFor(Dialect.SMB210, SigningAlgorithm.AES_GMAC),
      SigningAlgorithm.HMAC_SHA256,
    );
    assert.equal(signingAlgorithmFor(Dialect.SMB300), SigningAlgorithm.AES_CMAC);
    assert.equal(signingAlgorithmFor(Dialect.SMB302, SigningAlgorithm.AES_GMAC), SigningAlgorithm.AES_CMAC);
  });

  it("smb2 signing algorithm - 3.1.1 takes the negotiated one, else AES-CMAC", () => {
    assert.equal(signingAlgorithmFor(Dialect.SMB311, SigningAlgorithm.AES_GMAC), SigningAlgorithm.AES_GMAC);
    assert.equal(
      signingAlgorithmFor(Dialect.SMB311, SigningAlgorithm.HMAC_SHA256),
      SigningAlgorithm.HMAC_SHA256,
    );
    assert.equal(signingAlgorithmFor(Dialect.SMB311), SigningAlgorithm.AES_CMAC);
  });
});

describe("smb2 signing", () => {
  for (const algorithm of ALGORITHMS) {
    it(`smb2 signing - algorithm ${algorithm}: a signed message verifies, with SIGNED set and the signature at 48`, () => {
      const m = message();
      signMessage(algorithm, key, m);
      assert.equal(m.readUInt32LE(16) & HeaderFlag.SIGNED, HeaderFlag.SIGNED);
      assert.notDeepEqual(m.subarray(48, 64), Buffer.alloc(16, 0xee));
      const before = Buffer.from(m);
      assert.equal(verifySignature(algorithm, key, m), true);
      assert.deepEqual(m, before, "verifying does not modify the message");
    });

    it(`smb2 signing - algorithm ${algorithm}: any flipped bit, or another key, is refused`, () => {
      const signed = message();
      signMessage(algorithm, key, signed);
      assert.equal(verifySignature(algorithm, Buffer.alloc(16, 1), signed), false);
      fc.assert(
        fc.property(fc.nat({ max: signed.length * 8 - 1 }), (bit) => {
          const m = Buffer.from(signed);
          m[bit >> 3] = (m[bit >> 3] ?? 0) ^ (1 << (bit & 7));
          assert.equal(verifySignature(algorithm, key, m), false);
        }),
      );
    });
  }

  it("smb2 signing - HMAC-SHA256 signature is the first 16 bytes of the HMAC over the zero-signature message", () => {
    const m = message();
    signMessage(SigningAlgorithm.HMAC_SHA256, key, m);
    const zeroed = Buffer.from(m);
    zeroed.fill(0, 48, 64);
    const expected = createHmac("sha256", key).update(zeroed).digest().subarray(0, 16);
    assert.deepEqual(m.subarray(48, 64), expected);
  });

  it("smb2 signing - a message shorter than a header is refused to sign and fails to verify", () => {
    assert.throws(() => signMessage(SigningAlgorithm.AES_CMAC, key, Buffer.alloc(63)), MalformedPacketError);
    assert.equal(verifySignature(SigningAlgorithm.AES_CMAC, key, Buffer.alloc(63)), false);
  });

  it("smb2 signing - an unknown algorithm id throws", () => {
    assert.throws(() => signMessage(7, key, message()), RangeError);
  });
});

describe("smb2 gmac signing nonce", () => {
  it("smb2 gmac signing nonce - MessageId little-endian, then 0 for a client's request", () => {
    assert.equal(gmacNonce(message()).toString("hex"), "8877665544332211" + "00000000");
  });

  it("smb2 gmac signing nonce - bit 0 set when the server sends (SERVER_TO_REDIR)", () => {
    const m = message({ flags: HeaderFlag.SERVER_TO_REDIR });
    assert.equal(gmacNonce(m).toString("hex"), "8877665544332211" + "01000000");
  });

  it("smb2 gmac signing nonce - bit 1 set for a CANCEL request", () => {
    const m = message({ command: Command.CANCEL, flags: HeaderFlag.ASYNC_COMMAND });
    assert.equal(gmacNonce(m).toString("hex"), "8877665544332211" + "02000000");
  });

  it("smb2 gmac signing nonce - the signature is GMAC under that nonce, so a request's does not pass as a response's", () => {
    const response = message({ flags: HeaderFlag.SERVER_TO_REDIR });
    signMessage(SigningAlgorithm.AES_GMAC, key, response);
    const zeroed = Buffer.from(response);
    zeroed.fill(0, 48, 64);
    const asServer = aesGmac(key, Buffer.from("887766554433221101000000", "hex"), zeroed);
    const asClient = aesGmac(key, Buffer.from("887766554433221100000000", "hex"), zeroed);
    assert.deepEqual(response.subarray(48, 64), asServer);
    // The same bytes signed in the client's role give another signature, which does not verify.
    assert.notDeepEqual(asClient, asServer);
    const forged = Buffer.from(response);
    asClient.copy(forged, 48);
    assert.equal(verifySignature(SigningAlgorithm.AES_GMAC, key, forged), false);
  });
});
