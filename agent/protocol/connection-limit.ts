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
import type { TLSSocket } from "node:tls";

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
