/**
 * The failures only the SSH transport has (STYLE.md item 6): reaching the server, its host key,
 * logging in. One class per failure kind, its code from base/error-codes.ts; causes are chained
 * through ErrorOptions. Messages name the host and say what to do; they never carry a secret. The
 * failures every transport has (deadline, command, sudo, uploads) are in ../remote-errors.ts.
 */
import { errorClass } from "../../base/errors.ts";

/** No SSH server answered: refused, no route, name not resolved, or no answer in time. */
export class SshUnreachableError extends errorClass("UNREACHABLE") {}

/** Where the expected host key came from, for messages. */
export type HostKeySource = "pinned in the job" | `known_hosts ${string}`;

/** The host presented a key other than the one expected. Nothing was sent to it. */
export class SshHostKeyMismatchError extends errorClass("HOST_KEY_MISMATCH") {
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
export class SshHostKeyUnknownError extends errorClass("HOST_KEY_UNKNOWN") {
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
export class SshHostKeyRevokedError extends errorClass("HOST_KEY_REVOKED") {}

/** Key exchange failed for a reason other than the host key (e.g. no common algorithm). */
export class SshHandshakeError extends errorClass("HANDSHAKE_FAILED") {}

/** The server refused every configured authentication method. */
export class SshAuthError extends errorClass("AUTH_FAILED") {}

/** A private key that cannot be used: unreadable, malformed, encrypted without a passphrase. */
export class SshPrivateKeyError extends errorClass("BAD_PRIVATE_KEY") {}

/** known_hosts cannot be read or written (too large, unreadable, not a file). */
export class SshKnownHostsError extends errorClass("KNOWN_HOSTS_INVALID") {}

/** The connection dropped while an operation was in flight. */
export class SshConnectionLostError extends errorClass("CONNECTION_LOST") {}

/** The connection options are wrong (no agent socket, bad fingerprint, bad port...). */
export class SshConfigError extends errorClass("CONFIG_INVALID") {}
