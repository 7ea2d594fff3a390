/**
 * Errors of the local transport (`host: local`): the same stable codes as the SSH transport
 * (actors/remote.ts `RemoteErrorCode`), so the target machine retries and reports them alike.
 * Paths outside the run root are refused with the SSH transport's own `path-refused` error, as the
 * checks are shared (actors/ssh/files.ts).
 */
import type { RemoteError, RemoteErrorCode } from "../remote.ts";

export abstract class LocalError extends Error implements RemoteError {
  abstract readonly code: RemoteErrorCode;
  abstract readonly retryable: boolean;

  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** A local command or file operation did not finish within its deadline; it was stopped. */
export class LocalTimeoutError extends LocalError {
  readonly code = "timeout";
  readonly retryable = true;
}

/** A command could not be started (no `/bin/sh`, too many processes...). */
export class LocalCommandError extends LocalError {
  readonly code = "command-failed";
  readonly retryable = false;
}

/** `become` was asked as a user that is not root and `sudo -n` refused (or is missing). */
export class LocalBecomeError extends LocalError {
  readonly code = "become-failed";
  readonly retryable = false;
}

/** A command printed more than the cap on stdout or stderr; it was stopped. */
export class LocalOutputTooLargeError extends LocalError {
  readonly code = "output-too-large";
  readonly retryable = false;
}

/** Reading the source or writing the file failed. */
export class LocalUploadError extends LocalError {
  readonly code = "upload-failed";
  readonly retryable = true;
}

/** The content does not have the SHA-256 asked for, or what was written differs. */
export class LocalHashMismatchError extends LocalError {
  readonly code = "hash-mismatch";
  readonly retryable = true;
}
