/**
 * The SMB 3.x key derivation function (MS-SMB2 3.1.4.2): NIST SP800-108 in counter mode with
 * HMAC-SHA256 as the PRF, r = 32, one 0x00 byte between Label and Context, and L in bits.
 */
import { createHmac } from "node:crypto";

function bytesOf(value: string | Buffer): Buffer {
  return typeof value === "string" ? Buffer.from(value, "latin1") : value;
}

/**
 * Derives a `bits`-bit key from `key`. `label` and `context` are passed as the spec writes them,
 * with their own terminating NUL (e.g. "SMB2AESCMAC\0", "SmbSign\0"); the KDF adds the 0x00
 * separator of SP800-108 5.1 after the label, so the label is followed by two zero bytes.
 *
 * One HMAC-SHA256 block (256 bits) covers both lengths SMB uses, so the counter i is always 1.
 *
 * @example
 * const signingKey = smb3Kdf(sessionKey, "SMBSigningKey\0", preauthHash, 128); // 3.1.1
 */
export function smb3Kdf(key: Buffer, label: string | Buffer, context: Buffer, bits: 128 | 256): Buffer {
  const fixed = Buffer.alloc(4);
  const length = Buffer.alloc(4);
  fixed.writeUInt32BE(1); // [i]_2 with r = 32
  length.writeUInt32BE(bits); // [L]_2
  const k1 = createHmac("sha256", key)
    .update(fixed)
    .update(bytesOf(label))
    .update(Buffer.from([0]))
    .update(context)
    .update(length)
    .digest();
  return k1.subarray(0, bits / 8);
}
