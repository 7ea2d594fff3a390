/**
 * How sumac logs in: a private key (from a file or given as text, with an optional passphrase),
 * the user's ssh-agent, or a password. Secrets come from the caller's objects only: never from or
 * into argv, environment (except the agent's socket path) or logs.
 *
 * A key is parsed here before connecting, so a bad key is reported with its file name and
 * ssh2's reason instead of as a failed login (ssh2 1.17 also rejects a few keys it generated
 * itself as "Malformed OpenSSH private key": see ENVIRONMENT.md).
 */
import { open } from "node:fs/promises";
import ssh2 from "ssh2";
import { SshConfigError, SshPrivateKeyError } from "./errors.ts";

export type SshAuth =
  | {
      readonly kind: "key";
      /** OpenSSH or PEM private key text. */
      readonly privateKey: string | Buffer;
      readonly passphrase?: string;
      /** Where the key came from, for messages (e.g. "the job's key for web-01"). */
      readonly source?: string;
    }
  | { readonly kind: "key-file"; readonly path: string; readonly passphrase?: string }
  /** An ssh-agent; `socket` defaults to the environment's SSH_AUTH_SOCK. */
  | { readonly kind: "agent"; readonly socket?: string }
  | { readonly kind: "password"; readonly password: string };

/** The ssh2 connect options for one method; exactly one method is offered. */
export type Ssh2AuthConfig =
  { privateKey: Buffer; passphrase?: string } | { agent: string } | { password: string };

/** A private key file larger than this is no key (an 16k-bit RSA key is about 13 KiB). */
export const MAX_PRIVATE_KEY_BYTES = 64 * 1024;

async function readKeyFile(path: string): Promise<Buffer> {
  let handle;
  try {
    handle = await open(path, "r");
    const buf = Buffer.alloc(MAX_PRIVATE_KEY_BYTES + 1);
    let length = 0;
    for (;;) {
      const { bytesRead } = await handle.read(buf, length, buf.length - length, length);
      if (bytesRead === 0 || (length += bytesRead) === buf.length) break;
    }
    if (length > MAX_PRIVATE_KEY_BYTES) {
      throw new SshPrivateKeyError(`private key file ${path} is larger than ${MAX_PRIVATE_KEY_BYTES} bytes`);
    }
    return buf.subarray(0, length);
  } catch (error) {
    if (error instanceof SshPrivateKeyError) throw error;
    throw new SshPrivateKeyError(`cannot read private key file ${path}: ${(error as Error).message}`, {
      cause: error,
    });
  } finally {
    await handle?.close();
  }
}

/** Parses the key as ssh2 will, so that its complaint names the key instead of failing later. */
function checkKey(key: Buffer, passphrase: string | undefined, source: string): void {
  // Typed as one key, but ssh2 returns an array for some OpenSSH files (as its client.js handles).
  const parsed: unknown = ssh2.utils.parseKey(key, passphrase);
  const first = (Array.isArray(parsed) ? (parsed[0] as unknown) : parsed) as
    ssh2.ParsedKey | Error | undefined;
  if (first instanceof Error || first === undefined) {
    const reason = first instanceof Error ? first.message : "no key found";
    throw new SshPrivateKeyError(`cannot use private key ${source}: ${reason}`, { cause: first });
  }
  if (first.isPrivateKey() !== true) {
    throw new SshPrivateKeyError(`${source} holds a public key, not a private key`);
  }
}

/** Resolves an {@link SshAuth} to ssh2's options, reading and checking a key file. */
export async function resolveAuth(
  auth: SshAuth,
  env: NodeJS.ProcessEnv = process.env,
): Promise<Ssh2AuthConfig> {
  switch (auth.kind) {
    case "key": {
      const key = Buffer.isBuffer(auth.privateKey) ? auth.privateKey : Buffer.from(auth.privateKey);
      checkKey(key, auth.passphrase, auth.source ?? "(given as text)");
      return auth.passphrase === undefined
        ? { privateKey: key }
        : { privateKey: key, passphrase: auth.passphrase };
    }
    case "key-file": {
      const key = await readKeyFile(auth.path);
      checkKey(key, auth.passphrase, `file ${auth.path}`);
      return auth.passphrase === undefined
        ? { privateKey: key }
        : { privateKey: key, passphrase: auth.passphrase };
    }
    case "agent": {
      const socket = auth.socket ?? env.SSH_AUTH_SOCK;
      if (socket === undefined || socket === "") {
        throw new SshConfigError(
          "ssh-agent login asked for, but no agent socket given and SSH_AUTH_SOCK is not set",
        );
      }
      return { agent: socket };
    }
    case "password":
      if (auth.password === "") throw new SshConfigError("password login asked for with an empty password");
      return { password: auth.password };
  }
}

/** The method's name for messages (never its secret). */
export function authLabel(auth: SshAuth): string {
  switch (auth.kind) {
    case "key":
      return `private key ${auth.source ?? "(given as text)"}`;
    case "key-file":
      return `private key file ${auth.path}`;
    case "agent":
      return "ssh-agent";
    case "password":
      return "password";
  }
}
