/**
 * Session keys of SMB 2 and 3 (MS-SMB2 3.2.5.3.1, 3.1.4.2): from the authentication's session key
 * to the signing, encryption, decryption and application keys of one session.
 */
import { smb3Kdf } from "./kdf.ts";

/** Dialect revisions (MS-SMB2 2.2.3). */
export const Dialect = {
  SMB202: 0x0202,
  SMB210: 0x0210,
  SMB300: 0x0300,
  SMB302: 0x0302,
  SMB311: 0x0311,
} as const;

/** Cipher ids of SMB2_ENCRYPTION_CAPABILITIES (MS-SMB2 2.2.3.1.2). */
export const Cipher = { AES128CCM: 1, AES128GCM: 2, AES256CCM: 3, AES256GCM: 4 } as const;

/** Signing algorithm ids of SMB2_SIGNING_CAPABILITIES (MS-SMB2 2.2.3.1.7). */
export const SigningAlgorithm = { HMAC_SHA256: 0, AES_CMAC: 1, AES_GMAC: 2 } as const;

/** The keys of one session. On 2.x only signingKey and applicationKey mean anything. */
export interface SessionKeys {
  readonly signingKey: Buffer;
  /** Client to server (the server's DecryptionKey); empty on 2.x, which has no encryption. */
  readonly encryptionKey: Buffer;
  /** Server to client (the server's EncryptionKey); empty on 2.x. */
  readonly decryptionKey: Buffer;
  readonly applicationKey: Buffer;
}

/** What {@link deriveSessionKeys} needs. */
export interface SessionKeyInput {
  /** The negotiated dialect ({@link Dialect}). */
  readonly dialect: number;
  /** The full cryptographic key of the authentication (NTLM: 16 bytes; Kerberos: up to 32). */
  readonly sessionKey: Buffer;
  /** The session's final preauth integrity hash (64 bytes); required on 3.1.1. */
  readonly preauthHash?: Buffer;
  /** The negotiated cipher ({@link Cipher}); 3.0 and 3.0.2 always use AES-128-CCM. */
  readonly cipher?: number;
}

/** True for the dialects of the 3.x family, which derive their keys with the KDF. */
export function isSmb3(dialect: number): boolean {
  return dialect >= Dialect.SMB300;
}

/** The key length of a cipher, in bits. */
export function cipherKeyBits(cipher: number): 128 | 256 {
  return cipher === Cipher.AES256CCM || cipher === Cipher.AES256GCM ? 256 : 128;
}

/**
 * Session.SessionKey: the first 16 bytes of the cryptographic key, right-padded with zeros when it
 * is shorter (MS-SMB2 3.2.1.3).
 */
function first16(key: Buffer): Buffer {
  const out = Buffer.alloc(16);
  key.copy(out, 0, 0, Math.min(16, key.length));
  return out;
}

/**
 * Derives a session's keys (MS-SMB2 3.2.5.3.1).
 *
 * - 2.0.2 and 2.1 sign with the session key itself (HMAC-SHA256) and have no encryption.
 * - 3.0 and 3.0.2 use fixed labels and contexts ("SMB2AESCMAC\0"/"SmbSign\0", "SMB2AESCCM\0" with
 *   "ServerIn \0" and "ServerOut\0", "SMB2APP\0"/"SmbRpc\0").
 * - 3.1.1 uses the session's preauth integrity hash as the context of every key.
 * - With AES-256-CCM or AES-256-GCM the two cipher keys are 256 bits and derived from the full
 *   cryptographic key (Session.FullSessionKey), not its first 16 bytes.
 *
 * @example
 * const keys = deriveSessionKeys({ dialect: Dialect.SMB311, sessionKey, preauthHash, cipher });
 */
export function deriveSessionKeys(input: SessionKeyInput): SessionKeys {
  const sessionKey = first16(input.sessionKey);
  if (!isSmb3(input.dialect)) {
    return {
      signingKey: sessionKey,
      encryptionKey: Buffer.alloc(0),
      decryptionKey: Buffer.alloc(0),
      applicationKey: Buffer.from(sessionKey),
    };
  }
  const is311 = input.dialect === Dialect.SMB311;
  // 3.0.x has no cipher negotiation: AES-128-CCM is implied (MS-SMB2 3.1.4.3).
  const bits = is311 ? cipherKeyBits(input.cipher ?? Cipher.AES128CCM) : 128;
  const cipherKey = bits === 256 ? fullKey(input.sessionKey) : sessionKey;
  if (is311) {
    const hash = input.preauthHash;
    if (hash === undefined || hash.length !== 64) {
      throw new RangeError("SMB 3.1.1 keys need the session's 64-byte preauth integrity hash");
    }
    return {
      signingKey: smb3Kdf(sessionKey, "SMBSigningKey\0", hash, 128),
      encryptionKey: smb3Kdf(cipherKey, "SMBC2SCipherKey\0", hash, bits),
      decryptionKey: smb3Kdf(cipherKey, "SMBS2CCipherKey\0", hash, bits),
      applicationKey: smb3Kdf(sessionKey, "SMBAppKey\0", hash, 128),
    };
  }
  return {
    signingKey: smb3Kdf(sessionKey, "SMB2AESCMAC\0", Buffer.from("SmbSign\0", "latin1"), 128),
    encryptionKey: smb3Kdf(sessionKey, "SMB2AESCCM\0", Buffer.from("ServerIn \0", "latin1"), 128),
    decryptionKey: smb3Kdf(sessionKey, "SMB2AESCCM\0", Buffer.from("ServerOut\0", "latin1"), 128),
    applicationKey: smb3Kdf(sessionKey, "SMB2APP\0", Buffer.from("SmbRpc\0", "latin1"), 128),
  };
}

/** Session.FullSessionKey, padded to 16 bytes like the short key when shorter. */
function fullKey(key: Buffer): Buffer {
  return key.length >= 16 ? Buffer.from(key) : first16(key);
}
