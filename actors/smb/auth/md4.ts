/**
 * MD4 (RFC 1320), the hash under the NT one-way function of NTLM (MS-NLMP 3.3.1, NTOWFv1, and so
 * NTOWFv2). Node's OpenSSL 3 keeps MD4 in its legacy provider, which is not loaded by default, so
 * `createHash("md4")` cannot be relied on: this is the algorithm in plain TypeScript. It hashes
 * passwords of a few dozen bytes, so it favours clarity over speed.
 */

// RFC 1320 3.3: the initial state A, B, C, D.
const INIT = [0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476] as const;

// RFC 1320 3.4: the order in which each round reads the sixteen words, and its shifts.
const ROUND2_ORDER = [0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15] as const;
const ROUND3_ORDER = [0, 8, 4, 12, 2, 10, 6, 14, 1, 9, 5, 13, 3, 11, 7, 15] as const;
const SHIFTS = [
  [3, 7, 11, 19],
  [3, 5, 9, 13],
  [3, 9, 11, 15],
] as const;

const rotl = (x: number, s: number): number => ((x << s) | (x >>> (32 - s))) >>> 0;

/** RFC 1320 3.1 and 3.2: the message, a 0x80 byte, zeros to 56 mod 64, then its bit length (LE). */
function pad(data: Uint8Array): Buffer {
  const total = (((data.length + 8) >> 6) + 1) << 6;
  const out = Buffer.alloc(total);
  out.set(data, 0);
  out[data.length] = 0x80;
  out.writeBigUInt64LE(BigInt(data.length) * 8n, total - 8);
  return out;
}

/**
 * The 16-byte MD4 digest of `data`.
 *
 * @example
 * md4(Buffer.from("Password", "utf16le")); // the NT hash of "Password"
 */
export function md4(data: Uint8Array): Buffer {
  const block = pad(data);
  let a: number = INIT[0];
  let b: number = INIT[1];
  let c: number = INIT[2];
  let d: number = INIT[3];
  const x = new Array<number>(16).fill(0);
  for (let offset = 0; offset < block.length; offset += 64) {
    for (let i = 0; i < 16; i++) x[i] = block.readUInt32LE(offset + i * 4);
    const [aa, bb, cc, dd] = [a, b, c, d];
    // RFC 1320's steps update A, D, C, B in turn ([ABCD k s], [DABC k s], ...): the window
    // (a, b, c, d) turns by one after each step, and is back in place after every four.
    const step = (round: 0 | 1 | 2, i: number, k: number): void => {
      const f = round === 0 ? (b & c) | (~b & d) : round === 1 ? (b & c) | (b & d) | (c & d) : b ^ c ^ d;
      const constant = round === 0 ? 0 : round === 1 ? 0x5a827999 : 0x6ed9eba1;
      const s = SHIFTS[round][i % 4] as number;
      const v = rotl((a + f + (x[k] as number) + constant) >>> 0, s);
      [a, b, c, d] = [d, v, b, c];
    };
    for (let i = 0; i < 16; i++) step(0, i, i);
    for (let i = 0; i < 16; i++) step(1, i, ROUND2_ORDER[i] as number);
    for (let i = 0; i < 16; i++) step(2, i, ROUND3_ORDER[i] as number);
    a = (a + aa) >>> 0;
    b = (b + bb) >>> 0;
    c = (c + cc) >>> 0;
    d = (d + dd) >>> 0;
  }
  const out = Buffer.alloc(16);
  out.writeUInt32LE(a, 0);
  out.writeUInt32LE(b, 4);
  out.writeUInt32LE(c, 8);
  out.writeUInt32LE(d, 12);
  return out;
}
