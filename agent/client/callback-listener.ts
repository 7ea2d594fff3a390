/**
 * The workstation's callback listener: agents send progress, output lines and
 * install results here instead of waiting to be asked. An `https.Server` with the same mutual TLS
 * 1.3 as the agent's server (client certificate from the run CA required), and on top each agent's
 * own callback certificate pinned by fingerprint (sumac runs one listener per target, allowing that
 * target's agent only: another agent of the run, with a certificate of the same CA, is refused
 * once its handshake is done), bound at 61000 or the next free port
 * (`agent/protocol/port-binding.ts`).
 *
 * Every message is a SOAP `Notify` (`agent/protocol/callback-messages.ts`) checked like the agent checks the
 * workstation's requests: size cap, then the `X-Sumac-Security` MAC over the raw body with a key and
 * session id from this connection's TLS exporter (context `callbackContext(runId)`), then the XML
 * guard. Directions stay those of the sender (the agent signs agent-to-workstation, the
 * acknowledgement is workstation-to-agent), so no third direction is needed: the per-connection
 * exporter key and its distinct context already keep callback and agent sessions apart. Every
 * answer, acknowledgement or fault, is signed; every rejection is logged with its code, the first
 * few of each interval as they come and the rest counted and said in one line per interval
 * (`agent/protocol/rejection-summary.ts`). Connections are bounded (`agent/protocol/connection-limit.ts`):
 * a few of the agent's open at once (a new one drops the oldest idle one), a connection that sends
 * no request within `firstRequestTimeoutMs` is closed, and an idle one after `keepAliveTimeoutMs`.
 */
import { withDeadline } from "../../base/deadline.ts";
import { errorClass, isSumacError } from "../../base/errors.ts";
import { mutualTlsServerOptions, sendSigned } from "../protocol/signed-http.ts";
import type { IncomingMessage, ServerResponse } from "node:http";
import { createServer, type Server as HttpsServer } from "node:https";
import type { TLSSocket } from "node:tls";
import {
  BodyTooLargeError,
  InternalAgentError,
  NotFoundError,
  UnknownOperationError,
} from "../protocol/errors.ts";
import { oneLine } from "../../base/text.ts";
import { ConnectionLimit, guardPinnedServer, HANDSHAKE_TIMEOUT_MS } from "../protocol/connection-limit.ts";
import { RejectionSummary } from "../protocol/rejection-summary.ts";
import { readCappedBody } from "../protocol/body-reader.ts";
import { type CallbackMessage, notifyAckEnvelope, parseNotify } from "../protocol/callback-messages.ts";
import { type ConnectionSession, openConnectionSession } from "../protocol/connection-session.ts";
import { bindPort } from "../protocol/port-binding.ts";
import {
  CALLBACK_PATH,
  callbackContext,
  decodeSecurityHeader,
  FAULT_OPERATION,
  NOTIFY_OPERATION,
  operationFromSoapAction,
  responseOperation,
  SECURITY_HEADER,
} from "../protocol/wire.ts";
import { faultEnvelope } from "../protocol/soap-envelope.ts";

/** The callback listener's base port: the workstation's 61000+ range (DESIGN.md "Ports"). */
export const DEFAULT_CALLBACK_PORT = 61000;
/** A Notify is one line or one result; 64 KiB is ample. */
export const DEFAULT_CALLBACK_MAX_BODY_BYTES = 64 * 1024;

/** Who sent a message: the connection's peer description and the agent certificate's fingerprint. */
export interface CallbackSender {
  readonly peer: string;
  readonly fingerprint256: string;
}

export interface CallbackListenerOptions {
  readonly host: string;
  /** Default {@link DEFAULT_CALLBACK_PORT}; the next free port is taken when it is busy. */
  readonly basePort?: number;
  /**
   * Binds the listener's server instead of the search from `basePort`, e.g. on a port leased from
   * the lease service (actors/lease/bind.ts); resolves with the port and the ports found taken.
   */
  readonly bind?: (
    server: HttpsServer,
  ) => Promise<{ readonly port: number; readonly busy: readonly number[] }>;
  readonly caCertPem: string;
  /** The workstation's leaf for this listener (serverAuth, issued by the run CA) and its key. */
  readonly certPem: string;
  readonly keyPem: string;
  /** The agents' certificate fingerprints (AB:CD:…) allowed to connect, or a predicate. */
  readonly agentFingerprints: readonly string[] | ((fingerprint256: string) => boolean);
  readonly runId: string;
  /** Receives each accepted message; a throw becomes an INTERNAL fault to the agent. */
  readonly onMessage: (message: CallbackMessage, from: CallbackSender) => void;
  /** Receives rejections (with their code) and connections; default: stderr. */
  readonly log?: (level: "info" | "warn" | "error", line: string) => void;
  readonly maxBodyBytes?: number;
  readonly maxSkewMs?: number;
  readonly now?: () => number;
  /** The agent's connections kept open at once; default {@link DEFAULT_CALLBACK_CONNECTIONS}. */
  readonly maxAgentConnections?: number;
  /** Connections taken at all, handshakes included; default 16. */
  readonly maxConnections?: number;
  /** A connection sending no request this long after its handshake is closed; default 10 s. */
  readonly firstRequestTimeoutMs?: number;
  /** An idle connection between requests is closed after this; default 5 s. */
  readonly keepAliveTimeoutMs?: number;
  /** Refusals said as they come per interval (default 3), the rest counted; interval default 10 s. */
  readonly rejectionBurst?: number;
  readonly rejectionIntervalMs?: number;
}

/** One agent sends one callback at a time: a few connections leave room for reconnects. */
export const DEFAULT_CALLBACK_CONNECTIONS = 4;
/** Connections of any peer at once, handshakes included. */
export const CALLBACK_MAX_CONNECTIONS = 16;
/** A connection that sends no request this long after its handshake is closed. */
export const CALLBACK_FIRST_REQUEST_MS = 10_000;
/** A connection idle this long between requests is closed. */
export const CALLBACK_IDLE_MS = 5_000;

export interface CallbackListener {
  readonly port: number;
  /** Ports found taken before {@link port}. */
  readonly busy: readonly number[];
  readonly server: HttpsServer;
  /**
   * Resolves true once a message from the agent whose certificate is `fingerprint256` has been
   * accepted (now or before), false when none is within `timeoutMs` or `signal` aborts.
   */
  heardFrom(fingerprint256: string, options: { timeoutMs: number; signal?: AbortSignal }): Promise<boolean>;
  close(): Promise<void>;
}

/** A connection from a certificate of the run CA that is not one of the allowed agents. */
export class UnknownAgentError extends errorClass("UNKNOWN_AGENT") {}

interface CallbackSession extends ConnectionSession {
  readonly fingerprint256: string;
}

/** Starts the listener; resolves once it is bound. */
export async function startCallbackListener(options: CallbackListenerOptions): Promise<CallbackListener> {
  const log =
    options.log ?? ((level, line) => process.stderr.write(`callback-listener ${level} ${oneLine(line)}\n`));
  const allowed = options.agentFingerprints;
  const isAllowed =
    typeof allowed === "function"
      ? allowed
      : (fp: string) => allowed.some((a) => a.toUpperCase() === fp.toUpperCase());
  const maxBodyBytes = options.maxBodyBytes ?? DEFAULT_CALLBACK_MAX_BODY_BYTES;
  const sessions = new WeakMap<TLSSocket, CallbackSession>();
  /** Agents (by fingerprint) a message was accepted from, and who waits to hear from one. */
  const heard = new Set<string>();
  const waiting = new Map<string, Set<() => void>>();
  const markHeard = (fingerprint256: string) => {
    const fp = fingerprint256.toUpperCase();
    if (heard.has(fp)) return;
    heard.add(fp);
    for (const wake of waiting.get(fp) ?? []) wake();
    waiting.delete(fp);
  };

  const server = createServer({ ...mutualTlsServerOptions(options), handshakeTimeout: HANDSHAKE_TIMEOUT_MS });
  server.requestTimeout = 30_000;
  server.headersTimeout = 15_000;
  server.keepAliveTimeout = options.keepAliveTimeoutMs ?? CALLBACK_IDLE_MS;
  const maxAgentConnections = options.maxAgentConnections ?? DEFAULT_CALLBACK_CONNECTIONS;
  const connections = new ConnectionLimit(server, {
    maxPeerConnections: maxAgentConnections,
    maxConnections: options.maxConnections ?? CALLBACK_MAX_CONNECTIONS,
    firstRequestTimeoutMs: options.firstRequestTimeoutMs ?? CALLBACK_FIRST_REQUEST_MS,
  });
  // Whoever reaches the port can make refusals without end: they are counted, not each said.
  const refusals = new RejectionSummary({
    what: "requests refused",
    burst: options.rejectionBurst ?? 3,
    intervalMs: options.rejectionIntervalMs ?? 10_000,
    ...(options.now === undefined ? {} : { now: options.now }),
    say: (line) => log("warn", line),
  });
  const refuse = (line: string) => refusals.add(oneLine(line, 1000));
  // The agent itself could connect in a loop: its connections are counted the same way.
  const connected = new RejectionSummary({
    what: "connections accepted",
    burst: options.rejectionBurst ?? 3,
    intervalMs: options.rejectionIntervalMs ?? 10_000,
    ...(options.now === undefined ? {} : { now: options.now }),
    say: (line) => log("info", line),
  });

  // Only this listener's agents' callback certificates are answered.
  guardPinnedServer(server, {
    peer: "the agent",
    limit: connections,
    maxPeerConnections: maxAgentConnections,
    refusal: (presented) =>
      presented !== undefined && isAllowed(presented)
        ? undefined
        : new UnknownAgentError("not this listener's agent"),
    open: (socket, fingerprint256) => {
      const session = openConnectionSession(socket, {
        runId: options.runId,
        targetId: "callback",
        context: callbackContext(options.runId),
        side: "workstation",
        ...(options.maxSkewMs === undefined ? {} : { maxSkewMs: options.maxSkewMs }),
        ...(options.now === undefined ? {} : { now: options.now }),
      });
      sessions.set(socket, { ...session, fingerprint256 });
      connected.add(`connection from ${session.peer}`);
      socket.once("close", () => session.verifier.close());
    },
    refuse,
  });
  server.on("request", (req: IncomingMessage, res: ServerResponse) => {
    void handle(req, res);
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const socket = req.socket as TLSSocket;
    const session = sessions.get(socket);
    if (session === undefined) {
      refuse(`rejected NO_SESSION from ${socket.remoteAddress ?? "?"}`);
      socket.destroy();
      return;
    }
    try {
      if (new URL(req.url ?? "/", "https://ws").pathname !== CALLBACK_PATH || req.method !== "POST")
        throw new NotFoundError(
          `${req.method ?? "?"} ${oneLine(req.url ?? "", 200)}: only POST ${CALLBACK_PATH}`,
        );
      const body = await readCappedBody(req, maxBodyBytes);
      const soapAction = req.headers.soapaction;
      const operation = operationFromSoapAction(Array.isArray(soapAction) ? undefined : soapAction);
      if (operation === undefined) throw new UnknownOperationError("no SOAPAction of the agent's namespace");
      session.verifier.verify(decodeSecurityHeader(req.headers[SECURITY_HEADER]), operation, body);
      if (operation !== NOTIFY_OPERATION)
        throw new UnknownOperationError(`no operation ${oneLine(operation, 100)} on the callback listener`);
      const message = parseNotify(body.toString("utf8"));
      markHeard(session.fingerprint256);
      try {
        options.onMessage(message, { peer: session.peer, fingerprint256: session.fingerprint256 });
      } catch (cause) {
        throw new InternalAgentError(`onMessage failed: ${(cause as Error).message}`, { cause });
      }
      sendSigned(res, session, 200, responseOperation(NOTIFY_OPERATION), notifyAckEnvelope());
    } catch (error) {
      const failure = isSumacError(error)
        ? error
        : new InternalAgentError(`internal error: ${(error as Error).message}`, { cause: error });
      refuse(`rejected ${failure.code} from ${session.peer}: ${failure.message}`);
      if (res.headersSent || res.destroyed) return;
      const status =
        failure instanceof BodyTooLargeError ? 413 : failure instanceof NotFoundError ? 404 : 500;
      if (status === 413) res.setHeader("connection", "close");
      const xml = faultEnvelope(
        { code: failure.code, retryable: failure.retryable, message: failure.message },
        failure.code === "INTERNAL" ? "Server" : "Client",
      );
      sendSigned(res, session, status, FAULT_OPERATION, xml);
    }
  }

  const bound =
    options.bind !== undefined
      ? await options.bind(server)
      : await bindPort(server, { host: options.host, basePort: options.basePort ?? DEFAULT_CALLBACK_PORT });
  log("info", `listening on ${options.host}:${bound.port}`);
  return {
    port: bound.port,
    busy: bound.busy,
    server,
    heardFrom(fingerprint256, { timeoutMs, signal }) {
      const fp = fingerprint256.toUpperCase();
      if (heard.has(fp)) return Promise.resolve(true);
      // Past the deadline or on abort: false, not an error (the caller says what it means).
      const late = () => new UnknownAgentError(`no callback from ${fp} within ${timeoutMs} ms`);
      return withDeadline({ ms: timeoutMs, timeout: late, signal }, (stop) => {
        let wakers = waiting.get(fp);
        if (wakers === undefined) waiting.set(fp, (wakers = new Set()));
        const set = wakers;
        return new Promise<boolean>((resolve) => {
          const onHeard = (): void => resolve(true);
          set.add(onHeard);
          stop.addEventListener(
            "abort",
            () => {
              set.delete(onHeard);
              if (set.size === 0 && waiting.get(fp) === set) waiting.delete(fp);
            },
            { once: true },
          );
        });
      }).catch(() => false);
    },
    close: () =>
      new Promise((resolve) => {
        refusals.flush();
        connected.flush();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
