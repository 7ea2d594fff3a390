/**
 * NTLMv2's computations (MS-NLMP 3.3.2) and its session security (3.4.4, 3.4.5): the response keys,
 * the NTLMv2 and LMv2 responses, the session keys, the MIC, and the signing and sealing keys with
 * the MAC that SPNEGO's mechListMIC is.
 *
 * Only what a client with extended session security needs: NTLMv1 and the LM key are not here.
 * MD5 and HMAC-MD5 come from node:crypto (OpenSSL's default provider has them); MD4 and RC4 are
 * this folder's own.
 */
import { createHash, createHmac } from "node:crypto";
import { md4 } from "./md4.ts";
import { createRc4, type Rc4 } from "./rc4.ts";

const hmacMd5 = (key: Uint8Array, ...parts: Uint8Array[]): Buffer => {
  const h = createHmac("md5", key);
  for (const part of parts) h.update(part);
  return h.digest();
};

const md5 = (...parts: Uint8Array[]): Buffer => {
  const h = createHash("md5");
  for (const part of parts) h.update(part);
  return h.digest();
};

/**
 * Upper case one UTF-16 unit at a time, as Windows' RtlUpcaseUnicodeString does: a letter whose
 * upper case is longer (ß) stays as it is, so that the hashed name has the length Windows hashes.
 */
export function upcaseUser(user: string): string {
  let out = "";
  for (const unit of user.split("")) {
    const upper = unit.toUpperCase();
    out += upper.length === 1 ? upper : unit;
  }
  return out;
}

/**
 * NTOWFv2 (MS-NLMP 3.3.2): HMAC-MD5 keyed with MD4(UNICODE(password)) over
 * UNICODE(Uppercase(user) + domain). LMOWFv2 is the same function.
 */
export function ntowfv2(password: string, user: string, domain: string): Buffer {
  const ntHash = md4(Buffer.from(password, "utf16le"));
  try {
    return hmacMd5(ntHash, Buffer.from(upcaseUser(user) + domain, "utf16le"));
  } finally {
    ntHash.fill(0);
  }
}

/** LMOWFv2 (MS-NLMP 3.3.2), which NTLMv2 defines as NTOWFv2. */
export const lmowfv2 = ntowfv2;

/**
 * The client's blob, `temp` of MS-NLMP 3.3.2 (the NTLMv2_CLIENT_CHALLENGE of 2.2.2.7 and 4 zero
 * bytes): RespType and HiRespType 1, the time, the client challenge, and the
 * target info as sent back (`targetInfo`, encoded with its MsvAvEOL).
 */
export function clientBlob(time: bigint, clientChallenge: Buffer, targetInfo: Buffer): Buffer {
  const head = Buffer.alloc(28);
  head.writeUInt8(1, 0);
  head.writeUInt8(1, 1);
  head.writeBigUInt64LE(time, 8);
  clientChallenge.copy(head, 16, 0, 8);
  return Buffer.concat([head, targetInfo, Buffer.alloc(4)]);
}

/** What NTLMv2 computes from the response key and the server challenge (MS-NLMP 3.3.2). */
export interface Ntlmv2Response {
  readonly ntProofStr: Buffer;
  /** NTProofStr followed by temp: the NtChallengeResponse sent. */
  readonly ntChallengeResponse: Buffer;
  /** HMAC-MD5(ResponseKeyNT, NTProofStr); NTLMv2's KeyExchangeKey too (3.4.5.1). */
  readonly sessionBaseKey: Buffer;
}

/** NTProofStr, the NtChallengeResponse and the SessionBaseKey (MS-NLMP 3.3.2). */
export function ntlmv2Response(responseKeyNt: Buffer, serverChallenge: Buffer, temp: Buffer): Ntlmv2Response {
  const ntProofStr = hmacMd5(responseKeyNt, serverChallenge, temp);
  return {
    ntProofStr,
    ntChallengeResponse: Buffer.concat([ntProofStr, temp]),
    sessionBaseKey: hmacMd5(responseKeyNt, ntProofStr),
  };
}

/** The LMv2 response (MS-NLMP 3.3.2): HMAC-MD5(ResponseKeyLM, server ‖ client challenge) ‖ client challenge. */
export function lmv2Response(
  responseKeyLm: Buffer,
  serverChallenge: Buffer,
  clientChallenge: Buffer,
): Buffer {
  return Buffer.concat([hmacMd5(responseKeyLm, serverChallenge, clientChallenge), clientChallenge]);
}

/** EncryptedRandomSessionKey (MS-NLMP 3.1.5.1.2, with KEY_EXCH): RC4(KeyExchangeKey, ExportedSessionKey). */
export function encryptSessionKey(keyExchangeKey: Buffer, randomSessionKey: Buffer): Buffer {
  return createRc4(keyExchangeKey).update(randomSessionKey);
}

/**
 * The MIC (MS-NLMP 3.1.5.1.2): HMAC-MD5 keyed with the ExportedSessionKey over the three messages
 * as sent, the AUTHENTICATE_MESSAGE with its MIC field zeroed.
 */
export function computeMic(
  exportedSessionKey: Buffer,
  negotiate: Buffer,
  challenge: Buffer,
  authenticate: Buffer,
): Buffer {
  return hmacMd5(exportedSessionKey, negotiate, challenge, authenticate);
}

/** Which way a key protects: the client's messages or the server's. */
export type Direction = "client-to-server" | "server-to-client";

/** SIGNKEY with extended session security (MS-NLMP 3.4.5.2). */
export function signingKey(exportedSessionKey: Buffer, direction: Direction): Buffer {
  return md5(
    exportedSessionKey,
    Buffer.from(`session key to ${direction} signing key magic constant\0`, "latin1"),
  );
}

/**
 * SEALKEY with extended session security (MS-NLMP 3.4.5.3): the session key cut to 16, 7 or 5
 * bytes by the 128/56-bit flags, then hashed with the direction's constant.
 */
export function sealingKey(
  exportedSessionKey: Buffer,
  direction: Direction,
  strength: 128 | 56 | 40,
): Buffer {
  const length = strength === 128 ? 16 : strength === 56 ? 7 : 5;
  return md5(
    exportedSessionKey.subarray(0, length),
    Buffer.from(`session key to ${direction} sealing key magic constant\0`, "latin1"),
  );
}

/**
 * MAC with extended session security (MS-NLMP 3.4.4.2), the NTLMSSP_MESSAGE_SIGNATURE of 2.2.2.9.2:
 * version 1, the first 8 bytes of HMAC-MD5(SigningKey, SeqNum ‖ message), RC4-encrypted with the
 * sealing handle when KEY_EXCH was negotiated (`sealing` given), then SeqNum.
 */
export function mac(signing: Buffer, sealing: Rc4 | undefined, seqNum: number, message: Uint8Array): Buffer {
  const seq = Buffer.alloc(4);
  seq.writeUInt32LE(seqNum >>> 0, 0);
  const digest = hmacMd5(signing, seq, message).subarray(0, 8);
  const checksum = sealing === undefined ? digest : sealing.update(digest);
  return Buffer.concat([Buffer.from([1, 0, 0, 0]), checksum, seq]);
}
