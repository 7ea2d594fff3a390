/**
 * AES-CMAC (RFC 4493), the signing algorithm of SMB 3.0 and 3.0.2, and of 3.1.1 unless
 * SMB2_SIGNING_CAPABILITIES chose another (MS-SMB2 3.1.4.1). node:crypto has no CMAC, so it is
 * built here from single AES blocks (aes-128-ecb, one block at a time, no padding).
 */
import { createCipheriv } from "node:crypto";

const BLOCK = 16;
/** The constant R_b of RFC 4493 2.3 for a 128-bit block. */
const RB = 0x87;

function aesBlock(key: Buffer, block: Buffer): Buffer {
  const c = createCipheriv(`aes-${key.length * 8}-ecb`, key, null);
  c.setAutoPadding(false);
  return Buffer.concat([c.update(block), c.final()]);
}

/** Doubling in GF(2^128): shift left one bit, and xor R_b when a bit falls off (RFC 4493 2.3). */
function double(block: Buffer): Buffer {
  const out = Buffer.alloc(BLOCK);
  for (let i = 0; i < BLOCK; i++) {
    const next = i + 1 < BLOCK ? (block[i + 1] ?? 0) : 0;
    out[i] = (((block[i] ?? 0) << 1) | (next >>> 7)) & 0xff;
  }
  if (((block[0] ?? 0) & 0x80) !== 0) out[BLOCK - 1] = (out[BLOCK - 1] ?? 0) ^ RB;
  return out;
}

function xorInto(target: Buffer, source: Buffer, sourceOffset = 0): void {
  for (let i = 0; i < BLOCK; i++) target[i] = (target[i] ?? 0) ^ (source[sourceOffset + i] ?? 0);
}

/**
 * The 16-byte AES-CMAC of `data` under `key` (16 bytes for SMB; 24 and 32 work too).
 *
 * @example
 * const signature = aesCmac(signingKey, message); // MS-SMB2 3.1.4.1
 */
export function aesCmac(key: Buffer, data: Buffer): Buffer {
  // Subkeys K1 and K2 (RFC 4493 2.3).
  const l = aesBlock(key, Buffer.alloc(BLOCK));
  const k1 = double(l);
  const k2 = double(k1);

  const blocks = Math.max(1, Math.ceil(data.length / BLOCK));
  const lastComplete = data.length > 0 && data.length % BLOCK === 0;
  const last = Buffer.alloc(BLOCK);
  const lastStart = (blocks - 1) * BLOCK;
  data.copy(last, 0, lastStart);
  if (lastComplete) {
    xorInto(last, k1);
  } else {
    last[data.length - lastStart] = 0x80; // 10^i padding (RFC 4493 2.4 step 4)
    xorInto(last, k2);
  }

  // CBC-MAC over the whole blocks, then the prepared last one: one CBC pass with a zero IV.
  const c = createCipheriv(`aes-${key.length * 8}-cbc`, key, Buffer.alloc(BLOCK));
  c.setAutoPadding(false);
  // Only the last ciphertext block is the MAC; the earlier ones are chaining state.
  if (lastStart > 0) c.update(data.subarray(0, lastStart));
  const tail = c.update(last);
  return Buffer.from(tail.subarray(tail.length - BLOCK));
}
