/**
 * Nonces for SMB 3 encryption (MS-SMB2 3.1.4.3): a nonce "not used for any other encrypted
 * message within the session". Reusing a GCM nonce under one key gives away the authentication
 * key, so nonces come from a counter, never from chance alone.
 */
import { randomBytes } from "node:crypto";
import { Cipher } from "./keys.ts";

/** The AEAD nonce length of a cipher: 11 bytes for CCM, 12 for GCM (MS-SMB2 2.2.41). */
export function nonceLength(cipher: number): 11 | 12 {
  return cipher === Cipher.AES128GCM || cipher === Cipher.AES256GCM ? 12 : 11;
}

const COUNTER_LIMIT = 1n << 64n;

/**
 * The nonces of one session: a 64-bit counter (little-endian) after a random prefix (3 bytes for
 * CCM, 4 for GCM). The counter alone never repeats within the session; the prefix keeps two
 * channels of one session (which share its keys) apart.
 *
 * @example
 * const nonces = new NonceSource(Cipher.AES128GCM);
 * encryptMessage({ cipher, key, sessionId, message, nonces });
 */
export class NonceSource {
  readonly cipher: number;
  private readonly prefix: Buffer;
  private counter = 0n;

  constructor(cipher: number, random: (size: number) => Buffer = randomBytes) {
    this.cipher = cipher;
    this.prefix = Buffer.from(random(nonceLength(cipher) - 8));
  }

  /** The next nonce, of the cipher's length. */
  next(): Buffer {
    if (this.counter >= COUNTER_LIMIT)
      throw new RangeError("SMB nonce counter exhausted; start a new session");
    const nonce = Buffer.alloc(nonceLength(this.cipher));
    this.prefix.copy(nonce, 0);
    nonce.writeBigUInt64LE(this.counter, this.prefix.length);
    this.counter++;
    return nonce;
  }
}
