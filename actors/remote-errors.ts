/**
 * The failures every transport of a target has (SSH, local processes), one class each with its
 * code from base/error-codes.ts. Messages name the host and say what to do; they never carry a
 * secret. Failures only SSH has (host keys, login) are in ssh/errors.ts.
 */
import { errorClass } from "../base/errors.ts";

/** An operation did not finish within its deadline; the remote command was stopped. */
export class RemoteTimeoutError extends errorClass("TIMEOUT") {}

/** The command could not be run: a channel refused, no shell, a helper command that failed. */
export class RemoteCommandError extends errorClass("COMMAND_FAILED") {}

/** sudo refused: wrong or missing sudo password, not in sudoers, no sudo on the host. */
export class RemoteBecomeError extends errorClass("BECOME_FAILED") {}

/** A command printed more than the cap on stdout or stderr; it was stopped. */
export class RemoteOutputTooLargeError extends errorClass("OUTPUT_TOO_LARGE") {}

/** Writing a file on the target (or reading its source here) failed. */
export class RemoteUploadError extends errorClass("UPLOAD_FAILED") {}

/** The file on the target, or the content sent, does not have the expected SHA-256. */
export class RemoteHashMismatchError extends errorClass("HASH_MISMATCH") {}

/** A path outside the run root, or a run root that is not safe to use. */
export class RemotePathRefusedError extends errorClass("PATH_REFUSED") {}
