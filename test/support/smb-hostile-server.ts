/**
 * A small SMB2 server for the client's hostile-peer tests: it speaks enough of the protocol for
 * the client to connect, authenticate (NTLMv2 in SPNEGO, smb-hostile-ntlm.ts), connect a tree and
 * move a file (MS-SMB2 3.3.5: NEGOTIATE, SESSION_SETUP, TREE_CONNECT, CREATE, READ, WRITE, CLOSE,
 * LOGOFF), with the codecs' response encoders and signed as MS-SMB2 3.3.4.1.1 says. A test then
 * makes it misbehave at the request it chooses: `misbehave` sees each decoded request with the
 * valid answer already built, and returns what to send instead (raw bytes, a mutated answer,
 * nothing, or a closed socket).
 */
import net from "node:net";
import { Deframer, encodeFrame, MAX_FRAME_LENGTH } from "../../actors/smb/client/framing.ts";
import { decodeHeader, HeaderFlag, type Smb2Header } from "../../actors/smb/codec/header.ts";
import {
  Conversation,
  ERROR_BODY,
  type ConversationOptions,
  type HostileRequest,
} from "./smb-hostile-conversation.ts";

export type { HostileRequest } from "./smb-hostile-conversation.ts";

/** What to send instead of the valid answer. */
export type HostileReply =
  /** One SMB2 message, framed (a mutated answer; see {@link HostileTurn.resign}); sealed when the
   * request came sealed, unless `clear`. */
  | { readonly kind: "message"; readonly message: Buffer; readonly close?: boolean; readonly clear?: boolean }
  /** Bytes written to the socket as they are, frame header included or not; then maybe a close. */
  | { readonly kind: "raw"; readonly bytes: Buffer; readonly close?: boolean }
  /** No answer at all; the socket stays open. */
  | { readonly kind: "silence" }
  /** The socket closes without an answer. */
  | { readonly kind: "close" };

/** What a misbehaviour hook is given. */
export interface HostileTurn {
  readonly request: HostileRequest;
  /** The request came in a transform frame: answers go sealed. */
  readonly sealed: boolean;
  /** The transform frame (unframed) of a message, sealed for this session or `sessionId`'s. */
  readonly seal: (message: Buffer, sessionId?: bigint) => Buffer;
  /** The answer the server would send (signed when it would be), a copy to mutate at will. */
  readonly valid: Buffer;
  /** Signs a mutated answer again when the valid one was signed (returns it, signed in place). */
  readonly resign: (message: Buffer) => Buffer;
  /** An answer with this status and body (an error body when omitted), signed as a valid one. */
  readonly answer: (status: number, body?: Buffer, fields?: Partial<Smb2Header>) => Buffer;
}

/** Returns undefined to answer normally. */
export type Misbehave = (turn: HostileTurn) => HostileReply | undefined;

/** How the server behaves when it behaves, and what it holds. */
export interface HostileOptions extends ConversationOptions {
  /** Files on the share, by name as CREATE carries it (`dir\\file`). */
  readonly files?: Record<string, Buffer>;
  readonly misbehave?: Misbehave;
}

/** A running server. `misbehave` may be replaced between connections (property tests). */
export interface HostileServer {
  readonly port: number;
  /** Every request received, CANCEL included, in order, over all connections. */
  readonly requests: HostileRequest[];
  /** The files on the share as written. */
  readonly files: Map<string, Buffer>;
  /** Resolves when every connection accepted so far has closed. */
  allClosed(): Promise<void>;
  /** How many connections were accepted. */
  readonly connections: number;
  misbehave: Misbehave | undefined;
  /** Writes bytes as they are on the newest connection (answers a hook sends later). */
  send(bytes: Buffer): void;
  stop(): Promise<void>;
}

/** A copy of `bytes` with bit `bit` of byte `at` flipped. */
export function flipBit(bytes: Buffer, at: number, bit = 0): Buffer {
  const out = Buffer.from(bytes);
  out[at] = (out[at] ?? 0) ^ (1 << bit);
  return out;
}

export { encodeFrame as frame };

/**
 * Starts the server on 127.0.0.1 and a free port.
 *
 * @example
 * const server = await startHostileServer({
 *   password: "pw",
 *   misbehave: ({ request, valid }) =>
 *     request.header.command === Command.TREE_CONNECT ? { kind: "message", message: flipBit(valid, 50) } : undefined,
 * });
 */
export async function startHostileServer(options: HostileOptions): Promise<HostileServer> {
  const requests: HostileRequest[] = [];
  const files = new Map(Object.entries(options.files ?? {}));
  const sockets = new Set<net.Socket>();
  let newest: net.Socket | undefined;
  const closings: Promise<void>[] = [];
  const server = net.createServer((socket) => {
    sockets.add(socket);
    newest = socket;
    closings.push(new Promise((resolve) => socket.once("close", () => resolve())));
    socket.once("close", () => sockets.delete(socket));
    socket.on("error", () => {});
    const conversation = new Conversation(options, files);
    const deframer = new Deframer(MAX_FRAME_LENGTH);
    socket.on("data", (chunk: Buffer) => {
      try {
        for (const message of deframer.push(chunk)) serve(socket, conversation, message);
      } catch {
        socket.destroy(); // what a client sends wrong is not what these tests look at
      }
    });
  });
  const serve = (socket: net.Socket, conversation: Conversation, frame: Buffer): void => {
    const { message, sealed } = conversation.unseal(frame);
    const request = { header: decodeHeader(message), message };
    // MS-SMB2 3.3.4.1.4: an answer to a sealed request goes sealed.
    const out = (m: Buffer, clear = false): Buffer =>
      encodeFrame(sealed && !clear ? conversation.seal(m) : m);
    requests.push(request);
    const valid = conversation.respond(request);
    const signs = valid !== undefined && (valid.readUInt32LE(16) & HeaderFlag.SIGNED) !== 0;
    const reply = hostile.misbehave?.({
      request,
      sealed,
      seal: (m, sessionId) => conversation.seal(m, sessionId),
      valid: Buffer.from(valid ?? Buffer.alloc(0)),
      resign: (m) => (signs ? conversation.sign(m) : m),
      answer: (status, body = ERROR_BODY, fields = {}) => conversation.build(request, status, body, fields),
    });
    if (reply === undefined) {
      if (valid !== undefined) socket.write(out(valid));
      return;
    }
    switch (reply.kind) {
      case "message":
        socket.write(out(reply.message, reply.clear));
        if (reply.close === true) socket.end();
        return;
      case "raw":
        socket.write(reply.bytes);
        if (reply.close === true) socket.end();
        return;
      case "silence":
        return;
      case "close":
        socket.destroy();
        return;
    }
  };
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const hostile: HostileServer = {
    port: (server.address() as net.AddressInfo).port,
    requests,
    files,
    misbehave: options.misbehave,
    send: (bytes) => {
      if (newest !== undefined && !newest.destroyed) newest.write(bytes);
    },
    get connections() {
      return closings.length;
    },
    allClosed: async () => {
      await Promise.all(closings);
    },
    stop: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
  return hostile;
}
