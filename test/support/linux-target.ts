/**
 * Linux deployment targets for tests: a container of the `linux-target` image (OpenSSH 9.2 and
 * sudo on Debian 12), with per-container host key, key pairs and passwords. It returns once sshd
 * has accepted a real login whose host key matched the one read from the container.
 *
 * Secrets never reach argv or the image: key pairs and passwords are made here, copied into the
 * container before it starts (mode 0600), and its entrypoint applies and deletes them.
 */
import { createHash } from "node:crypto";
import ssh2 from "ssh2";
import { newPassword, startContainer, waitUntil, type ExecOutcome } from "./container.ts";

/** An account on the target. `password` is set where the account is meant to log in with one. */
export interface LinuxTargetUser {
  name: string;
  /** OpenSSH-format ed25519 private key (unencrypted), as ssh2's `privateKey` takes it. */
  privateKey: string;
  password?: string;
}

export interface LinuxTargetUsers {
  /** May log in with its key or its password. */
  root: LinuxTargetUser & { password: string };
  /** Key login only; `sudo` never asks for a password (NOPASSWD). */
  deploy: LinuxTargetUser;
  /** Key login; `sudo` asks for this password (`sudo -S` reads it from stdin). */
  operator: LinuxTargetUser & { password: string };
}

export interface LinuxTarget {
  /** Where the published SSH port is: always `127.0.0.1`. */
  host: string;
  /** The host port mapped to the container's port 22. */
  port: number;
  /** The container's address on the engine's bridge (port 22 there). */
  address: string;
  withNode: boolean;
  /**
   * Fingerprint of the container's ed25519 host key (its only host key, so the one every client
   * is shown), as OpenSSH prints it: `SHA256:` and unpadded base64.
   */
  hostKeyFingerprint: string;
  /** The same digest as raw bytes: SHA-256 of the key blob ssh2 passes to `hostVerifier`. */
  hostKeySha256: Buffer;
  users: LinuxTargetUsers;
  /** Time from the call until sshd accepted a login. */
  startedInMs: number;
  /** Runs `sh -c cmd` inside the container through the engine (not over SSH), for assertions. */
  exec(cmd: string, timeoutMs?: number): Promise<ExecOutcome>;
  /** Stops and removes the container. */
  stop(): Promise<void>;
}

export interface LinuxTargetOptions {
  /** Use the `node` stage (Debian's nodejs) instead of `plain` (no Node.js). */
  withNode?: boolean;
  /** How long sshd may take to accept a login after the container starts (default 30 s). */
  readyTimeoutMs?: number;
  /** Linux capabilities to add, e.g. NET_ADMIN so nft works inside the container. */
  capAdd?: string[];
}

const secretsDir = "/etc/sumac-target";
const hostKeyPub = "/etc/ssh/ssh_host_ed25519_key.pub";

/** An ed25519 key pair in OpenSSH formats: `private` for ssh2, `public` for authorized_keys. */
function newKeyPair(name: string): { private: string; public: string } {
  // ssh2 1.17 writes a key its own parser rejects ("Malformed OpenSSH private key") about 3 times
  // in 1,000 (measured: 8 of 3,000): check each one, so a test never fails on a bad key.
  for (let attempt = 0; attempt < 10; attempt++) {
    const pair = ssh2.utils.generateKeyPairSync("ed25519", { comment: `${name}@sumac-test` });
    if (!(ssh2.utils.parseKey(pair.private) instanceof Error)) return pair;
  }
  throw new Error("ssh2 generated 10 ed25519 keys in a row that it cannot parse");
}

/** Fingerprint and digest of an OpenSSH public key line (`type base64 [comment]`). */
export function fingerprintOf(publicKeyLine: string): { sha256: Buffer; fingerprint: string } {
  const blob = publicKeyLine.trim().split(/\s+/)[1];
  if (!blob) throw new Error(`not an OpenSSH public key line: ${JSON.stringify(publicKeyLine)}`);
  const sha256 = createHash("sha256").update(Buffer.from(blob, "base64")).digest();
  return { sha256, fingerprint: `SHA256:${sha256.toString("base64").replace(/=+$/, "")}` };
}

/**
 * Logs in once as root with its key and resolves with the SHA-256 of the host key sshd presented.
 * Any host key is accepted here: the caller compares it with the key file read from the container.
 */
function probeLogin(host: string, port: number, root: LinuxTargetUser, signal: AbortSignal): Promise<Buffer> {
  return new Promise<Buffer>((resolve, reject) => {
    const client = new ssh2.Client();
    let presented: Buffer | undefined;
    const onAbort = (): void => {
      client.destroy();
      reject(signal.reason as Error);
    };
    signal.addEventListener("abort", onAbort, { once: true });
    const done = (): void => signal.removeEventListener("abort", onAbort);
    client
      .on("ready", () => {
        done();
        client.end();
        if (presented) resolve(presented);
        else reject(new Error("logged in without seeing a host key"));
      })
      .on("error", (err) => {
        done();
        client.destroy();
        reject(err);
      })
      .connect({
        host,
        port,
        username: root.name,
        privateKey: root.privateKey,
        readyTimeout: 5_000,
        hostVerifier: (key: Buffer) => {
          presented = createHash("sha256").update(key).digest();
          return true;
        },
      });
  });
}

/**
 * Starts a `linux-target` (or, with `withNode`, `linux-target-node`) container; the caller stops
 * it in an `after` hook.
 *
 * @example
 * const target = await startLinuxTarget();
 * client.connect({
 *   host: target.host, port: target.port, username: "root", privateKey: target.users.root.privateKey,
 *   hostVerifier: (key: Buffer) => sha256(key).equals(target.hostKeySha256),
 * });
 */
export async function startLinuxTarget(options: LinuxTargetOptions = {}): Promise<LinuxTarget> {
  const t0 = performance.now();
  const withNode = options.withNode ?? false;
  const keys = { root: newKeyPair("root"), deploy: newKeyPair("deploy"), operator: newKeyPair("operator") };
  const users: LinuxTargetUsers = {
    root: { name: "root", privateKey: keys.root.private, password: newPassword() },
    deploy: { name: "deploy", privateKey: keys.deploy.private },
    operator: { name: "operator", privateKey: keys.operator.private, password: newPassword() },
  };
  // Files the entrypoint applies then deletes (see test/targets/linux-target/entrypoint.sh).
  const secrets = Object.entries(keys).map(([name, pair]) => ({
    content: `${pair.public}\n`,
    target: `${secretsDir}/${name}.authorized_keys`,
    mode: 0o600,
  }));
  const passwords = [users.root, users.operator].map((u) => `${u.name}:${u.password}\n`).join("");
  secrets.push({ content: passwords, target: `${secretsDir}/passwords`, mode: 0o600 });

  const tc = await startContainer({
    fixture: withNode ? "linux-target-node" : "linux-target",
    image: withNode ? "linux-target-node" : "linux-target",
    ports: [22],
    files: secrets,
    ...(options.capAdd === undefined ? {} : { capAdd: options.capAdd }),
    // sshd logs this once the entrypoint has set up keys and accounts; the login below is the check.
    waitForLog: /Server listening on/,
    startupTimeoutMs: 30_000,
  });
  try {
    const host = "127.0.0.1";
    const port = tc.container.getMappedPort(22);
    let presented: Buffer | undefined;
    await waitUntil(
      `sshd (${host}:${port}, root login with its key)`,
      async (signal) => (presented = await probeLogin(host, port, users.root, signal)),
      options.readyTimeoutMs ?? 30_000,
    );
    const pub = await tc.exec(`cat ${hostKeyPub}`);
    if (pub.exitCode !== 0) throw new Error(`cannot read ${hostKeyPub}: ${pub.stderr.trim()}`);
    const { sha256, fingerprint } = fingerprintOf(pub.stdout);
    if (!presented || !sha256.equals(presented)) {
      throw new Error(`sshd presented a host key other than ${hostKeyPub} (${fingerprint})`);
    }
    return {
      host,
      port,
      address: tc.address,
      withNode,
      hostKeyFingerprint: fingerprint,
      hostKeySha256: sha256,
      users,
      startedInMs: performance.now() - t0,
      exec: tc.exec,
      stop: tc.stop,
    };
  } catch (err) {
    return tc.failStart(err);
  }
}
