/**
 * Linux deployment targets for tests: a container of the `linux-target` image (OpenSSH 9.2 and
 * sudo on Debian 12), with per-container host key, key pairs and passwords. It returns once sshd
 * has accepted a real login whose host key matched the one read from the container.
 *
 * Secrets never reach argv or the image: key pairs and passwords are made here, copied into the
 * container before it starts (mode 0600), and its entrypoint applies and deletes them.
 */
import { createHash, randomBytes } from "node:crypto";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import ssh2 from "ssh2";
import { ensureImage, testLabels } from "./engine.ts";
import { containerAddress, waitUntil } from "./container.ts";
import { GenericContainer, Wait, type StartedTestContainer } from "./testcontainers.ts";

const run = promisify(execFile);

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

/** What `exec` returns: the command's exit code and its output. */
export interface ExecOutcome {
  exitCode: number;
  stdout: string;
  stderr: string;
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
  exec(cmd: string): Promise<ExecOutcome>;
  /** Stops and removes the container. */
  stop(): Promise<void>;
}

export interface LinuxTargetOptions {
  /** Use the `node` stage (Debian's nodejs) instead of `plain` (no Node.js). */
  withNode?: boolean;
  /** How long sshd may take to accept a login after the container starts (default 30 s). */
  readyTimeoutMs?: number;
}

const secretsDir = "/etc/sumac-target";
const hostKeyPub = "/etc/ssh/ssh_host_ed25519_key.pub";

/** Rejects after `ms` with an error made now, so its stack names the operation that timed out. */
function deadline<T>(what: string, ms: number, p: Promise<T>): Promise<T> {
  const timeout = new Error(`${what} did not finish within ${ms} ms`);
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(timeout), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** A password for one container: base64url has no ':' (chpasswd's separator) and no newline. */
function newPassword(): string {
  return randomBytes(18).toString("base64url");
}

/** An ed25519 key pair in OpenSSH formats: `private` for ssh2, `public` for authorized_keys. */
function newKeyPair(name: string): { private: string; public: string } {
  return ssh2.utils.generateKeyPairSync("ed25519", { comment: `${name}@sumac-test` });
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

/** The last lines of a container's log, for error messages. */
async function tailLogs(id: string): Promise<string> {
  try {
    const { stdout, stderr } = await run("docker", ["logs", "--tail", "20", id], { timeout: 10_000 });
    return `${stdout}${stderr}`.trim();
  } catch (err) {
    return `(no logs: ${(err as Error).message})`;
  }
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
  const image = await ensureImage(withNode ? "linux-target-node" : "linux-target");
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

  let container: StartedTestContainer;
  try {
    container = await new GenericContainer(image)
      .withLabels(testLabels(withNode ? "linux-target-node" : "linux-target"))
      .withExposedPorts(22)
      .withCopyContentToContainer(secrets)
      // sshd logs this once the entrypoint has set up keys and accounts; the login below is the
      // real check. On timeout testcontainers removes the container itself.
      .withWaitStrategy(Wait.forLogMessage(/Server listening on/))
      .withStartupTimeout(30_000)
      .start();
  } catch (err) {
    throw new Error(`linux-target ${image}: sshd did not start`, { cause: err });
  }
  // The last attempt is usually cut short by the deadline: keep the reason of the one before.
  let lastRefusal: Error | undefined;
  try {
    const host = "127.0.0.1";
    const port = container.getMappedPort(22);
    let presented: Buffer | undefined;
    await waitUntil(
      `sshd of ${image} (${host}:${port})`,
      async (signal) => {
        try {
          presented = await probeLogin(host, port, users.root, signal);
        } catch (err) {
          if (!signal.aborted) lastRefusal = err as Error;
          throw err;
        }
      },
      options.readyTimeoutMs ?? 30_000,
    );
    const exec = async (cmd: string): Promise<ExecOutcome> => {
      const r = await deadline(`exec in ${image}`, 30_000, container.exec(["sh", "-c", cmd]));
      return { exitCode: r.exitCode, stdout: r.stdout, stderr: r.stderr };
    };
    const pub = await exec(`cat ${hostKeyPub}`);
    if (pub.exitCode !== 0) throw new Error(`cannot read ${hostKeyPub}: ${pub.stderr.trim()}`);
    const { sha256, fingerprint } = fingerprintOf(pub.stdout);
    if (!presented || !sha256.equals(presented)) {
      throw new Error(`sshd presented a host key other than ${hostKeyPub} (${fingerprint})`);
    }
    return {
      host,
      port,
      address: await containerAddress(container),
      withNode,
      hostKeyFingerprint: fingerprint,
      hostKeySha256: sha256,
      users,
      startedInMs: performance.now() - t0,
      exec,
      stop: async () => {
        await container.stop({ timeout: 5_000 });
      },
    };
  } catch (err) {
    const logs = await tailLogs(container.getId());
    await container.stop({ timeout: 2_000 });
    const last = lastRefusal ? ` (last login attempt: ${lastRefusal.message})` : "";
    throw new Error(`linux-target ${image}: ${(err as Error).message}${last}; container log:\n${logs}`, {
      cause: err,
    });
  }
}
