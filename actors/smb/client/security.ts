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
  /** Signs a message in place (its SIGNED flag already set). */
  readonly sign?: (message: Buffer) => void;
  /** True when the message's signature is right. */
  readonly verify?: (message: Buffer) => boolean;
  /** Every request is signed (signing required by either end); otherwise only those that ask. */
  readonly signAll: boolean;
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

/**
 * Why a message is not an answer to the request of its MessageId, or undefined: every answer has
 * SMB2_FLAGS_SERVER_TO_REDIR and the request's command (MS-SMB2 2.2.1, 3.2.5.1). One SigningKey
 * signs both directions, so without this a man in the middle could send the client's own signed
 * request back to it, and a request whose answer's body is not read (CLOSE, SET_INFO) would pass
 * for a success that never happened.
 */
export function misdirectedAnswer(
  host: string,
  header: Smb2Header,
  requestCommand: number,
): SmbIntegrityError | undefined {
  if ((header.flags & HeaderFlag.SERVER_TO_REDIR) === 0)
    return integrityError(`${host}: an answer without SERVER_TO_REDIR (a request sent back?)`);
  if (header.command !== requestCommand)
    return integrityError(
      `${host}: an answer of command 0x${header.command.toString(16)} to a request of 0x${requestCommand.toString(16)}`,
    );
  return undefined;
}

/**
 * Why an answer fails its protection, or undefined when it passes (MS-SMB2 3.2.5.1.3): the answer
 * to an encrypted request must come encrypted; the answer to a signed request must be signed
 * (unless encrypted, or an interim STATUS_PENDING, which the server cannot sign yet); a signed
 * answer must verify.
 */
export function protectionProblem(
  host: string,
  answer: {
    readonly header: Smb2Header;
    readonly message: Buffer;
    readonly sealed: boolean;
    readonly interim: boolean;
    readonly encrypted: boolean;
    readonly expectSigned: boolean;
  },
  verify: ((message: Buffer) => boolean) | undefined,
): SmbIntegrityError | undefined {
  if (answer.encrypted && !answer.sealed)
    return integrityError(`${host}: an answer to an encrypted request came in clear`);
  if (answer.sealed || answer.interim) return undefined;
  const signed = (answer.header.flags & HeaderFlag.SIGNED) !== 0;
  if (!signed && answer.expectSigned)
    return integrityError(`${host}: an unsigned answer on a signed session`);
  // A signed answer is checked even when it need not be signed, once the key exists.
  if (!signed || (!answer.expectSigned && verify === undefined)) return undefined;
  if (verify === undefined || !verify(answer.message))
    return integrityError(`${host}: an answer with a bad signature`);
  return undefined;
}
