/**
 * Pre-authentication integrity of SMB 3.1.1 (MS-SMB2 3.2.5.2, 3.2.5.3.1, 3.3.5.4): a SHA-512
 * chain over the NEGOTIATE request and response (the connection's value), continued per session
 * over its SESSION_SETUP requests and responses up to, not including, the final successful
 * response. The session's final value is the context of its 3.1.1 key derivation.
 */
import { createHash } from "node:crypto";

/** SHA-512 is the only hash SMB2_PREAUTH_INTEGRITY_CAPABILITIES defines (HashAlgorithmId 1). */
export const PREAUTH_HASH_SHA512 = 0x0001;
const HASH_SIZE = 64;

/**
 * One running preauth hash: `value = SHA-512(value || message)` for every message given, from 64
 * zero bytes.
 *
 * @example
 * const connection = new PreauthIntegrity();
 * connection.update(negotiateRequest);
 * connection.update(negotiateResponse);
 * const session = connection.fork(); // each session starts from the connection's value
 * session.update(sessionSetupRequest);
 */
export class PreauthIntegrity {
  private hash: Buffer;

  /** Starts from 64 zero bytes, or from `initial` (64 bytes) when given. */
  constructor(initial?: Buffer) {
    if (initial !== undefined && initial.length !== HASH_SIZE) {
      throw new RangeError(`a preauth hash is ${HASH_SIZE} bytes, not ${initial.length}`);
    }
    this.hash = initial === undefined ? Buffer.alloc(HASH_SIZE) : Buffer.from(initial);
  }

  /** Chains one whole SMB2 message (header and body, as sent or received) into the hash. */
  update(message: Buffer): void {
    this.hash = createHash("sha512").update(this.hash).update(message).digest();
  }

  /** The current value (a copy). */
  get value(): Buffer {
    return Buffer.from(this.hash);
  }

  /** An independent copy: the connection's hash is where each session's begins. */
  fork(): PreauthIntegrity {
    return new PreauthIntegrity(this.hash);
  }
}
