/**
 * The agent's side of the callback channel: a pinned mutual-TLS connection to
 * the workstation's callback listener (`agent/client/callback-listener.ts`), presenting the agent's
 * client leaf (which that listener pins in turn), opened on first use, with a
 * message-security session from its TLS exporter (context `callbackContext(runId)`); each message
 * a signed `Notify` whose signed acknowledgement is verified.
 *
 * Best effort: messages go one at a time in the order given, each under a deadline; a failure is
 * logged and dropped (the connection is dropped with it, the next message connects again), and
 * {@link CallbackClient.send} never rejects, so nothing here can stop an install. After a failure
 * messages are dropped unsent for a short back-off, so an unreachable workstation costs one
 * deadline, not one per output line.
 */
import { withDeadline } from "../../base/deadline.ts";
import { postSigned, type SignedAnswer } from "../protocol/signed-http.ts";
import type { TLSSocket } from "node:tls";
import type { AgentLog } from "./agent-log.ts";
import type { CallbackTarget } from "../protocol/start-up.ts";
import { type CallbackMessage, notifyEnvelope } from "../protocol/callback-messages.ts";
import { connectToAgent, OneSocketAgent } from "../protocol/pinned-connection.ts";
import { type ConnectionSession, openConnectionSession } from "../protocol/connection-session.ts";
import { AgentFaultError, AgentResponseError } from "../protocol/errors.ts";
import {
  AGENT_NAMESPACE,
  CALLBACK_PATH,
  callbackContext,
  decodeSecurityHeader,
  encodeSecurityHeader,
  FAULT_OPERATION,
  NOTIFY_OPERATION,
  responseOperation,
} from "../protocol/wire.ts";
import { bodyElement } from "../protocol/soap-envelope.ts";
import { childElement, parseXmlTree } from "../protocol/xml-tree.ts";

/** Where the workstation's callback listener is, as the agent's config gives it. */
export interface CallbackClientOptions {
  readonly target: CallbackTarget;
  readonly runId: string;
  readonly caCertPem: string;
  /** The agent's client leaf for callbacks (clientAuth; the listener pins it) and its key. */
  readonly certPem: string;
  readonly keyPem: string;
  readonly log: AgentLog;
  /** Deadline of one message, connection included; default 10 s. */
  readonly timeoutMs?: number;
  /** Messages dropped unsent after a failure, for this long; default 5 s. */
  readonly backoffMs?: number;
  /** Messages waiting beyond this many are dropped; default 1000. */
  readonly maxQueued?: number;
  /** Messages waiting beyond this many bytes of text are dropped; default 1 MiB. */
  readonly maxQueuedBytes?: number;
  readonly now?: () => number;
}

/** A signed request as sent (tests replay it). */
export interface CallbackWire {
  readonly body: Buffer;
  readonly securityHeader: string;
}

/** The answer to a request, unverified. */
export type CallbackWireResponse = Readonly<SignedAnswer>;

interface Connection {
  readonly socket: TLSSocket;
  readonly session: ConnectionSession;
  readonly http: OneSocketAgent;
}

const MAX_ANSWER_BYTES = 64 * 1024;
/** The default bound of the callbacks waiting to be sent: beyond it they are counted, not kept. */
export const CALLBACK_QUEUE = { messages: 1000, bytes: 1024 * 1024 } as const;

/** While output keeps overflowing the queue, how often the count of what was dropped is sent. */
export const OVERFLOW_REPORT_MS = 10_000;

export class CallbackClient {
  readonly #options: CallbackClientOptions;
  #connection: Promise<Connection> | undefined;
  #queue: Promise<unknown> = Promise.resolve();
  #queued = 0;
  #queuedBytes = 0;
  /** Messages dropped for a full queue since the last report of them. */
  readonly #overflow = { messages: 0, lines: 0, bytes: 0 };
  /** When an overflow was last reported, whether one ever was, and what was dropped in all. */
  #overflowSaidAt = 0;
  #overflowed = false;
  readonly #dropsTotal = { messages: 0, lines: 0, bytes: 0 };
  #backoffUntil = 0;
  #closed = false;
  #lastAcknowledged: number | undefined;

  constructor(options: CallbackClientOptions) {
    this.#options = options;
  }

  /**
   * Queues `message`; resolves true once the listener acknowledged it, false when it was dropped
   * (failure, back-off, full queue, closed). Never rejects. Once the queue is full (in messages or
   * bytes), what comes is dropped and counted until the queue has drained to half; the count is
   * then told to the workstation in one `log` message (at most every {@link OVERFLOW_REPORT_MS}
   * while output keeps coming, and before any other kind of message) and written to the agent's
   * log, once per overflow rather than once per line.
   */
  send(message: CallbackMessage): Promise<boolean> {
    const {
      maxQueued = CALLBACK_QUEUE.messages,
      maxQueuedBytes = CALLBACK_QUEUE.bytes,
      now = Date.now,
    } = this.#options;
    if (this.#closed) return Promise.resolve(false);
    const bytes = textBytes(message);
    const full = this.#queued >= maxQueued || this.#queuedBytes + bytes > maxQueuedBytes;
    // Output waits for the queue to drain to half, and for the next report's time; other
    // messages (progress, results, heartbeats) only for room.
    const draining =
      this.#overflow.messages > 0 &&
      message.kind === "log" &&
      (this.#queued > maxQueued / 2 ||
        this.#queuedBytes > maxQueuedBytes / 2 ||
        now() - this.#overflowSaidAt < OVERFLOW_REPORT_MS);
    if (full || draining) {
      if (!this.#overflowed)
        this.#options.log.write(
          "warn",
          `callbacks dropped from here: ${this.#queued} messages (${this.#queuedBytes} bytes) waiting`,
        );
      this.#overflowed = true;
      this.#overflow.messages++;
      if (message.kind === "log") {
        this.#overflow.lines++;
        this.#overflow.bytes += Buffer.byteLength(message.line);
      }
      return Promise.resolve(false);
    }
    if (this.#overflow.messages > 0) this.#reportOverflow();
    return this.#enqueue(message, bytes);
  }

  #reportOverflow(): void {
    const { now = Date.now } = this.#options;
    const { messages, lines, bytes } = this.#overflow;
    this.#overflow.messages = this.#overflow.lines = this.#overflow.bytes = 0;
    this.#overflowSaidAt = now();
    this.#dropsTotal.messages += messages;
    this.#dropsTotal.lines += lines;
    this.#dropsTotal.bytes += bytes;
    const total = this.#dropsTotal;
    this.#options.log.write(
      "warn",
      `callbacks dropped: ${messages} messages, ${lines} output lines (${bytes} bytes); ` +
        `${total.lines} output lines (${total.bytes} bytes) so far`,
    );
    const line = `agent: ${lines} output lines (${bytes} bytes) not sent: the workstation did not take them as fast as they came`;
    if (lines > 0) void this.#enqueue({ kind: "log", line }, line.length);
  }

  #enqueue(message: CallbackMessage, bytes: number): Promise<boolean> {
    this.#queued++;
    this.#queuedBytes += bytes;
    const run = this.#queue.then(() => this.#deliver(message));
    this.#queue = run;
    return run.finally(() => {
      this.#queued--;
      this.#queuedBytes -= bytes;
    });
  }

  /**
   * Resolves once every queued message is delivered or dropped, or after `ms`, with how many were
   * still waiting then (0 when all were through); a count of dropped output not yet told goes first.
   */
  async flush(ms: number): Promise<number> {
    if (this.#overflow.messages > 0 && !this.#closed) this.#reportOverflow();
    const late = new Error(`callbacks still queued after ${ms} ms`);
    await withDeadline({ ms, timeout: late }, () => this.#queue).catch(() => undefined);
    return this.#queued;
  }

  /** When the listener last acknowledged a message (ms since the epoch, on `now`), if ever. */
  get lastAcknowledged(): number | undefined {
    return this.#lastAcknowledged;
  }

  /** Drops the connection; later messages are dropped. */
  close(): void {
    this.#closed = true;
    this.#drop();
  }

  /** Signs `message` for the current connection (opening it), for tests that replay or alter it. */
  async prepare(message: CallbackMessage): Promise<CallbackWire> {
    const connection = await this.#connect();
    return this.#sign(connection, Buffer.from(notifyEnvelope(message), "utf8"));
  }

  /** Sends a prepared request as it is on the current connection; the answer comes back unverified. */
  async sendWire(wire: CallbackWire): Promise<CallbackWireResponse> {
    const connection = await this.#connect();
    return post(connection.http, wire, this.#options.timeoutMs ?? 10_000);
  }

  async #deliver(message: CallbackMessage): Promise<boolean> {
    const { log, backoffMs = 5_000, timeoutMs = 10_000, now = Date.now } = this.#options;
    if (this.#closed) return false;
    if (now() < this.#backoffUntil) return false;
    const timeout = () => new AgentResponseError(`no acknowledgement within ${timeoutMs} ms`);
    try {
      await withDeadline({ ms: timeoutMs, timeout }, () => this.#exchange(message));
      this.#lastAcknowledged = now();
      return true;
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      log.write(
        "warn",
        `callback ${message.kind} not delivered: ${typeof code === "string" ? code : "ERROR"} ${(error as Error).message}` +
          ` (dropping messages for ${backoffMs} ms)`,
      );
      this.#backoffUntil = now() + backoffMs;
      this.#drop();
      return false;
    }
  }

  async #exchange(message: CallbackMessage): Promise<void> {
    const connection = await this.#connect();
    const wire = this.#sign(connection, Buffer.from(notifyEnvelope(message), "utf8"));
    const answer = await post(connection.http, wire, this.#options.timeoutMs ?? 10_000);
    const macOperation = answer.status === 200 ? responseOperation(NOTIFY_OPERATION) : FAULT_OPERATION;
    connection.session.verifier.verify(
      decodeSecurityHeader(answer.securityHeader),
      macOperation,
      answer.body,
    );
    const element = bodyElement(parseXmlTree(answer.body.toString("utf8")));
    if (element.local === "Fault") {
      const fault = childElement(childElement(element, "detail") ?? element, "AgentFault");
      const text = (name: string) => (fault === undefined ? "" : (childElement(fault, name)?.text ?? ""));
      throw new AgentFaultError({
        code: text("code") || "UNKNOWN_FAULT",
        message: text("message"),
        status: answer.status,
      });
    }
    if (answer.status !== 200 || element.uri !== AGENT_NAMESPACE || element.local !== "NotifyResponse")
      throw new AgentResponseError(`expected NotifyResponse, got ${element.local} (HTTP ${answer.status})`);
  }

  #sign(connection: Connection, body: Buffer): CallbackWire {
    const header = connection.session.signer.sign(NOTIFY_OPERATION, body);
    return { body, securityHeader: encodeSecurityHeader(header) };
  }

  #connect(): Promise<Connection> {
    this.#connection ??= this.#open();
    const opening = this.#connection;
    opening.catch(() => {
      if (this.#connection === opening) this.#connection = undefined;
    });
    return opening;
  }

  async #open(): Promise<Connection> {
    const { target, runId, caCertPem, certPem, keyPem, timeoutMs = 10_000, now } = this.#options;
    const socket = await connectToAgent({
      host: target.host,
      port: target.port,
      caCertPem,
      certPem,
      keyPem,
      agentFingerprint256: target.fingerprint256,
      connectTimeoutMs: timeoutMs,
    });
    const session = openConnectionSession(socket, {
      runId,
      targetId: "callback",
      context: callbackContext(runId),
      side: "agent",
      ...(now === undefined ? {} : { now }),
    });
    const connection = { socket, session, http: new OneSocketAgent(socket) };
    socket.once("close", () => {
      void this.#connection?.then((c) => {
        if (c === connection) this.#connection = undefined;
      });
    });
    return connection;
  }

  #drop(): void {
    const current = this.#connection;
    this.#connection = undefined;
    void current?.then(
      (c) => {
        c.http.destroy();
        c.socket.destroy();
      },
      () => undefined,
    );
  }
}

/** What a message costs the queue: its text. */
function textBytes(message: CallbackMessage): number {
  switch (message.kind) {
    case "log":
      return 64 + message.line.length;
    case "progress":
      return 64 + message.step.length;
    case "installResult":
      return 64 + message.component.length;
    case "heartbeat":
      return 64;
  }
}

function post(http: OneSocketAgent, wire: CallbackWire, timeoutMs: number): Promise<CallbackWireResponse> {
  const soapAction = `${AGENT_NAMESPACE}#${NOTIFY_OPERATION}`;
  return postSigned({
    agent: http,
    path: CALLBACK_PATH,
    soapAction,
    ...wire,
    timeoutMs,
    maxBytes: MAX_ANSWER_BYTES,
  });
}
