/**
 * The workstation's TLS connection to one agent: mutual TLS 1.3 against the run's CA, and the
 * agent's certificate pinned by fingerprint on top of CA verification (the CA proves the run, the
 * pin proves the target: another target's agent has a certificate from the same CA).
 *
 * The connection is made before any message is signed, because the MAC key and session id come
 * from its TLS exporter; an HTTP agent then keeps every call on this one socket.
 */
import { Agent, type ClientRequestArgs } from "node:http";
import type { Duplex } from "node:stream";
import { checkServerIdentity, connect, type PeerCertificate, type TLSSocket } from "node:tls";
import { isIP } from "node:net";
import { withDeadline } from "../../base/deadline.ts";
import { AgentConnectionError, AgentIdentityError } from "./errors.ts";

export interface AgentConnectOptions {
  readonly host: string;
  readonly port: number;
  readonly caCertPem: string;
  /** The workstation's client leaf (issued by the run CA) and its key. */
  readonly certPem: string;
  readonly keyPem: string;
  /** The agent certificate's SHA-256 fingerprint, as `tls` prints it (AB:CD:...). */
  readonly agentFingerprint256: string;
  /** The name checked against the agent's certificate; default `host`. */
  readonly servername?: string;
  readonly connectTimeoutMs?: number;
  /**
   * The workstation's end of the connection: the leased 60000+ port (DESIGN.md "Ports": the
   * sending side of data paths to targets). A port that is taken fails with `EADDRINUSE` as the
   * error's cause, so the caller can report the conflict and try the next lease.
   */
  readonly localPort?: number;
  /** Aborting it abandons the connection as the deadline does. */
  readonly signal?: AbortSignal;
}

/** Opens the TLS connection; rejects when the handshake fails, the pin does not match, or time runs out. */
export function connectToAgent(options: AgentConnectOptions): Promise<TLSSocket> {
  const name = options.servername ?? options.host;
  const pin = options.agentFingerprint256.toUpperCase();
  const timeoutMs = options.connectTimeoutMs ?? 10_000;
  // Made when the deadline is armed, so its stack names this connection (STYLE.md item 7).
  const timeout = new AgentConnectionError(
    `TLS connection to ${options.host}:${options.port} took over ${timeoutMs} ms`,
  );
  const open = (stop: AbortSignal) =>
    new Promise<TLSSocket>((resolve, reject) => {
      const socket = connect({
        host: options.host,
        port: options.port,
        ...(options.localPort === undefined ? {} : { localPort: options.localPort }),
        ...(isIP(name) === 0 ? { servername: name } : {}),
        ca: options.caCertPem,
        cert: options.certPem,
        key: options.keyPem,
        minVersion: "TLSv1.3",
        rejectUnauthorized: true,
        checkServerIdentity: (_host: string, cert: PeerCertificate) => {
          const mismatch = checkServerIdentity(name, cert);
          if (mismatch !== undefined) return mismatch;
          if (cert.fingerprint256 !== pin)
            return new AgentIdentityError(
              `the agent's certificate ${cert.fingerprint256} is not the pinned ${pin}`,
            );
          return undefined;
        },
      });
      stop.addEventListener("abort", () => socket.destroy(), { once: true });
      socket.once("secureConnect", () => {
        socket.off("error", onError);
        resolve(socket);
      });
      const onError = (cause: Error) => {
        reject(
          cause instanceof AgentIdentityError
            ? cause
            : new AgentConnectionError(
                `TLS connection to ${options.host}:${options.port} failed: ${cause.message}`,
                {
                  cause,
                },
              ),
        );
      };
      socket.once("error", onError);
    });
  return withDeadline(
    { ms: timeoutMs, timeout, signal: options.signal, dispose: (socket) => socket.destroy() },
    open,
  );
}

/**
 * An HTTP agent that only ever uses `socket`: keep-alive, one request at a time. When that socket
 * is gone the session is gone with it, so no new connection is made: calls fail and the caller
 * connects again, with a new session.
 */
export class OneSocketAgent extends Agent {
  #socket: TLSSocket | undefined;

  constructor(socket: TLSSocket) {
    super({ keepAlive: true, maxSockets: 1, maxFreeSockets: 1 });
    this.#socket = socket;
  }

  override createConnection(
    _options: ClientRequestArgs,
    callback?: (err: Error | null, stream: Duplex) => void,
  ): Duplex | null | undefined {
    const socket = this.#socket;
    this.#socket = undefined;
    if (socket === undefined || socket.destroyed) {
      const error = new AgentConnectionError(
        "the agent connection is closed; connect again for a new session",
      );
      if (callback === undefined) throw error;
      callback(error, undefined as unknown as Duplex);
      return undefined;
    }
    return socket;
  }
}
