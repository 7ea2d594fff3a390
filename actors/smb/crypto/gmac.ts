/**
 * AES-GMAC (RFC 4543; NIST SP 800-38D 6.5 with an empty plaintext), the signing algorithm SMB 3.1.1
 * can negotiate in SMB2_SIGNING_CAPABILITIES (MS-SMB2 3.1.4.1).
 */
import { createCipheriv } from "node:crypto";

/**
 * The 16-byte GMAC of `data` under `key` (16 or 32 bytes) and a 12-byte `nonce`: AES-GCM over no
 * plaintext with `data` as the additional authenticated data; the tag is the MAC.
 */
export function aesGmac(key: Buffer, nonce: Buffer, data: Buffer): Buffer {
  if (nonce.length !== 12) throw new RangeError(`AES-GMAC takes a 12-byte nonce, not ${nonce.length}`);
  const gcm = createCipheriv(key.length === 32 ? "aes-256-gcm" : "aes-128-gcm", key, nonce, {
    authTagLength: 16,
  });
  gcm.setAAD(data);
  gcm.final();
  return gcm.getAuthTag();
}
