/**
 * The failure kind of SMB message protection: a signature that does not verify, or an encrypted
 * frame whose AEAD tag does not authenticate (MS-SMB2 3.1.5.1, 3.2.5.1.1.1).
 */
import { errorClass } from "../../../base/errors.ts";

/**
 * An SMB message failed its integrity check: a bad signature, or a TRANSFORM_HEADER frame whose
 * tag does not authenticate its header and ciphertext under the session's key. Never retried: a
 * server that sends one is broken or someone is tampering with the connection.
 */
export class SmbIntegrityError extends errorClass("SMB_INTEGRITY_FAILED") {}
