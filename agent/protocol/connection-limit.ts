/**
 * Bounds on the connections of a server that answers one pinned certificate (the agent's server,
 * the callback listener): how many a server takes at all (handshakes included, `server.maxConnections`),
 * how many of the pinned peer's may stay open (beyond it the oldest without a request in progress
 * is dropped, or the new one refused when every one is busy), and how long a connection may stay
 * without sending a request (Node's header and request timeouts never close a connection that
 * sends nothing).
 */
import type { Server as HttpsServer } from "node:https";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { PeerCertificate, TLSSocket } from "node:tls";
import type { SumacError } from "../../base/errors.ts";
import { oneLine } from "../../base/text.ts";
import { describePeer } from "./connection-session.ts";

export interface ConnectionLimitOptions {
  /** Connections of the pinned peer kept open at once. */
  readonly maxPeerConnections: number;
  /** Connections the server takes at all, handshakes in progress included. */
  readonly maxConnections: number;
  /** A connection sending no request for this long after its handshake is closed. */
  readonly firstRequestTimeoutMs: number;
}

interface Tracked {
  readonly socket: TLSSocket;
  /** Requests in progress. */
  busy: number;
  /** Whether a request has come yet. */
  requested: boolean;
}

/** A TLS handshake longer than this fails (pass it as the server's `handshakeTimeout`). */
export const HANDSHAKE_TIMEOUT_MS = 10_000;

export class ConnectionLimit {
  readonly #o: ConnectionLimitOptions;
  /** The pinned peer's open connections, oldest first. */
  readonly #open: Tracked[] = [];
  readonly #bySocket = new WeakMap<TLSSocket, Tracked>();

  constructor(server: HttpsServer, options: ConnectionLimitOptions) {
    this.#o = options;
    server.maxConnections = options.maxConnections;
    server.on("request", (req: IncomingMessage, res: ServerResponse) => {
      const tracked = this.#bySocket.get(req.socket as TLSSocket);
      if (tracked === undefined) return;
      if (!tracked.requested) {
        tracked.requested = true;
        // From here on the HTTP server's own timeouts (keep-alive) apply.
        tracked.socket.setTimeout(0);
      }
      tracked.busy++;
      res.once("close", () => tracked.busy--);
    });
  }

  /** The pinned peer's open connections. */
  get open(): number {
    return this.#open.length;
  }

  /**
   * Takes a connection of the pinned peer, once its handshake is done: returns what to say when
   * another connection was dropped for it, or `refused` when every open one is busy (the caller
   * destroys the new socket).
   */
  admit(socket: TLSSocket): { dropped: boolean } | "refused" {
    let dropped = false;
    if (this.#open.length >= this.#o.maxPeerConnections) {
      const idle = this.#open.find((t) => t.busy === 0);
      if (idle === undefined) return "refused";
      this.#remove(idle);
      idle.socket.destroy();
      dropped = true;
    }
    const tracked: Tracked = { socket, busy: 0, requested: false };
    this.#open.push(tracked);
    this.#bySocket.set(socket, tracked);
    socket.setTimeout(this.#o.firstRequestTimeoutMs, () => {
      if (!tracked.requested) socket.destroy();
    });
    socket.once("close", () => this.#remove(tracked));
    return { dropped };
  }

  #remove(tracked: Tracked): void {
    const i = this.#open.indexOf(tracked);
    if (i >= 0) this.#open.splice(i, 1);
  }
}

/** What {@link guardPinnedServer} needs of its server. */
export interface PinnedServerGuard {
  /** The peer's name in messages: "the workstation", "the agent". */
  readonly peer: string;
  readonly limit: ConnectionLimit;
  readonly maxPeerConnections: number;
  /** Why a certificate of the CA is not the pinned peer's (an error with its code), or undefined. */
  readonly refusal: (fingerprint256: string | undefined) => SumacError | undefined;
  /** Opens the socket's message-security session (throws to refuse it). */
  readonly open: (socket: TLSSocket, fingerprint256: string) => void;
  /** Where refusals are said (rate-limited by the caller). */
  readonly refuse: (line: string) => void;
}

/**
 * The admission of a mutual-TLS server with a pinned peer, shared by the agent's server and the
 * workstation's callback listener: the peer's certificate checked, the connection counted against
 * the limit, its session opened, or the socket destroyed and the refusal said; handshake failures
 * said with their reason (Node drops those connections silently). The check is prepended, so it
 * runs before the HTTP server takes the socket: a socket destroyed here is never read, and nothing
 * the client sent is parsed (an https server's own listener, which comes first otherwise, already
 * hands the socket to its parser, and a request sent with the handshake would still be parsed).
 */
export function guardPinnedServer(server: HttpsServer, guard: PinnedServerGuard): void {
  server.prependListener("secureConnection", (socket: TLSSocket) => {
    const fingerprint256 = (socket.getPeerCertificate() as Partial<PeerCertificate>).fingerprint256;
    const refused = guard.refusal(fingerprint256);
    if (refused !== undefined || fingerprint256 === undefined) {
      const why =
        refused === undefined
          ? "no certificate"
          : `${refused.code} from ${describePeer(socket)}: ${refused.message}`;
      guard.refuse(`rejected ${why}`);
      socket.destroy();
      return;
    }
    const admitted = guard.limit.admit(socket);
    if (admitted === "refused") {
      guard.refuse(
        `connection refused from ${describePeer(socket)}: ${guard.maxPeerConnections} connections of ${guard.peer} already open, each with a request in progress`,
      );
      socket.destroy();
      return;
    }
    if (admitted.dropped)
      guard.refuse(
        `dropped ${guard.peer}'s oldest idle connection: at most ${guard.maxPeerConnections} kept open`,
      );
    try {
      guard.open(socket, fingerprint256);
    } catch (error) {
      guard.refuse(`connection refused: ${(error as Error).message}`);
      socket.destroy();
    }
  });
  server.on("tlsClientError", (error: NodeJS.ErrnoException, socket: TLSSocket) => {
    const reason = socket.authorizationError as unknown;
    const why =
      reason instanceof Error ? ` (${reason.message})` : typeof reason === "string" ? ` (${reason})` : "";
    guard.refuse(
      `rejected TLS_CLIENT from ${socket.remoteAddress ?? "?"}:${socket.remotePort ?? "?"}: ${error.code ?? "TLS"} ${oneLine(error.message, 300)}${why}`,
    );
  });
}
