/**
 * The workstation's client of one agent: one pinned mutual-TLS connection (`agent/protocol/pinned-connection.ts`),
 * one message-security session on it, every request signed and every answer's security header
 * verified before its XML is read.
 *
 * Envelopes are built here (`agent/protocol/soap-envelope.ts`) rather than with `soap`'s client: the MAC must
 * cover the exact bytes sent and the header must travel on the same request, and `soap`'s client
 * builds its body internally and sends through axios on connections of its own choosing, so it
 * would need a custom HTTP client to keep the one session socket and see the bytes. Building the
 * few envelopes of this WSDL takes ~30 lines and no dependency on the workstation's hot path.
 */
import { postSigned, type SignedAnswer } from "../protocol/signed-http.ts";
import type { TLSSocket } from "node:tls";
import { AgentConnectionError, AgentFaultError, AgentResponseError } from "../protocol/errors.ts";
import { type AgentConnectOptions, connectToAgent, OneSocketAgent } from "../protocol/pinned-connection.ts";
import { type ConnectionSession, openConnectionSession } from "../protocol/connection-session.ts";
import {
  AGENT_PATH,
  decodeSecurityHeader,
  encodeSecurityHeader,
  FAULT_OPERATION,
  responseOperation,
  soapAction,
  type OperationName,
} from "../protocol/wire.ts";
import { bodyElement, requestEnvelope, type XmlFields } from "../protocol/soap-envelope.ts";
import { childElement, parseXmlTree, type XmlElement } from "../protocol/xml-tree.ts";
import { readResult, type ResultOf } from "./results.ts";

export interface AgentClientOptions extends AgentConnectOptions {
  readonly runId: string;
  readonly targetId: string;
  /** Deadline of each call unless the call names its own; default 60 s. */
  readonly callTimeoutMs?: number;
  readonly maxSkewMs?: number;
  /** The clock of the response verifier and (unless signNow) of the signer. */
  readonly now?: () => number;
  /** The signer's clock, when it must differ (tests of clock skew). */
  readonly signNow?: () => number;
}

/** A request as it goes on the wire: what tests capture, alter and replay. */
export interface WireRequest {
  readonly soapAction: string;
  readonly body: Buffer;
  readonly securityHeader: string;
}

/** An answer as it came off the wire. */
export type WireResponse = Readonly<SignedAnswer>;

const MAX_RESPONSE_BYTES = 8 * 1024 * 1024;

/**
 * A session with one agent.
 *
 * @example
 * const client = await AgentClient.connect({ host, port, caCertPem, certPem, keyPem,
 *   agentFingerprint256, runId, targetId });
 * const hello = await client.call("Hello", {});
 * await client.call("Shutdown", { reason: "done" });
 * client.close();
 */
export class AgentClient {
  readonly #socket: TLSSocket;
  readonly #session: ConnectionSession;
  readonly #http: OneSocketAgent;
  readonly #timeoutMs: number;
  /** Calls go one at a time so that sequence numbers are sent in the order they were signed. */
  #queue: Promise<unknown> = Promise.resolve();

  private constructor(socket: TLSSocket, session: ConnectionSession, timeoutMs: number) {
    this.#socket = socket;
    this.#session = session;
    this.#http = new OneSocketAgent(socket);
    this.#timeoutMs = timeoutMs;
  }

  /** Connects, checks the agent's identity, and opens the session. */
  static async connect(options: AgentClientOptions): Promise<AgentClient> {
    const socket = await connectToAgent(options);
    const session = openConnectionSession(socket, {
      runId: options.runId,
      targetId: options.targetId,
      side: "workstation",
      ...(options.maxSkewMs === undefined ? {} : { maxSkewMs: options.maxSkewMs }),
      ...(options.now === undefined ? {} : { now: options.now }),
    });
    const signNow = options.signNow;
    const signing =
      signNow === undefined
        ? session
        : openConnectionSession(socket, {
            runId: options.runId,
            targetId: options.targetId,
            side: "workstation",
            now: signNow,
          });
    return new AgentClient(socket, { ...session, signer: signing.signer }, options.callTimeoutMs ?? 60_000);
  }

  /** This connection's session id (the agent reports the same in Hello). */
  get sessionId(): string {
    return this.#session.sessionId;
  }

  /**
   * The agent's clock minus this one's, in ms, as measured on the session's first verified answer
   * (Hello's); later answers are judged against it. Undefined before the first answer.
   */
  get clockOffsetMs(): number | undefined {
    return this.#session.verifier.offsetMs;
  }

  /** The underlying TLS socket (for tests that need to see it close). */
  get socket(): TLSSocket {
    return this.#socket;
  }

  /**
   * Calls `operation` and returns its typed result.
   *
   * @throws AgentFaultError with the agent's code; AgentConnectionError; a MessageSecurityError when
   * the answer fails verification.
   */
  async call<Op extends OperationName>(
    operation: Op,
    fields: XmlFields,
    options: { timeoutMs?: number } = {},
  ): Promise<ResultOf<Op>> {
    const element = await this.callRaw(operation, this.prepare(operation, fields), options);
    return readResult(operation, element);
  }

  /** Signs a request for `operation` now (the next sequence number is used). */
  prepare(operation: string, fields: XmlFields): WireRequest {
    return this.signBody(operation, Buffer.from(requestEnvelope(operation, fields), "utf8"));
  }

  /** Signs `body` as it is, for `operation` (tests send hand-made envelopes with it). */
  signBody(operation: string, body: Buffer): WireRequest {
    const header = this.#session.signer.sign(operation, body);
    return {
      soapAction: soapAction(operation as OperationName),
      body,
      securityHeader: encodeSecurityHeader(header),
    };
  }

  /** Sends a prepared (possibly tampered) request, verifies the answer, returns its body element. */
  async callRaw(
    operation: string,
    wire: WireRequest,
    options: { timeoutMs?: number } = {},
  ): Promise<XmlElement> {
    const response = await this.send(wire, options);
    const macOperation = response.status === 200 ? responseOperation(operation) : FAULT_OPERATION;
    this.#session.verifier.verify(decodeSecurityHeader(response.securityHeader), macOperation, response.body);
    const element = bodyElement(parseXmlTree(response.body.toString("utf8")));
    if (element.local === "Fault") throw faultOf(element, response.status);
    if (response.status !== 200 || element.local !== responseOperation(operation))
      throw new AgentResponseError(
        `expected ${responseOperation(operation)}, got ${element.local} (HTTP ${response.status})`,
      );
    return element;
  }

  /** Sends bytes as they are and returns the answer unverified (the queue keeps calls in order). */
  send(wire: WireRequest, options: { timeoutMs?: number } = {}): Promise<WireResponse> {
    const run = this.#queue.then(() => this.#sendNow(wire, options.timeoutMs ?? this.#timeoutMs));
    this.#queue = run.catch(() => undefined);
    return run;
  }

  /** Closes the connection; the session ends with it. */
  close(): void {
    this.#http.destroy();
    this.#socket.destroy();
  }

  #sendNow(wire: WireRequest, timeoutMs: number): Promise<WireResponse> {
    return postSigned({
      agent: this.#http,
      path: AGENT_PATH,
      ...wire,
      timeoutMs,
      maxBytes: MAX_RESPONSE_BYTES,
    }).catch((error: Error) => Promise.reject(wrap(error)));
  }
}

function wrap(error: Error): Error {
  if (error instanceof AgentResponseError || error instanceof AgentConnectionError) return error;
  return new AgentConnectionError(`agent call failed: ${error.message}`, { cause: error });
}

function faultOf(fault: XmlElement, status: number): AgentFaultError {
  const detail = childElement(fault, "detail");
  const agentFault = detail === undefined ? undefined : childElement(detail, "AgentFault");
  const text = (name: string) =>
    agentFault === undefined ? "" : (childElement(agentFault, name)?.text ?? "");
  return new AgentFaultError({
    code: text("code") || "UNKNOWN_FAULT",
    message: text("message") || (childElement(fault, "faultstring")?.text ?? ""),
    status,
  });
}
