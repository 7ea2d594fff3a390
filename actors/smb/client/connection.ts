/**
 * One TCP connection to an SMB2 server (MS-SMB2 3.2.4.1, 3.2.5.1): requests go out with a
 * MessageId and credits from the {@link CreditWindow}, signed or encrypted as the session says;
 * answers come back routed by MessageId, decrypted and verified first. A STATUS_PENDING interim
 * answer (MS-SMB2 3.2.5.1.5) keeps its request waiting; a request given up sends SMB2 CANCEL
 * (MS-SMB2 3.2.4.24). When the socket closes, every request in flight fails with CONNECTION_LOST.
 */
import type net from "node:net";
import { withDeadline } from "../../../base/deadline.ts";
import { Command, decodeHeader, HeaderFlag, encodeHeader, type Smb2Header } from "../codec/header.ts";
import { encodeCancelRequest } from "../codec/cancel.ts";
import { CreditWindow } from "./credits.ts";
import { SmbConnectionLostError, SmbNoCreditsError, SmbTimeoutError } from "./errors.ts";
import { MalformedPacketError } from "../../wire/bytes.ts";
import { Deframer, FRAME_HEADER_SIZE, MAX_FRAME_LENGTH } from "./framing.ts";
import { connectSocket } from "./socket.ts";
import {
  integrityError,
  protectionProblem,
  isInterim,
  misdirectedAnswer,
  type SessionSecurity,
  splitCompound,
  TRANSFORM_PROTOCOL_ID,
} from "./security.ts";

/** A request's deadline and the signal that gives it up (every call of the client takes one). */
export interface CallOptions {
  readonly timeoutMs: number;
  readonly signal?: AbortSignal | undefined;
}

/** Frames accepted before NEGOTIATE says the sizes (its answer and SESSION_SETUP's are small). */
export const INITIAL_FRAME_CAP = 128 * 1024;
/** Room over the largest payload for the header, a response's fixed part and a transform header. */
const FRAME_HEADROOM = 64 * 1024;

/** One SMB2 request: its command and body; the connection writes the header. */
export interface SmbRequest {
  readonly command: number;
  /** The body (MS-SMB2 2.2.x); its offsets count from the start of the header. */
  readonly body: Buffer;
  readonly treeId?: number;
  /** Bytes the request moves (written, read, transacted at most) for its CreditCharge. */
  readonly payloadSize?: number;
  /** Encrypt it (a tree with SMB2_SHAREFLAG_ENCRYPT_DATA) even when the session does not. */
  readonly encrypt?: boolean;
  /** Sign it even when the session does not sign everything (3.1.1's TREE_CONNECT). */
  readonly sign?: boolean;
  /** Send it unsigned and take its answer unsigned (SESSION_SETUP before the key exists). */
  readonly unsigned?: boolean;
  /** The session id to send, when not the session's (SESSION_SETUP during the exchange). */
  readonly sessionId?: bigint;
  /**
   * The whole message built by the caller, its first 64 bytes left for the header (`body` is then
   * empty): the connection writes the header there and signs or encrypts it as it is, without
   * copying it (an upload's WRITEs, in reused buffers). The caller must not touch it until the
   * answer has come.
   */
  readonly inPlace?: Buffer;
  /**
   * Called with a successful answer that came after the request was given up (its deadline, an
   * abort): what it opened on the server (a CREATE's handle) is closed there by the caller.
   */
  readonly late?: (response: SmbResponse) => void;
}

/** An answer: its header and the whole message (header and body, as codecs decode it). */
export interface SmbResponse {
  readonly header: Smb2Header;
  readonly message: Buffer;
  /** The request as it went on the wire before any encryption (for the pre-auth hash). */
  readonly request: Buffer;
}

interface InFlight {
  /** The request as sent; only its header once given up (a silent server must not keep its body). */
  request: Buffer;
  readonly command: number;
  readonly expectSigned: boolean;
  readonly encrypted: boolean;
  asyncId?: bigint;
  /** Given up: its answer, when it comes, only settles credits (and goes to `late`). */
  abandoned: boolean;
  readonly late?: ((response: SmbResponse) => void) | undefined;
  readonly resolve: (response: SmbResponse) => void;
  readonly reject: (error: Error) => void;
}

/** Where to connect, or a socket already connected (through the NetBIOS session service). */
export interface ConnectionOptions extends CallOptions {
  readonly host: string;
  readonly port: number;
  readonly socket?: net.Socket | undefined;
}

/**
 * The connection. {@link send} is the one way to talk to the server.
 *
 * @example
 * const conn = await SmbConnection.open({ host, port: 445, timeoutMs: 10_000 });
 * const { header, message } = await conn.send({ command: Command.ECHO, body }, { timeoutMs: 5_000 });
 */
export class SmbConnection {
  readonly host: string;
  readonly credits = new CreditWindow();
  private readonly socket: net.Socket;
  private readonly deframer = new Deframer(INITIAL_FRAME_CAP);
  private readonly inFlight = new Map<bigint, InFlight>();
  private security: SessionSecurity | undefined;
  private lost: Error | undefined;
  private readonly closedPromise: Promise<void>;

  private constructor(host: string, socket: net.Socket) {
    this.host = host;
    this.socket = socket;
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 30_000);
    this.closedPromise = new Promise((resolve) => socket.once("close", () => resolve()));
    socket.on("data", (chunk: Buffer) => this.receive(chunk));
    socket.on("error", (err) =>
      this.fail(new SmbConnectionLostError(`${host}: ${err.message}`, { cause: err })),
    );
    socket.on("close", () => this.fail(new SmbConnectionLostError(`${host}: the connection closed`)));
    // A socket handed over paused (openNetbiosSession pauses it to keep what follows its answer)
    // stays paused when a 'data' listener is added: it must be resumed to flow.
    socket.resume();
  }

  /** Connects (or takes `options.socket`) within the deadline; UNREACHABLE when it cannot. */
  static async open(options: ConnectionOptions): Promise<SmbConnection> {
    const socket = options.socket ?? (await connectSocket(options));
    if (socket.destroyed) throw new SmbConnectionLostError(`${options.host}: the socket given is closed`);
    return new SmbConnection(options.host, socket);
  }

  /** Why the connection is gone, once it is. */
  get closedBy(): Error | undefined {
    return this.lost;
  }

  /** Resolves once the socket has closed. */
  get closed(): Promise<void> {
    return this.closedPromise;
  }

  /** After NEGOTIATE: multi-credit from 2.1 on, and frames up to the largest negotiated size. */
  negotiated(options: { multiCredit: boolean; maxPayload: number }): void {
    this.credits.setMultiCredit(options.multiCredit);
    this.deframer.setCap(Math.min(options.maxPayload + FRAME_HEADROOM, 0xffffff));
  }

  /** From SESSION_SETUP's success on: sign, verify, encrypt and decrypt with the session's keys. */
  secure(security: SessionSecurity | undefined): void {
    this.security = security;
  }

  /**
   * Sends a request and resolves with its final answer, whatever its status (callers decide what
   * a status means). Rejects with TIMEOUT past the deadline, SMB_NO_CREDITS when no credits come,
   * SMB_INTEGRITY_FAILED when the answer is not signed or sealed as it must be, CONNECTION_LOST.
   */
  send(request: SmbRequest, options: CallOptions): Promise<SmbResponse> {
    if (this.lost) return Promise.reject(this.lost);
    let waitingForCredits = true;
    const what = `SMB2 command 0x${request.command.toString(16)} to ${this.host}`;
    return withDeadline(
      {
        ms: options.timeoutMs,
        signal: options.signal,
        timeout: () =>
          waitingForCredits
            ? new SmbNoCreditsError(`${what}: no credits granted within ${options.timeoutMs} ms`)
            : new SmbTimeoutError(`${what}: no answer within ${options.timeoutMs} ms`),
      },
      async (stop) => {
        const grant = await this.credits.take(request.payloadSize ?? 0, stop);
        waitingForCredits = false;
        if (this.lost) {
          this.credits.settled();
          throw this.lost;
        }
        return new Promise<SmbResponse>((resolve, reject) => {
          const security = request.command === Command.NEGOTIATE ? undefined : this.security;
          const encrypted =
            security?.seal !== undefined &&
            request.command !== Command.SESSION_SETUP &&
            (request.encrypt === true || security.encryptAll);
          const sign =
            !encrypted &&
            security?.sign !== undefined &&
            request.unsigned !== true &&
            (security.signAll || request.sign === true);
          const header = encodeHeader({
            creditCharge: grant.creditCharge,
            status: 0,
            command: request.command,
            credits: grant.creditRequest,
            flags: sign ? HeaderFlag.SIGNED : 0,
            nextCommand: 0,
            messageId: grant.messageId,
            treeId: request.treeId ?? 0,
            sessionId: request.sessionId ?? security?.sessionId ?? 0n,
            signature: Buffer.alloc(16),
          });
          const message = request.inPlace ?? Buffer.concat([header, request.body]);
          if (request.inPlace !== undefined) header.copy(message, 0);
          let wire: Buffer | readonly Buffer[];
          try {
            if (sign) security.sign(message);
            wire = encrypted ? security.seal.encrypt(message) : message;
          } catch (err) {
            this.credits.settled(); // never sent: no answer will settle it
            throw err;
          }
          const entry: InFlight = {
            request: message,
            command: request.command,
            expectSigned: sign,
            encrypted,
            abandoned: false,
            late: request.late,
            resolve,
            reject,
          };
          this.inFlight.set(grant.messageId, entry);
          stop.addEventListener("abort", () => this.abandon(grant.messageId, entry), { once: true });
          this.write(wire);
        });
      },
    );
  }

  /** Ends the connection: pending requests fail with CONNECTION_LOST. */
  destroy(reason?: Error): void {
    this.fail(reason ?? new SmbConnectionLostError(`${this.host}: the connection was closed`));
  }

  /** Half-closes the socket and waits (bounded) until it has closed. */
  async end(timeoutMs = 2_000): Promise<void> {
    if (!this.socket.destroyed) this.socket.end();
    const timer = setTimeout(() => this.socket.destroy(), timeoutMs);
    await this.closedPromise;
    clearTimeout(timer);
  }

  /** One message (whole or in parts) after its frame header (MS-SMB2 2.1), written without joining them. */
  private write(message: Buffer | readonly Buffer[]): void {
    if (this.socket.destroyed || this.socket.writableEnded) return;
    const parts = Buffer.isBuffer(message) ? [message] : message;
    const frame = Buffer.allocUnsafe(FRAME_HEADER_SIZE);
    frame.writeUInt32BE(checkFrameLength(parts.reduce((n, p) => n + p.length, 0))); // top byte 0: SESSION MESSAGE
    this.socket.cork();
    this.socket.write(frame);
    for (const part of parts) this.socket.write(part);
    this.socket.uncork();
  }

  /** Gives a request up: its answer will only settle credits; the server is told with CANCEL. */
  private abandon(messageId: bigint, entry: InFlight): void {
    if (entry.abandoned || this.inFlight.get(messageId) !== entry || this.lost) return;
    entry.abandoned = true;
    entry.request = Buffer.from(entry.request.subarray(0, 64));
    const asyncId = entry.asyncId;
    const header = encodeHeader({
      creditCharge: 0,
      status: 0,
      command: Command.CANCEL,
      credits: 0,
      flags:
        (asyncId !== undefined ? HeaderFlag.ASYNC_COMMAND : 0) | (entry.expectSigned ? HeaderFlag.SIGNED : 0),
      nextCommand: 0,
      messageId,
      ...(asyncId !== undefined ? { asyncId } : { treeId: entry.request.readUInt32LE(36) }),
      sessionId: entry.request.readBigUInt64LE(40),
      signature: Buffer.alloc(16),
    });
    const cancel = Buffer.concat([header, encodeCancelRequest()]);
    const security = this.security;
    if (entry.expectSigned && security?.sign) security.sign(cancel);
    this.write(entry.encrypted && security?.seal ? security.seal.encrypt(cancel) : cancel);
  }

  private receive(chunk: Buffer): void {
    if (this.lost) return;
    try {
      for (const frame of this.deframer.push(chunk)) this.route(frame);
    } catch (err) {
      this.fail(err instanceof Error ? err : new Error(String(err)));
    }
  }

  /** One frame: decrypted when sealed (MS-SMB2 3.2.5.1.1.1), then each message of its compound. */
  private route(frame: Buffer): void {
    let sealed = false;
    let plain = frame;
    if (frame.length >= 4 && frame.subarray(0, 4).equals(TRANSFORM_PROTOCOL_ID)) {
      const seal = this.security?.seal;
      if (!seal) throw integrityError(`${this.host}: an encrypted answer without a session key`);
      plain = seal.decrypt(frame);
      sealed = true;
    }
    for (const message of splitCompound(plain)) this.answer(message, sealed);
  }

  private answer(message: Buffer, sealed: boolean): void {
    const header = decodeHeader(message);
    if (header.messageId === 0xffffffffffffffffn) return; // an oplock break: none are asked for
    const entry = this.inFlight.get(header.messageId);
    if (!entry) return; // a late answer to a request given up before it was sent
    const interim = isInterim(header);
    const problem =
      misdirectedAnswer(this.host, header, entry.command) ??
      protectionProblem(this.host, { header, message, sealed, interim, ...entry }, this.security?.verify);
    if (problem) {
      this.inFlight.delete(header.messageId);
      this.credits.settled();
      if (!entry.abandoned) entry.reject(problem);
      return;
    }
    if (interim) {
      entry.asyncId = header.asyncId;
      this.credits.granted(header.credits);
      return;
    }
    this.inFlight.delete(header.messageId);
    this.credits.granted(header.credits);
    this.credits.settled();
    if (!entry.abandoned) entry.resolve({ header, message, request: entry.request });
    else if (header.status === 0) entry.late?.({ header, message, request: entry.request });
  }

  private fail(error: Error): void {
    if (this.lost) return;
    this.lost = error;
    this.credits.failAll(error);
    for (const [, entry] of this.inFlight) {
      this.credits.settled();
      if (!entry.abandoned) entry.reject(error);
    }
    this.inFlight.clear();
    this.socket.destroy();
  }
}

function checkFrameLength(length: number): number {
  if (length > MAX_FRAME_LENGTH) {
    throw new MalformedPacketError(`an SMB2 message of ${length} bytes does not fit a frame`);
  }
  return length;
}
