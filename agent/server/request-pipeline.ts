/**
 * What happens to one HTTP request before and after `soap`, in this order:
 *
 * 1. path and method (404 NOT_FOUND);
 * 2. the body, capped while it is read (413 BODY_TOO_LARGE, then the connection is closed);
 * 3. the SOAPAction's operation name (UNKNOWN_OPERATION when there is none); the agent stopping
 *    (SHUTTING_DOWN) for every operation but Shutdown, which may come again with force while a stop
 *    waits for an install;
 * 4. the security header and MAC over the raw body (MALFORMED_HEADER, UNKNOWN_SESSION, BAD_MAC,
 *    STALE_TIMESTAMP, FUTURE_TIMESTAMP, REPLAYED, OUT_OF_ORDER). From here the message is
 *    authenticated: it consumed a sequence number, and it resets the idle clock;
 * 5. the operation known to the WSDL (UNKNOWN_OPERATION);
 * 6. the XML guard: no DOCTYPE/ENTITY (XML_FORBIDDEN), well-formed, a SOAP envelope whose body
 *    element is the operation (MALFORMED_XML, UNKNOWN_OPERATION);
 * 7. `soap` and the operation's handler, under the operation's deadline.
 *
 * Every answer, fault or not, is signed in the agent-to-workstation direction, so the
 * workstation can trust a fault as much as a result. Every rejection is logged with its code,
 * reason and peer.
 */
import { sendSigned } from "../protocol/signed-http.ts";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { TLSSocket } from "node:tls";
import {
  BodyTooLargeError,
  InternalAgentError,
  NotFoundError,
  ShuttingDownError,
  UnknownOperationError,
} from "../protocol/errors.ts";
import { type SumacError, isSumacError } from "../../base/errors.ts";
import type { AgentLog } from "./agent-log.ts";
import { oneLine } from "../../base/text.ts";
import { readCappedBody } from "../protocol/body-reader.ts";
import type { ConnectionSession } from "../protocol/connection-session.ts";
import {
  AGENT_PATH,
  decodeSecurityHeader,
  FAULT_OPERATION,
  isOperation,
  operationFromSoapAction,
  responseOperation,
  SECURITY_HEADER,
} from "../protocol/wire.ts";
import { checkRequestOperation, faultEnvelope } from "../protocol/soap-envelope.ts";
import type { AgentSoapService } from "./soap-service.ts";
import { parseXmlTree } from "../protocol/xml-tree.ts";

/** What the pipeline needs from the server around it. */
export interface PipelineDeps {
  sessionOf(socket: TLSSocket): ConnectionSession | undefined;
  readonly soap: AgentSoapService;
  readonly maxBodyBytes: number;
  readonly log: AgentLog;
  readonly port: () => number;
  readonly stopping: () => boolean;
  /** Marks an authenticated request in progress (idle clock); returns its end. */
  readonly busy: () => () => void;
  /** Called once the answer to a successful Shutdown has been sent. */
  readonly onShutdownAnswered: () => void;
}

/** Handles one request; never rejects (every failure becomes a signed fault or a closed socket). */
export async function handleAgentRequest(
  req: IncomingMessage,
  res: ServerResponse,
  deps: PipelineDeps,
): Promise<void> {
  const socket = req.socket as TLSSocket;
  const session = deps.sessionOf(socket);
  if (session === undefined) {
    // The session opens at secureConnection; without one the connection cannot be answered signed.
    deps.log.reject(
      `rejected NO_SESSION from ${socket.remoteAddress ?? "?"}: request before the session opened`,
    );
    socket.destroy();
    return;
  }
  let operation: string | undefined;
  try {
    if (new URL(req.url ?? "/", "https://agent").pathname !== AGENT_PATH || req.method !== "POST")
      throw new NotFoundError(`${req.method ?? "?"} ${oneLine(req.url ?? "", 200)}: only POST ${AGENT_PATH}`);
    const body = await readCappedBody(req, deps.maxBodyBytes);
    operation = operationFromSoapAction(headerValue(req.headers.soapaction));
    if (operation === undefined) throw new UnknownOperationError("no SOAPAction of the agent's namespace");
    if (deps.stopping() && operation !== "Shutdown")
      throw new ShuttingDownError("the agent is shutting down");

    session.verifier.verify(decodeSecurityHeader(req.headers[SECURITY_HEADER]), operation, body);
    const done = deps.busy();
    try {
      await answer(res, deps, session, operation, body);
    } finally {
      done();
    }
  } catch (error) {
    reject(res, deps, session, toAgentError(error), operation);
  }
}

async function answer(
  res: ServerResponse,
  deps: PipelineDeps,
  session: ConnectionSession,
  operation: string,
  body: Buffer,
): Promise<void> {
  if (!isOperation(operation)) throw new UnknownOperationError(`no operation ${oneLine(operation, 100)}`);
  const xml = body.toString("utf8");
  checkRequestOperation(parseXmlTree(xml), operation);
  const outcome = await deps.soap.process(xml, operation, {
    sessionId: session.sessionId,
    peer: session.peer,
    port: deps.port(),
  });
  if (!outcome.ok) throw outcome.error;
  deps.log.write("info", `${operation} from ${session.peer}: ok`);
  if (operation === "Shutdown") res.once("finish", deps.onShutdownAnswered);
  sendSigned(res, session, 200, responseOperation(operation), outcome.body);
}

function reject(
  res: ServerResponse,
  deps: PipelineDeps,
  session: ConnectionSession,
  error: SumacError,
  operation: string | undefined,
): void {
  deps.log.reject(
    `rejected ${error.code} from ${session.peer} (${oneLine(operation ?? "no operation", 100)}): ${error.message}`,
  );
  if (res.headersSent || res.destroyed) return;
  const status = error instanceof BodyTooLargeError ? 413 : error instanceof NotFoundError ? 404 : 500;
  const side = error.code === "INTERNAL" || error.code === "DEADLINE_EXCEEDED" ? "Server" : "Client";
  const body = faultEnvelope({ code: error.code, retryable: error.retryable, message: error.message }, side);
  if (status === 413) {
    // The rest of the body is never read: answer, close our side, and drop whatever still arrives
    // (discarded, not buffered) until the client closes or a grace period ends, so the client
    // reads the answer instead of a reset.
    res.setHeader("connection", "close");
    res.once("finish", () => {
      const socket = res.socket;
      if (socket === null) return;
      socket.end();
      socket.resume();
      setTimeout(() => socket.destroy(), 2000).unref();
    });
  }
  sendSigned(res, session, status, FAULT_OPERATION, body);
}

function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? undefined : value;
}

function toAgentError(error: unknown): SumacError {
  if (isSumacError(error)) return error;
  return new InternalAgentError(`internal error: ${error instanceof Error ? error.message : String(error)}`, {
    cause: error,
  });
}
