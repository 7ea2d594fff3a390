/**
 * Signing and verifying SMB2 messages (MS-SMB2 3.1.4.1, 3.1.5.1): HMAC-SHA256 on 2.x, AES-CMAC
 * on 3.0 and 3.0.2, and on 3.1.1 whatever SMB2_SIGNING_CAPABILITIES chose (AES-CMAC without it).
 */
import { createHmac, timingSafeEqual } from "node:crypto";
import { Command, FLAGS_OFFSET, HEADER_SIZE, HeaderFlag, SIGNATURE_OFFSET } from "../codec/header.ts";
import { check } from "../../wire/bytes.ts";
import { aesCmac } from "./cmac.ts";
import { aesGmac } from "./gmac.ts";
import { Dialect, SigningAlgorithm, isSmb3 } from "./keys.ts";

const SIGNATURE_SIZE = 16;
const COMMAND_OFFSET = 12;
const MESSAGE_ID_OFFSET = 24;

/**
 * The signing algorithm of a connection: HMAC-SHA256 on 2.0.2 and 2.1, AES-CMAC on 3.0 and 3.0.2,
 * and on 3.1.1 the one the server chose in SMB2_SIGNING_CAPABILITIES (`negotiated`), else
 * AES-CMAC.
 */
export function signingAlgorithmFor(dialect: number, negotiated?: number): number {
  if (!isSmb3(dialect)) return SigningAlgorithm.HMAC_SHA256;
  if (dialect === Dialect.SMB311 && negotiated !== undefined) return negotiated;
  return SigningAlgorithm.AES_CMAC;
}

/**
 * The AES-GMAC nonce (MS-SMB2 3.1.4.1): MessageId (8 bytes, little-endian), then a 32-bit
 * little-endian word whose bit 0 says the sender is the server and bit 1 that the message is a
 * CANCEL request. Binding the role in stops a request's signature from passing as a response's.
 */
export function gmacNonce(message: Buffer): Buffer {
  const nonce = Buffer.alloc(12);
  message.copy(nonce, 0, MESSAGE_ID_OFFSET, MESSAGE_ID_OFFSET + 8);
  const flags = message.readUInt32LE(FLAGS_OFFSET);
  const fromServer = (flags & HeaderFlag.SERVER_TO_REDIR) !== 0;
  const isCancel = !fromServer && message.readUInt16LE(COMMAND_OFFSET) === Command.CANCEL;
  nonce.writeUInt32LE((fromServer ? 1 : 0) | (isCancel ? 2 : 0), 8);
  return nonce;
}

/** The 16-byte signature of `message` (whose signature field is already zero). */
function compute(algorithm: number, key: Buffer, message: Buffer): Buffer {
  switch (algorithm) {
    case SigningAlgorithm.HMAC_SHA256:
      // MS-SMB2 3.1.4.1: the first 16 bytes of the 32-byte HMAC.
      return createHmac("sha256", key).update(message).digest().subarray(0, SIGNATURE_SIZE);
    case SigningAlgorithm.AES_CMAC:
      return aesCmac(key, message);
    case SigningAlgorithm.AES_GMAC:
      return aesGmac(key, gmacNonce(message), message);
    default:
      throw new RangeError(`unknown SMB2 signing algorithm ${algorithm}`);
  }
}

/**
 * Signs `message` (one SMB2 message: header, body and, in a compound, its padding) in place:
 * sets SMB2_FLAGS_SIGNED, zeroes the signature field, computes the signature over the whole
 * message and writes it at offset 48.
 *
 * @example
 * signMessage(signingAlgorithmFor(dialect, negotiatedSigning), keys.signingKey, request);
 */
export function signMessage(algorithm: number, key: Buffer, message: Buffer): void {
  check(message.length >= HEADER_SIZE, `SMB2 signing: a message of ${message.length} bytes`);
  message.writeUInt32LE((message.readUInt32LE(FLAGS_OFFSET) | HeaderFlag.SIGNED) >>> 0, FLAGS_OFFSET);
  message.fill(0, SIGNATURE_OFFSET, SIGNATURE_OFFSET + SIGNATURE_SIZE);
  compute(algorithm, key, message).copy(message, SIGNATURE_OFFSET);
}

/**
 * True when the signature in `message` is the one `key` gives it (MS-SMB2 3.1.5.1). The input is
 * not modified; the comparison takes the same time wherever the signatures differ.
 */
export function verifySignature(algorithm: number, key: Buffer, message: Buffer): boolean {
  if (message.length < HEADER_SIZE) return false;
  const received = message.subarray(SIGNATURE_OFFSET, SIGNATURE_OFFSET + SIGNATURE_SIZE);
  const copy = Buffer.from(message);
  copy.fill(0, SIGNATURE_OFFSET, SIGNATURE_OFFSET + SIGNATURE_SIZE);
  return timingSafeEqual(compute(algorithm, key, copy), received);
}
