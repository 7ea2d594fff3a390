/**
 * Opening an SSH session to a target: TCP connect, key exchange with the host key verified
 * (before any authentication), login, all within one deadline and cancellable by an AbortSignal.
 * ssh2's failures are mapped to the transport's error classes by their `level` and our own
 * host key verdict, never by message text.
 *
 * Nothing here is shared between connections except the known_hosts file object the caller
 * passes in, so hundreds of targets connect at once.
 *
 * @example
 * const session = await connectSsh({
 *   host: "web-01", username: "deploy", auth: { kind: "key-file", path: keyPath },
 *   hostKey: { kind: "known-hosts", file: knownHosts, policy: "strict" },
 *   become: {}, timeoutMs: 15_000, signal,
 * });
 */
import ssh2 from "ssh2";
import { endsOnce, withDeadline } from "../../base/deadline.ts";
import { authLabel, resolveAuth, type SshAuth } from "./auth.ts";
import { isSudoPath, type BecomeConfig } from "./become.ts";
import {
  SshAuthError,
  SshConfigError,
  SshHandshakeError,
  SshKnownHostsError,
  SshUnreachableError,
} from "./errors.ts";
import { type SumacError, isSumacError } from "../../base/errors.ts";
import { DEFAULT_RUN_ROOT, checkRunRoot, type FileHooks } from "./files.ts";
import {
  hostLabel,
  preferredHostKeyTypes,
  validatePolicy,
  verifyHostKey,
  type HostKeyPolicy,
  type HostKeyVerdict,
} from "./host-key.ts";
import { fingerprint } from "./known-hosts.ts";
import { SshSession } from "./session.ts";

export interface SshConnectOptions {
  readonly host: string;
  /** Default 22. */
  readonly port?: number;
  readonly username: string;
  readonly auth: SshAuth;
  readonly hostKey: HostKeyPolicy;
  /** Deadline for connect, key exchange and login together; passing it is `UNREACHABLE`. */
  readonly timeoutMs: number;
  readonly signal?: AbortSignal;
  /** How `become: true` reaches root; omit for `sudo -n` (and run directories made as the user). */
  readonly become?: BecomeConfig;
  /** Directory holding the runs' directories on the target (default `/var/tmp/sumac`). */
  readonly runRoot?: string;
  /** Channels open at once on the connection (default 8). */
  readonly maxChannels?: number;
  /** Keep-alive probe interval (default 15 s; 3 unanswered probes end the connection). */
  readonly keepaliveIntervalMs?: number;
  /** ssh2's protocol trace (no secrets, but user names and algorithms): for debugging only. */
  readonly debug?: (line: string) => void;
  /** Where SSH_AUTH_SOCK is read for agent logins (default `process.env`). */
  readonly env?: NodeJS.ProcessEnv;
  readonly hooks?: FileHooks;
}

/** ssh2's host key algorithms in its default order (ssh-dss left out: DSA is obsolete). */
const HOST_KEY_ALGORITHMS = [
  "ssh-ed25519",
  "ecdsa-sha2-nistp256",
  "ecdsa-sha2-nistp384",
  "ecdsa-sha2-nistp521",
  "rsa-sha2-512",
  "rsa-sha2-256",
  "ssh-rsa",
];

interface Ssh2Error extends Error {
  level?: string;
  code?: string;
}

function mapError(
  error: Ssh2Error,
  verdict: HostKeyVerdict | undefined,
  label: string,
  options: SshConnectOptions,
): SumacError {
  if (verdict?.ok === false) return verdict.error;
  const why = error.code ?? error.message;
  switch (error.level) {
    case "client-authentication":
      return new SshAuthError(
        `${label} refused the login of ${options.username} with ${authLabel(options.auth)}`,
        {
          cause: error,
        },
      );
    case "agent":
      return new SshAuthError(`the ssh-agent failed while logging in to ${label}: ${error.message}`, {
        cause: error,
      });
    case "client-socket":
    case "client-timeout":
    case "client-dns":
      return new SshUnreachableError(`cannot reach ${label}: ${why}`, { cause: error });
    case "handshake":
    case "protocol":
      return new SshHandshakeError(`SSH key exchange with ${label} failed: ${error.message}`, {
        cause: error,
      });
    default:
      return new SshUnreachableError(`connection to ${label} failed before login: ${why}`, { cause: error });
  }
}

/** Connects and logs in; resolves with a session the caller closes. */
export async function connectSsh(options: SshConnectOptions): Promise<SshSession> {
  const { host, signal, timeoutMs } = options;
  const port = options.port ?? 22;
  if (host === "" || /[\s\0]/.test(host))
    throw new SshConfigError(`host ${JSON.stringify(host)} is not a host name`);
  if (!Number.isInteger(port) || port < 1 || port > 65535)
    throw new SshConfigError(`port ${String(port)} is not a TCP port`);
  if (options.username === "") throw new SshConfigError("no user name to log in as");
  if (!(timeoutMs > 0)) throw new SshConfigError(`connect timeout ${String(timeoutMs)} ms is not positive`);
  validatePolicy(options.hostKey);
  if (options.become?.sudoPath !== undefined && !isSudoPath(options.become.sudoPath))
    throw new SshConfigError(
      `sudo path ${JSON.stringify(options.become.sudoPath)} is not an absolute path of plain characters`,
    );
  const runRoot = checkRunRoot(options.runRoot ?? DEFAULT_RUN_ROOT);
  const label = hostLabel(host, port);
  signal?.throwIfAborted();
  // Made when the deadline is armed, so its stack names the caller (STYLE.md item 7).
  const timeout = new SshUnreachableError(`${label} did not complete SSH login within ${timeoutMs} ms`);
  const started = Date.now();
  const auth = await resolveAuth(options.auth, options.env);
  const preferred = await preferredHostKeyTypes(options.hostKey, host, port);
  const known = preferred.filter((a) => HOST_KEY_ALGORITHMS.includes(a));
  const algorithms = [...known, ...HOST_KEY_ALGORITHMS.filter((a) => !known.includes(a))];
  signal?.throwIfAborted();

  let verdict: HostKeyVerdict | undefined;
  const login = (stop: AbortSignal) =>
    new Promise<SshSession>((resolve, reject) => {
      const client = new ssh2.Client();
      const end = endsOnce(stop, reject, () => client.destroy());
      const fail = end.fail;

      client.on("ready", () => {
        if (!end.succeed()) return void client.end();
        resolve(
          new SshSession(client, {
            label,
            username: options.username,
            hostKeyFingerprint: verdict?.fingerprint ?? "",
            runRoot,
            ...(options.become ? { become: options.become } : {}),
            ...(options.maxChannels === undefined ? {} : { maxChannels: options.maxChannels }),
            ...(options.hooks ? { hooks: options.hooks } : {}),
          }),
        );
      });
      client.on("error", (error: Ssh2Error) => fail(mapError(error, verdict, label, options)));
      client.on("close", () =>
        fail(
          verdict?.ok === false
            ? verdict.error
            : new SshUnreachableError(`${label} closed the connection before login`),
        ),
      );
      try {
        client.connect({
          host,
          port,
          username: options.username,
          ...auth,
          tryKeyboard: false,
          // Our own timer answers first; ssh2's is a backstop.
          readyTimeout: timeoutMs + 1_000,
          keepaliveInterval: options.keepaliveIntervalMs ?? 15_000,
          keepaliveCountMax: 3,
          algorithms: { serverHostKey: algorithms as ssh2.ServerHostKeyAlgorithm[] },
          ...(options.debug ? { debug: options.debug } : {}),
          // Called during key exchange, before the user name or any credential is sent.
          hostVerifier: (key: Buffer, verify: (ok: boolean) => void) => {
            verifyHostKey(options.hostKey, host, port, key, stop).then(
              (v) => {
                verdict = v;
                verify(v.ok);
              },
              (error: unknown) => {
                const reason = isSumacError(error)
                  ? error
                  : new SshKnownHostsError(
                      `cannot check the host key of ${label}: ${(error as Error).message}`,
                      { cause: error },
                    );
                verdict = { ok: false, fingerprint: fingerprint(key), error: reason };
                verify(false);
              },
            );
          },
        });
      } catch (error) {
        fail(new SshConfigError(`cannot connect to ${label}: ${(error as Error).message}`, { cause: error }));
      }
    });
  // A host key refused during the key exchange is the better reason when time runs out.
  return withDeadline(
    {
      ms: Math.max(1, timeoutMs - (Date.now() - started)),
      timeout: () => (verdict?.ok === false ? verdict.error : timeout),
      signal,
      // Logged in just as the deadline passed or the caller gave up: nobody else will close it.
      dispose: (session) => void session.close().catch(() => undefined),
    },
    login,
  );
}
