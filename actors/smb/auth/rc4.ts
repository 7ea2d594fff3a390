/**
 * RC4, the stream cipher of NTLM's key exchange (MS-NLMP 3.1.5.1.2, the encrypted random session
 * key) and of its sealing (3.4.3, and the sealed checksum of 3.4.4.2). Node's OpenSSL 3 keeps RC4 in
 * its legacy provider, not loaded by default, so this is the algorithm in plain TypeScript.
 *
 * NTLM's sealing handle is one keystream for the whole session (MS-NLMP 3.4: "RC4 state is
 * maintained across messages"), so the cipher is stateful: each `update` continues where the last
 * one stopped.
 */

/** One RC4 keystream. */
export interface Rc4 {
  /** `data` XORed with the next `data.length` bytes of the keystream. */
  update(data: Uint8Array): Buffer;
}

/**
 * An RC4 cipher keyed with `key` (1 to 256 bytes).
 *
 * @example
 * const handle = createRc4(sealingKey);
 * const sealed = handle.update(plaintext);
 * const checksum = handle.update(hmac.subarray(0, 8)); // the same handle, further on
 */
export function createRc4(key: Uint8Array): Rc4 {
  if (key.length < 1 || key.length > 256) {
    throw new RangeError(`an RC4 key has 1 to 256 bytes, not ${key.length}`);
  }
  // The key-scheduling algorithm.
  const s = new Uint8Array(256);
  for (let i = 0; i < 256; i++) s[i] = i;
  let j = 0;
  for (let i = 0; i < 256; i++) {
    const si = s[i] as number;
    j = (j + si + (key[i % key.length] as number)) & 0xff;
    s[i] = s[j] as number;
    s[j] = si;
  }
  let x = 0;
  let y = 0;
  return {
    update(data: Uint8Array): Buffer {
      const out = Buffer.alloc(data.length);
      for (let n = 0; n < data.length; n++) {
        x = (x + 1) & 0xff;
        const sx = s[x] as number;
        y = (y + sx) & 0xff;
        const sy = s[y] as number;
        s[x] = sy;
        s[y] = sx;
        out[n] = (data[n] as number) ^ (s[(sx + sy) & 0xff] as number);
      }
      return out;
    },
  };
}
