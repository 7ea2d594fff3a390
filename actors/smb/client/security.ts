/**
 * What the connection needs of a session's keys to protect its messages, as functions, so that
 * the connection knows nothing of the algorithms (actors/smb/crypto) and a test can fake them; and
 * the checks of MS-SMB2 3.2.5.1 that do not depend on the keys.
 */
import { check } from "../../wire/bytes.ts";
import { HEADER_SIZE, HeaderFlag, type Smb2Header } from "../codec/header.ts";
import { SmbIntegrityError } from "../crypto/errors.ts";

/** 0xFD 'S' 'M' 'B': the SMB2 TRANSFORM_HEADER (MS-SMB2 2.2.41) of an encrypted message. */
export const TRANSFORM_PROTOCOL_ID = Buffer.from([0xfd, 0x53, 0x4d, 0x42]);

/** STATUS_PENDING (MS-ERREF 2.3.1). */
const STATUS_PENDING = 0x00000103;

/** A session's protection of its messages, from SESSION_SETUP's success on. */
export interface SessionSecurity {
  readonly sessionId: bigint;
  /** Signs a message in place (its SIGNED flag already set); absent when the session does not sign. */
  readonly sign?: (message: Buffer) => void;
  /** True when the message's signature is right. */
  readonly verify?: (message: Buffer) => boolean;
  /** Encryption (3.0 and later); absent when the session has no encryption keys. */
  readonly seal?: {
    /** The transform frame for a message, whole or in parts sent one after the other. */
    readonly encrypt: (message: Buffer) => Buffer | readonly Buffer[];
    /** The message in a transform frame; throws SMB_INTEGRITY_FAILED when it does not decrypt. */
    readonly decrypt: (frame: Buffer) => Buffer;
  };
  /** The session's flags say ENCRYPT_DATA, or the caller asked: every request goes sealed. */
  readonly encryptAll: boolean;
}

/** The error of an answer that fails its protection. */
export function integrityError(message: string): SmbIntegrityError {
  return new SmbIntegrityError(message);
}

/** An interim answer (MS-SMB2 3.2.5.1.5): the final one comes later, with the same MessageId. */
export function isInterim(header: Smb2Header): boolean {
  return header.status >>> 0 === STATUS_PENDING && (header.flags & HeaderFlag.ASYNC_COMMAND) !== 0;
}

/** The messages of a compound answer (MS-SMB2 3.2.5.1.9), each a view on `frame`. */
export function splitCompound(frame: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let at = 0;
  for (;;) {
    check(frame.length - at >= HEADER_SIZE, `SMB2 compound: ${frame.length - at} bytes, fewer than a header`);
    const next = frame.readUInt32LE(at + 20);
    if (next === 0) {
      out.push(frame.subarray(at));
      return out;
    }
    check(
      next % 8 === 0 && next >= HEADER_SIZE && at + next < frame.length,
      `SMB2 compound: NextCommand ${next} out of place`,
    );
    out.push(frame.subarray(at, at + next));
    at += next;
  }
}
