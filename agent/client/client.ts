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
import { type AgentLimits, callDeadline } from "../protocol/deadlines.ts";
import { clip } from "../../base/text.ts";
import { readResult, type ResultOf } from "./results.ts";

export interface AgentClientOptions extends AgentConnectOptions {
  readonly runId: string;
  readonly targetId: string;
  /**
   * Deadline of every call that names none of its own. Without it each operation gets the agent's
   * own deadline for it plus a margin (`callDeadline` of agent/protocol/deadlines.ts).
   */
  readonly callTimeoutMs?: number;
  /** The agent's limits when its configuration changed them: its deadlines follow from them. */
  readonly limits?: AgentLimits;
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

/** A call's own deadline and abort signal. */
export interface CallOptions {
  /** Milliseconds for the answer; default the client's callTimeoutMs, else the operation's own. */
  readonly timeoutMs?: number;
  /**
   * Aborting it abandons the call. An HTTP/1.1 request cannot be taken back once sent, so the
   * connection and its session are closed with it: the next call needs a new connection.
   */
  readonly signal?: AbortSignal;
}

const MAX_RESPONSE_BYTES = 8 * 1024 * 1024;

/**
 * A session with one agent.
 *
 * @example
 * const client = await AgentClient.connect({ host, port, caCertPem, certPem, keyPem,
 *   agentFingerprint256, runId, targetId });
 * const hello = await client.call("Hello", {});
 * await client.call("Shutdown", { reason: "done" }, { signal });
 * client.close();
 */
export class AgentClient {
  readonly #socket: TLSSocket;
  readonly #session: ConnectionSession;
  readonly #http: OneSocketAgent;
  readonly #timeoutMs: number | undefined;
  readonly #limits: AgentLimits | undefined;
  #closed = false;
  /** Calls go one at a time so that sequence numbers are sent in the order they were signed. */
  #queue: Promise<unknown> = Promise.resolve();

  private constructor(
    socket: TLSSocket,
    session: ConnectionSession,
    timeouts: { callTimeoutMs?: number | undefined; limits?: AgentLimits | undefined },
  ) {
    this.#socket = socket;
    this.#session = session;
    this.#http = new OneSocketAgent(socket);
    this.#timeoutMs = timeouts.callTimeoutMs;
    this.#limits = timeouts.limits;
    socket.once("close", () => (this.#closed = true));
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
    return new AgentClient(
      socket,
      { ...session, signer: signing.signer },
      { callTimeoutMs: options.callTimeoutMs, limits: options.limits },
    );
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

  /** True once the connection is gone (closed here, by the agent, or lost): calls then fail at once. */
  get closed(): boolean {
    return this.#closed || this.#socket.destroyed;
  }

  /** The deadline of a call of `operation` that names none of its own. */
  deadlineOf(operation: string, fields: XmlFields = {}): number {
    if (this.#timeoutMs !== undefined) return this.#timeoutMs;
    const install = fields.timeoutMs;
    return callDeadline(operation as OperationName, {
      ...(this.#limits === undefined ? {} : { limits: this.#limits }),
      ...(typeof install === "number" ? { installTimeoutMs: install } : {}),
      force: fields.force === true,
    });
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
    options: CallOptions = {},
  ): Promise<ResultOf<Op>> {
    options.signal?.throwIfAborted();
    const element = await this.callRaw(operation, this.prepare(operation, fields), {
      ...options,
      timeoutMs: options.timeoutMs ?? this.deadlineOf(operation, fields),
    });
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
  async callRaw(operation: string, wire: WireRequest, options: CallOptions = {}): Promise<XmlElement> {
    const response = await this.send(wire, options);
    const macOperation = response.status === 200 ? responseOperation(operation) : FAULT_OPERATION;
    this.#session.verifier.verify(decodeSecurityHeader(response.securityHeader), macOperation, response.body);
    const element = bodyElement(parseXmlTree(response.body.toString("utf8")));
    if (element.local === "Fault") throw faultOf(element, response.status);
    if (response.status !== 200 || element.local !== responseOperation(operation))
      throw new AgentResponseError(
        `expected ${responseOperation(operation)}, got ${clip(element.local, 100)} (HTTP ${response.status})`,
      );
    return element;
  }

  /**
   * Sends bytes as they are and returns the answer unverified (the queue keeps calls in order).
   * An abort of `options.signal`, queued or in flight, closes the connection (see CallOptions).
   */
  send(wire: WireRequest, options: CallOptions = {}): Promise<WireResponse> {
    const { signal } = options;
    const timeoutMs = options.timeoutMs ?? this.#timeoutMs ?? callDeadline("Hello");
    let onAbort: (() => void) | undefined;
    const aborted =
      signal === undefined
        ? undefined
        : new Promise<never>((_, reject) => {
            onAbort = () => {
              this.close();
              reject(
                new AgentConnectionError("agent call abandoned: its step was stopped", {
                  cause: signal.reason,
                }),
              );
            };
            if (signal.aborted) onAbort();
            else signal.addEventListener("abort", onAbort, { once: true });
          });
    aborted?.catch(() => undefined);
    const run = this.#queue.then(() => {
      signal?.throwIfAborted();
      return this.#sendNow(wire, timeoutMs);
    });
    this.#queue = run.catch(() => undefined);
    if (aborted === undefined) return run;
    return Promise.race([run, aborted]).finally(() => {
      if (onAbort !== undefined) signal?.removeEventListener("abort", onAbort);
    });
  }

  /** Closes the connection; the session ends with it. */
  close(): void {
    this.#closed = true;
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

/** A fault's code and message from an agent are cut to these lengths. */
export const FAULT_CODE_CHARS = 64;
export const FAULT_MESSAGE_CHARS = 4096;

/** The error of a SOAP fault from an agent, its code and message cut to their lengths. */
export function faultOf(fault: XmlElement, status: number): AgentFaultError {
  const detail = childElement(fault, "detail");
  const agentFault = detail === undefined ? undefined : childElement(detail, "AgentFault");
  const text = (name: string) =>
    agentFault === undefined ? "" : (childElement(agentFault, name)?.text ?? "");
  return new AgentFaultError({
    code: clip(text("code"), FAULT_CODE_CHARS) || "UNKNOWN_FAULT",
    message: clip(text("message") || (childElement(fault, "faultstring")?.text ?? ""), FAULT_MESSAGE_CHARS),
    status,
  });
}
