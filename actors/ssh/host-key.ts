/**
 * Host key verification, decided in ssh2's `hostVerifier`: during key exchange, before any
 * authentication, so a host with a wrong key is sent neither a user name nor a credential and
 * none of its files is touched. There is no mode that accepts any key.
 *
 * Two sources of the expected key: a fingerprint pinned in the job (OpenSSH `SHA256:base64`
 * form, several allowed for a rotation), or known_hosts with policy `strict` (an unknown host is
 * refused) or `accept-new` (an unknown host is recorded; a changed key is still refused).
 */
import { createHash } from "node:crypto";
import {
  SshConfigError,
  SshHostKeyMismatchError,
  SshHostKeyRevokedError,
  SshHostKeyUnknownError,
} from "./errors.ts";
import type { SumacError } from "../../base/errors.ts";
import { checkHostKey, fingerprint, keyTypeOf, knownHostsName, knownKeyTypes } from "./known-hosts.ts";
import type { KnownHostsFile } from "./known-hosts-file.ts";

export type HostKeyPolicy =
  | {
      readonly kind: "pinned";
      /** One or more `SHA256:...` fingerprints, as `ssh-keygen -lf` prints them. */
      readonly fingerprints: readonly string[];
    }
  | {
      readonly kind: "known-hosts";
      readonly file: KnownHostsFile;
      readonly policy: "strict" | "accept-new";
      /** Name to look the host up under instead of `host`/`[host]:port` (OpenSSH HostKeyAlias). */
      readonly alias?: string;
    };

/** The verdict on a presented key; `error` says why it was refused. */
export type HostKeyVerdict =
  | { readonly ok: true; readonly fingerprint: string; readonly added: boolean }
  | { readonly ok: false; readonly fingerprint: string; readonly error: SumacError };

/** Decodes `SHA256:base64` (padding optional) to the 32-byte digest, or throws `CONFIG_INVALID`. */
export function parseFingerprint(text: string): Buffer {
  const m = /^SHA256:([A-Za-z0-9+/]{43})=?$/.exec(text.trim());
  const digest = m?.[1] === undefined ? undefined : Buffer.from(m[1], "base64");
  if (digest?.length !== 32) {
    throw new SshConfigError(
      `host key fingerprint ${JSON.stringify(text)} is not in OpenSSH's SHA256:base64 form ` +
        "(as `ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub` prints it)",
    );
  }
  return digest;
}

/** Checks a policy's static parts before connecting, so bad input fails before any I/O. */
export function validatePolicy(policy: HostKeyPolicy): void {
  if (policy.kind === "pinned") {
    if (policy.fingerprints.length === 0) throw new SshConfigError("no host key fingerprint pinned");
    for (const f of policy.fingerprints) parseFingerprint(f);
  } else if (policy.policy !== "strict" && policy.policy !== "accept-new") {
    throw new SshConfigError(`host key policy ${JSON.stringify(policy.policy)} is not strict or accept-new`);
  }
}

/** How a host appears in messages. */
export function hostLabel(host: string, port: number): string {
  return port === 22 ? host : `${host}:${String(port)}`;
}

/**
 * Host key algorithms to prefer for a host: the types known_hosts has for it, so that a host
 * with several keys presents one we can check (as OpenSSH orders them).
 */
export async function preferredHostKeyTypes(
  policy: HostKeyPolicy,
  host: string,
  port: number,
): Promise<string[]> {
  if (policy.kind !== "known-hosts") return [];
  const { entries } = await policy.file.read();
  const types = knownKeyTypes(entries, policy.alias ?? knownHostsName(host, port));
  // An RSA key is offered under the SHA-2 signature algorithms first (ssh-rsa is SHA-1).
  return types.flatMap((t) => (t === "ssh-rsa" ? ["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"] : [t]));
}

/**
 * Decides whether `key` (the blob the host presented) is the host's key under `policy`; `signal`
 * gives up an append waiting for another process's lock on known_hosts.
 */
export async function verifyHostKey(
  policy: HostKeyPolicy,
  host: string,
  port: number,
  key: Buffer,
  signal?: AbortSignal,
): Promise<HostKeyVerdict> {
  const presented = `${fingerprint(key)} (${keyTypeOf(key) ?? "unknown type"})`;
  const label = hostLabel(host, port);
  const print = fingerprint(key);
  if (policy.kind === "pinned") {
    const digest = createHash("sha256").update(key).digest();
    if (policy.fingerprints.some((f) => parseFingerprint(f).equals(digest))) {
      return { ok: true, fingerprint: print, added: false };
    }
    const error = new SshHostKeyMismatchError(label, presented, policy.fingerprints, "pinned in the job");
    return { ok: false, fingerprint: print, error };
  }
  const name = policy.alias ?? knownHostsName(host, port);
  const { entries } = await policy.file.read();
  let status = checkHostKey(entries, name, key);
  if (status.kind === "unknown" && policy.policy === "accept-new") {
    const outcome = await policy.file.append(name, key, { signal });
    if (outcome.kind !== "conflict") return { ok: true, fingerprint: print, added: outcome.kind === "added" };
    status = outcome.status;
  }
  switch (status.kind) {
    case "known":
      return { ok: true, fingerprint: print, added: false };
    case "revoked": {
      const where = `${policy.file.path} line ${String(status.entry.line)}`;
      const error = new SshHostKeyRevokedError(
        `host key of ${label} (${presented}) is marked @revoked in ${where}; refusing to log in`,
      );
      return { ok: false, fingerprint: print, error };
    }
    case "changed": {
      const expected = status.known.map((e) => `${fingerprint(e.key)} (${e.keyType})`);
      const lines = status.known.map((e) => String(e.line)).join(", ");
      const source = `known_hosts ${policy.file.path} line ${lines}` as const;
      return {
        ok: false,
        fingerprint: print,
        error: new SshHostKeyMismatchError(label, presented, expected, source),
      };
    }
    case "unknown": {
      const note =
        status.certAuthorities > 0
          ? ` (known_hosts has @cert-authority lines for it: host certificates are not supported)`
          : "";
      const error = new SshHostKeyUnknownError(label, presented, policy.file.path, note);
      return { ok: false, fingerprint: print, error };
    }
  }
}
