/**
 * One message-security session per TLS connection: its id and MAC key come from that connection's
 * TLS 1.3 exporter, so a message captured on one connection fails on every other (UNKNOWN_SESSION,
 * BAD_MAC), and a kept-alive connection keeps one sequence in each direction. Each direction's
 * verifier measures the two clocks' offset at its first message (Hello and its answer), so the
 * ends' clocks need not agree.
 */
import type { TLSSocket } from "node:tls";
import { exportMacKey, Signer, Verifier, type Direction } from "./message-security.ts";
import { deriveSessionId, sessionContext } from "./wire.ts";

/** The state of one connection's session, at one end. */
export interface ConnectionSession {
  readonly sessionId: string;
  /** Who is at the other end, for logs: address, port, certificate subject and fingerprint. */
  readonly peer: string;
  /** Checks the messages received. */
  readonly verifier: Verifier;
  /** Signs the messages sent. */
  readonly signer: Signer;
}

export interface SessionOptions {
  readonly runId: string;
  readonly targetId: string;
  /** Which end this is: the agent receives workstation-to-agent messages. */
  readonly side: "agent" | "workstation";
  /**
   * The exporter context; default {@link sessionContext}(runId, targetId). The callback listener
   * uses `callbackContext(runId)`. The directions stay those of the sender: the agent signs
   * agent-to-workstation on either connection.
   */
  readonly context?: string;
  /** The verifier's bounds (agent/protocol/message-security.ts); defaults there. */
  readonly maxSkewMs?: number;
  readonly maxOffsetMs?: number;
  readonly now?: () => number;
}

/** Opens the session of a connection whose handshake is done. */
export function openConnectionSession(socket: TLSSocket, options: SessionOptions): ConnectionSession {
  const context = options.context ?? sessionContext(options.runId, options.targetId);
  const key = exportMacKey(socket, context);
  const sessionId = deriveSessionId(socket, context);
  const inbound: Direction = options.side === "agent" ? "workstation-to-agent" : "agent-to-workstation";
  const outbound: Direction = options.side === "agent" ? "agent-to-workstation" : "workstation-to-agent";
  const clock = options.now === undefined ? {} : { now: options.now };
  return {
    sessionId,
    peer: describePeer(socket),
    verifier: new Verifier({
      sessionId,
      key,
      direction: inbound,
      ...clock,
      ...(options.maxSkewMs === undefined ? {} : { maxSkewMs: options.maxSkewMs }),
      ...(options.maxOffsetMs === undefined ? {} : { maxOffsetMs: options.maxOffsetMs }),
    }),
    signer: new Signer({ sessionId, key, direction: outbound, ...clock }),
  };
}

/** `address:port CN=name sha256=AB:CD…` of the peer, or what is known of it. */
export function describePeer(socket: TLSSocket): string {
  const where = `${socket.remoteAddress ?? "?"}:${socket.remotePort ?? "?"}`;
  const cert = socket.getPeerCertificate();
  // An empty object when the peer sent no certificate.
  if (cert === null || Object.keys(cert).length === 0) return where;
  const cn = typeof cert.subject?.CN === "string" ? cert.subject.CN : "?";
  return `${where} CN=${cn} sha256=${cert.fingerprint256}`;
}
