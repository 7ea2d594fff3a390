/**
 * SMB 3 encryption (MS-SMB2 3.1.4.3, 3.2.5.1.1.1): the SMB2 TRANSFORM_HEADER (2.2.41) and the
 * AES-CCM / AES-GCM sealing of a whole SMB2 message (or compound) behind it.
 *
 * The header is 52 bytes: ProtocolId 0xFD 'S' 'M' 'B', Signature (the AEAD tag, 16), Nonce (16,
 * of which CCM uses the first 11 and GCM the first 12), OriginalMessageSize, Reserved,
 * Flags/EncryptionAlgorithm (always 0x0001) and SessionId. The additional authenticated data is the
 * header from Nonce on (32 bytes), so the tag covers the session id and the size too.
 */
import {
  type CipherCCM,
  type CipherCCMTypes,
  type CipherGCM,
  type CipherGCMTypes,
  createCipheriv,
  createDecipheriv,
  type DecipherCCM,
  type DecipherGCM,
  randomBytes,
} from "node:crypto";
import { ByteReader, ByteWriter, check, decoding } from "../../wire/bytes.ts";
import { SmbIntegrityError } from "./errors.ts";
import { Cipher, cipherKeyBits } from "./keys.ts";
import { type NonceSource, nonceLength } from "./nonce.ts";

/** The header's size; the ciphertext follows. */
export const TRANSFORM_HEADER_SIZE = 52;
/** Largest message we accept encrypted: a 16 MiB read or write plus room for headers. */
export const MAX_ENCRYPTED_MESSAGE = 16 * 1024 * 1024 + 64 * 1024;
/** Flags/EncryptionAlgorithm: "encrypted with the negotiated cipher" (3.0.x: AES-128-CCM). */
export const TRANSFORM_FLAG_ENCRYPTED = 0x0001;

const PROTOCOL_ID = Buffer.from([0xfd, 0x53, 0x4d, 0x42]);
const NONCE_OFFSET = 20;
const TAG_SIZE = 16;

/** One TRANSFORM_HEADER. */
export interface TransformHeader {
  /** The AEAD tag (16 bytes). */
  readonly signature: Buffer;
  /** The whole 16-byte Nonce field (the cipher's nonce, then bytes that are only authenticated). */
  readonly nonce: Buffer;
  readonly originalMessageSize: number;
  /** Flags/EncryptionAlgorithm; 0x0001 on every encrypted message. */
  readonly flags: number;
  readonly sessionId: bigint;
}

/** Encodes the 52-byte header. */
export function encodeTransformHeader(h: TransformHeader): Buffer {
  check(h.signature.length === TAG_SIZE, `SMB2 transform header: a signature of ${h.signature.length} bytes`);
  check(h.nonce.length === 16, `SMB2 transform header: a nonce field of ${h.nonce.length} bytes`);
  return new ByteWriter(TRANSFORM_HEADER_SIZE)
    .bytes(PROTOCOL_ID)
    .bytes(h.signature)
    .bytes(h.nonce)
    .u32le(h.originalMessageSize)
    .u16le(0)
    .u16le(h.flags)
    .u64le(h.sessionId)
    .toBuffer();
}

/**
 * Decodes the header at the start of `frame` (the ciphertext follows at
 * {@link TRANSFORM_HEADER_SIZE}). Checks OriginalMessageSize against {@link MAX_ENCRYPTED_MESSAGE}.
 */
export function decodeTransformHeader(frame: Buffer): TransformHeader {
  return decoding("SMB2 transform header", () => {
    const r = new ByteReader(frame, "SMB2 transform header");
    r.need(TRANSFORM_HEADER_SIZE, "header");
    check(r.bytes(4).equals(PROTOCOL_ID), "SMB2 transform header: not a transform header (protocol id)");
    const signature = Buffer.from(r.bytes(TAG_SIZE, "signature"));
    const nonce = Buffer.from(r.bytes(16, "nonce"));
    const originalMessageSize = r.u32le();
    check(
      originalMessageSize <= MAX_ENCRYPTED_MESSAGE,
      `SMB2 transform header: OriginalMessageSize ${originalMessageSize} is over its cap of ${MAX_ENCRYPTED_MESSAGE}`,
    );
    r.skip(2, "reserved");
    const flags = r.u16le();
    const sessionId = r.u64le();
    return { signature, nonce, originalMessageSize, flags, sessionId };
  });
}

/** The node:crypto name of a cipher, after checking the key's length against it. */
function algorithmOf(cipher: number, key: Buffer): { ccm: CipherCCMTypes } | { gcm: CipherGCMTypes } {
  const bits = cipherKeyBits(cipher);
  if (key.length * 8 !== bits)
    throw new RangeError(`cipher ${cipher} needs a ${bits}-bit key, not ${key.length * 8}`);
  switch (cipher) {
    case Cipher.AES128CCM:
      return { ccm: "aes-128-ccm" };
    case Cipher.AES128GCM:
      return { gcm: "aes-128-gcm" };
    case Cipher.AES256CCM:
      return { ccm: "aes-256-ccm" };
    case Cipher.AES256GCM:
      return { gcm: "aes-256-gcm" };
    default:
      throw new RangeError(`unknown SMB2 cipher ${cipher}`);
  }
}

function sealer(cipher: number, key: Buffer, iv: Buffer): CipherCCM | CipherGCM {
  const algorithm = algorithmOf(cipher, key);
  const options = { authTagLength: TAG_SIZE };
  return "ccm" in algorithm
    ? createCipheriv(algorithm.ccm, key, iv, options)
    : createCipheriv(algorithm.gcm, key, iv, options);
}

function opener(cipher: number, key: Buffer, iv: Buffer): DecipherCCM | DecipherGCM {
  const algorithm = algorithmOf(cipher, key);
  const options = { authTagLength: TAG_SIZE };
  return "ccm" in algorithm
    ? createDecipheriv(algorithm.ccm, key, iv, options)
    : createDecipheriv(algorithm.gcm, key, iv, options);
}

/** What {@link encryptMessage} needs. */
export interface EncryptInput {
  /** The connection's cipher ({@link Cipher}; 3.0 and 3.0.2: AES128CCM). */
  readonly cipher: number;
  /** Session.EncryptionKey (client to server). */
  readonly key: Buffer;
  readonly sessionId: bigint;
  /** The SMB2 message, or a whole compound, in clear. */
  readonly message: Buffer;
  /**
   * The nonce: the cipher's (11 bytes for CCM, 12 for GCM, zero-padded into the field), or the
   * whole 16-byte field (test vectors). Normally left out, with `nonces` given.
   */
  readonly nonce?: Buffer;
  /**
   * The session's {@link NonceSource}, used when `nonce` is not given. Without either, a random
   * nonce is drawn, which is safe only while a session sends far fewer than 2^32 messages.
   */
  readonly nonces?: NonceSource;
}

function nonceField(cipher: number, given: Buffer | undefined, nonces: NonceSource | undefined): Buffer {
  const length = nonceLength(cipher);
  const field = Buffer.alloc(16);
  if (nonces !== undefined && nonces.cipher !== cipher) {
    throw new RangeError(`a nonce source for cipher ${nonces.cipher} used with cipher ${cipher}`);
  }
  const nonce = given ?? nonces?.next();
  if (nonce === undefined) {
    randomBytes(length).copy(field);
    return field;
  }
  if (nonce.length !== length && nonce.length !== 16) {
    throw new RangeError(
      `cipher ${cipher} takes a ${length}-byte nonce (or the 16-byte field), not ${nonce.length}`,
    );
  }
  nonce.copy(field);
  return field;
}

/**
 * Encrypts `message` (MS-SMB2 3.1.4.3): returns the TRANSFORM_HEADER followed by the ciphertext,
 * ready to frame and send.
 *
 * @example
 * const nonces = new NonceSource(cipher); // once per session
 * const frame = encryptMessage({ cipher, key: keys.encryptionKey, sessionId, message, nonces });
 */
export function encryptMessage(input: EncryptInput): Buffer {
  return Buffer.concat(encryptMessageParts(input));
}

/**
 * {@link encryptMessage} as its two parts, TRANSFORM_HEADER and ciphertext, for a sender that
 * writes them one after the other rather than join a MiB-sized message into a new buffer.
 */
export function encryptMessageParts(input: EncryptInput): [header: Buffer, ciphertext: Buffer] {
  const field = nonceField(input.cipher, input.nonce, input.nonces);
  check(
    input.message.length <= MAX_ENCRYPTED_MESSAGE,
    `SMB2 encryption: a message of ${input.message.length} bytes is over the cap of ${MAX_ENCRYPTED_MESSAGE}`,
  );
  const header = encodeTransformHeader({
    signature: Buffer.alloc(TAG_SIZE),
    nonce: field,
    originalMessageSize: input.message.length,
    flags: TRANSFORM_FLAG_ENCRYPTED,
    sessionId: input.sessionId,
  });
  const iv = field.subarray(0, nonceLength(input.cipher));
  const aad = header.subarray(NONCE_OFFSET);
  const cipher = sealer(input.cipher, input.key, iv);
  cipher.setAAD(aad, { plaintextLength: input.message.length });
  const body = cipher.update(input.message);
  // CCM and GCM give everything from update(); final() must still run for the tag.
  const rest = cipher.final();
  cipher.getAuthTag().copy(header, 4);
  return [header, rest.length === 0 ? body : Buffer.concat([body, rest])];
}

/** What {@link decryptMessage} needs. */
export interface DecryptInput {
  readonly cipher: number;
  /** Session.DecryptionKey (server to client) of the session the header names. */
  readonly key: Buffer;
  /** TRANSFORM_HEADER and ciphertext, as received. */
  readonly frame: Buffer;
}

/**
 * Decrypts one frame (MS-SMB2 3.2.5.1.1.1). Throws MalformedPacketError for a frame that
 * does not decode, and {@link SmbIntegrityError} when the tag does not authenticate the header
 * and ciphertext under `key`. The header's fields are checked only once authenticated, so
 * tampering with them is reported as what it is, an integrity failure.
 */
export function decryptMessage(input: DecryptInput): { sessionId: bigint; message: Buffer } {
  const header = decodeTransformHeader(input.frame);
  const ciphertext = input.frame.subarray(TRANSFORM_HEADER_SIZE);
  check(
    ciphertext.length <= MAX_ENCRYPTED_MESSAGE,
    `SMB2 transform: ${ciphertext.length} encrypted bytes, over the cap of ${MAX_ENCRYPTED_MESSAGE}`,
  );
  const iv = header.nonce.subarray(0, nonceLength(input.cipher));
  const aad = input.frame.subarray(NONCE_OFFSET, TRANSFORM_HEADER_SIZE);
  const decipher = opener(input.cipher, input.key, iv);
  decipher.setAuthTag(header.signature);
  let message: Buffer;
  try {
    decipher.setAAD(aad, { plaintextLength: ciphertext.length });
    const head = decipher.update(ciphertext);
    message = Buffer.concat([head, decipher.final()]);
  } catch (err) {
    throw new SmbIntegrityError(
      `SMB2 transform: the encrypted message of session 0x${header.sessionId.toString(16)} does not authenticate`,
      { cause: err },
    );
  }
  check(
    header.originalMessageSize === message.length,
    `SMB2 transform: OriginalMessageSize ${header.originalMessageSize} but ${message.length} bytes encrypted`,
  );
  check(
    header.flags === TRANSFORM_FLAG_ENCRYPTED,
    `SMB2 transform: flags 0x${header.flags.toString(16)}, not encrypted`,
  );
  return { sessionId: header.sessionId, message };
}
