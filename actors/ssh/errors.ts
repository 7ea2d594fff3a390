/**
 * Errors of the SSH transport (STYLE.md item 6): one class per failure kind, each with a stable
 * `code` from {@link RemoteErrorCode} and a `retryable` flag; causes are chained through
 * ErrorOptions. Messages name the host and say what to do; they never carry a secret.
 */
import type { RemoteError, RemoteErrorCode } from "../remote.ts";

export abstract class SshError extends Error implements RemoteError {
  abstract readonly code: RemoteErrorCode;
  abstract readonly retryable: boolean;

  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    // new.target is the concrete subclass, so stacks and logs name the failure kind.
    this.name = new.target.name;
  }
}

/** No SSH server answered: refused, no route, name not resolved, or no answer in time. */
export class SshUnreachableError extends SshError {
  readonly code = "unreachable";
  readonly retryable = true;
}

/** Where the expected host key came from, for messages. */
export type HostKeySource = "pinned in the job" | `known_hosts ${string}`;

/** The host presented a key other than the one expected. Nothing was sent to it. */
export class SshHostKeyMismatchError extends SshError {
  readonly code = "host-key-mismatch";
  readonly retryable = false;
  readonly presented: string;
  readonly expected: readonly string[];
  readonly source: HostKeySource;

  constructor(host: string, presented: string, expected: readonly string[], source: HostKeySource) {
    super(
      `host key of ${host} does not match: it presented ${presented}, expected ${expected.join(" or ")} ` +
        `(${source}); refusing to log in (a changed host key may mean a man in the middle, or a reinstalled ` +
        `host: check it out of band, then update the pin or known_hosts)`,
    );
    this.presented = presented;
    this.expected = expected;
    this.source = source;
  }
}

/** Policy `strict` and the host is not in known_hosts. */
export class SshHostKeyUnknownError extends SshError {
  readonly code = "host-key-unknown";
  readonly retryable = false;
  readonly presented: string;

  constructor(host: string, presented: string, file: string, note = "") {
    super(
      `host key of ${host} is not in ${file} (it presented ${presented}) and the host key policy is ` +
        `strict; add it to known_hosts, pin its fingerprint in the job, or use policy accept-new${note}`,
    );
    this.presented = presented;
  }
}

/** The presented key is listed `@revoked` in known_hosts. */
export class SshHostKeyRevokedError extends SshError {
  readonly code = "host-key-revoked";
  readonly retryable = false;
}

/** Key exchange failed for a reason other than the host key (e.g. no common algorithm). */
export class SshHandshakeError extends SshError {
  readonly code = "handshake-failed";
  readonly retryable = false;
}

/** The server refused every configured authentication method. */
export class SshAuthError extends SshError {
  readonly code = "auth-failed";
  readonly retryable = false;
}

/** A private key that cannot be used: unreadable, malformed, encrypted without a passphrase. */
export class SshPrivateKeyError extends SshError {
  readonly code = "bad-private-key";
  readonly retryable = false;
}

/** known_hosts cannot be read or written (too large, unreadable, not a file). */
export class SshKnownHostsError extends SshError {
  readonly code = "known-hosts-invalid";
  readonly retryable = false;
}

/** sudo refused: wrong or missing sudo password, not in sudoers, no sudo on the host. */
export class SshBecomeError extends SshError {
  readonly code = "become-failed";
  readonly retryable = false;
}

/** An operation did not finish within its deadline (the remote command was stopped). */
export class SshTimeoutError extends SshError {
  readonly code = "timeout";
  readonly retryable = true;
}

/** The connection dropped while an operation was in flight. */
export class SshConnectionLostError extends SshError {
  readonly code = "connection-lost";
  readonly retryable = true;
}

/** The server would not run the command (channel refused) or a helper command failed. */
export class SshCommandError extends SshError {
  readonly code = "command-failed";
  readonly retryable = false;
}

/** A command printed more than the cap on stdout or stderr; it was stopped. */
export class SshOutputTooLargeError extends SshError {
  readonly code = "output-too-large";
  readonly retryable = false;
}

/** Writing a file on the target failed. */
export class SshUploadError extends SshError {
  readonly code = "upload-failed";
  readonly retryable = true;
}

/** The file on the target (or the local content) does not have the expected SHA-256. */
export class SshHashMismatchError extends SshError {
  readonly code = "hash-mismatch";
  readonly retryable = true;
}

/** A path outside the run root, or a run root that is not safe to use. */
export class SshPathRefusedError extends SshError {
  readonly code = "path-refused";
  readonly retryable = false;
}

/** The connection options are wrong (no agent socket, bad fingerprint, bad port...). */
export class SshConfigError extends SshError {
  readonly code = "config-invalid";
  readonly retryable = false;
}
