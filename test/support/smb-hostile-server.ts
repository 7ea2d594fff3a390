/**
 * A small SMB2 server for the client's hostile-peer tests: it speaks enough of the protocol for
 * the client to connect, authenticate (NTLMv2 in SPNEGO, smb-hostile-ntlm.ts), connect a tree and
 * move a file (MS-SMB2 3.3.5: NEGOTIATE, SESSION_SETUP, TREE_CONNECT, CREATE, READ, WRITE, CLOSE,
 * LOGOFF), with the codecs' response encoders and signed as MS-SMB2 3.3.4.1.1 says. A test then
 * makes it misbehave at the request it chooses: `misbehave` sees each decoded request with the
 * valid answer already built, and returns what to send instead (raw bytes, a mutated answer,
 * nothing, or a closed socket).
 */
import { randomBytes } from "node:crypto";
import net from "node:net";
import { Deframer, encodeFrame, MAX_FRAME_LENGTH } from "../../actors/smb/client/framing.ts";
import { encodeCloseResponse } from "../../actors/smb/codec/close.ts";
import {
  decodeCreateRequest,
  encodeCreateResponse,
  CreateDisposition,
} from "../../actors/smb/codec/create.ts";
import { encodeErrorResponse } from "../../actors/smb/codec/error.ts";
import {
  Command,
  decodeHeader,
  encodeHeader,
  HeaderFlag,
  type Smb2Header,
} from "../../actors/smb/codec/header.ts";
import {
  Capability,
  decodeNegotiateRequest,
  Dialect,
  encodeNegotiateResponse,
  HashAlgorithm,
  SecurityMode,
  SigningAlgorithm,
} from "../../actors/smb/codec/negotiate.ts";
import {
  decodeReadRequest,
  decodeWriteRequest,
  encodeReadResponse,
  encodeWriteResponse,
} from "../../actors/smb/codec/read-write.ts";
import {
  decodeSessionSetupRequest,
  encodeSessionSetupResponse,
} from "../../actors/smb/codec/session-setup.ts";
import { NtStatus } from "../../actors/smb/codec/status.ts";
import { encodeTreeConnectResponse, ShareType } from "../../actors/smb/codec/tree-connect.ts";
import { deriveSessionKeys } from "../../actors/smb/crypto/keys.ts";
import { PreauthIntegrity } from "../../actors/smb/crypto/preauth.ts";
import { signingAlgorithmFor, signMessage } from "../../actors/smb/crypto/signing.ts";
import { NtlmServer } from "./smb-hostile-ntlm.ts";

/** One request as the server received it. */
export interface HostileRequest {
  readonly header: Smb2Header;
  /** The whole message, header and body. */
  readonly message: Buffer;
}

/** What to send instead of the valid answer. */
export type HostileReply =
  /** One SMB2 message, framed (a mutated answer; see {@link HostileTurn.resign}). */
  | { readonly kind: "message"; readonly message: Buffer; readonly close?: boolean }
  /** Bytes written to the socket as they are, frame header included or not; then maybe a close. */
  | { readonly kind: "raw"; readonly bytes: Buffer; readonly close?: boolean }
  /** No answer at all; the socket stays open. */
  | { readonly kind: "silence" }
  /** The socket closes without an answer. */
  | { readonly kind: "close" };

/** What a misbehaviour hook is given. */
export interface HostileTurn {
  readonly request: HostileRequest;
  /** The answer the server would send (signed when it would be), a copy to mutate at will. */
  readonly valid: Buffer;
  /** Signs a mutated answer again when the valid one was signed (returns it, signed in place). */
  readonly resign: (message: Buffer) => Buffer;
  /** An answer with this status and body (an error body when omitted), signed as a valid one. */
  readonly answer: (status: number, body?: Buffer, fields?: Partial<Smb2Header>) => Buffer;
}

/** Returns undefined to answer normally. */
export type Misbehave = (turn: HostileTurn) => HostileReply | undefined;

/** How the server behaves when it behaves. */
export interface HostileOptions {
  /** The password the client will use: the server derives the session key from it. */
  readonly password: string;
  /** 2.1 (HMAC-SHA256 signing) or 3.1.1 with contexts (AES-CMAC). Default 3.1.1. */
  readonly dialect?: typeof Dialect.SMB_2_1 | typeof Dialect.SMB_3_1_1;
  /** SecurityMode SIGNING_REQUIRED. Default true. */
  readonly signingRequired?: boolean;
  /** MaxTransactSize, MaxReadSize and MaxWriteSize. Default 1 MiB. */
  readonly maxSize?: number;
  /** Credits granted per answer, given what the client asked. Default: what it asked, at least 1. */
  readonly credits?: (request: HostileRequest, asked: number) => number;
  /** Files on the share, by name as CREATE carries it (`dir\file`). */
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
  stop(): Promise<void>;
}

/** A copy of `bytes` with bit `bit` of byte `at` flipped. */
export function flipBit(bytes: Buffer, at: number, bit = 0): Buffer {
  const out = Buffer.from(bytes);
  out[at] = (out[at] ?? 0) ^ (1 << bit);
  return out;
}

export { encodeFrame as frame };

const EMPTY_BODY = Buffer.from([4, 0, 0, 0]); // MS-SMB2 2.2.8, 2.2.12: StructureSize 4, Reserved
const ERROR_BODY = encodeErrorResponse({ errorContextCount: 0, errorData: Buffer.alloc(0) });

/** The per-connection state of MS-SMB2 3.3.1: the dialect, the preauth hash, the session. */
class Conversation {
  private readonly options: HostileOptions;
  private readonly files: Map<string, Buffer>;
  private dialect = 0;
  private signingAlgorithm = SigningAlgorithm.HMAC_SHA256 as number;
  private preauth: PreauthIntegrity | undefined;
  private sessionPreauth: PreauthIntegrity | undefined;
  private ntlm: NtlmServer | undefined;
  private signingKey: Buffer | undefined;
  private readonly sessionId = 0x0000_4000_0000_0011n;
  private readonly handles = new Map<string, string>();

  constructor(options: HostileOptions, files: Map<string, Buffer>) {
    this.options = options;
    this.files = files;
  }

  /** Signs `message` in place with the session's key. */
  sign(message: Buffer): Buffer {
    if (this.signingKey) signMessage(this.signingAlgorithm, this.signingKey, message);
    return message;
  }

  /** A response to `req`; signed when the request was (MS-SMB2 3.3.4.1.1) or `sign` says. */
  build(
    req: HostileRequest,
    status: number,
    body: Buffer,
    fields: Partial<Smb2Header> = {},
    sign?: boolean,
  ): Buffer {
    const h = req.header;
    const asked = Math.max(1, h.credits);
    const credits = this.options.credits?.(req, asked) ?? asked;
    const message = Buffer.concat([
      encodeHeader({
        creditCharge: h.creditCharge,
        status,
        command: h.command,
        credits,
        flags: HeaderFlag.SERVER_TO_REDIR,
        nextCommand: 0,
        messageId: h.messageId,
        treeId: h.treeId ?? 0,
        sessionId: h.command === Command.NEGOTIATE ? 0n : this.sessionId,
        signature: Buffer.alloc(16),
        ...fields,
      }),
      body,
    ]);
    if (sign ?? (h.flags & HeaderFlag.SIGNED) !== 0) this.sign(message);
    return message;
  }

  /** The valid answer, or undefined for requests that have none (CANCEL, MS-SMB2 3.3.5.16). */
  respond(req: HostileRequest): Buffer | undefined {
    switch (req.header.command) {
      case Command.NEGOTIATE:
        return this.negotiate(req);
      case Command.SESSION_SETUP:
        return this.sessionSetup(req);
      case Command.TREE_CONNECT:
        return this.build(
          req,
          0,
          encodeTreeConnectResponse({
            shareType: ShareType.DISK,
            shareFlags: 0,
            capabilities: 0,
            maximalAccess: 0x001f01ff,
          }),
          { treeId: 1 },
        );
      case Command.CREATE:
        return this.create(req);
      case Command.WRITE: {
        const w = decodeWriteRequest(req.message);
        const name = this.handles.get(w.fileId.toString("hex")) ?? "";
        const old = this.files.get(name) ?? Buffer.alloc(0);
        const end = Number(w.offset) + w.data.length;
        const next = Buffer.alloc(Math.max(old.length, end));
        old.copy(next);
        w.data.copy(next, Number(w.offset));
        this.files.set(name, next);
        return this.build(req, 0, encodeWriteResponse({ count: w.data.length, remaining: 0 }));
      }
      case Command.READ: {
        const r = decodeReadRequest(req.message);
        const data = this.files.get(this.handles.get(r.fileId.toString("hex")) ?? "") ?? Buffer.alloc(0);
        const at = Number(r.offset);
        if (at >= data.length) return this.build(req, NtStatus.END_OF_FILE, ERROR_BODY);
        const slice = data.subarray(at, at + r.length);
        return this.build(req, 0, encodeReadResponse({ data: slice, dataRemaining: 0, flags: 0 }));
      }
      case Command.CLOSE:
        return this.build(
          req,
          0,
          encodeCloseResponse({
            flags: 0,
            creationTime: 0n,
            lastAccessTime: 0n,
            lastWriteTime: 0n,
            changeTime: 0n,
            allocationSize: 0n,
            endOfFile: 0n,
            fileAttributes: 0,
          }),
        );
      case Command.LOGOFF:
      case Command.TREE_DISCONNECT:
      case Command.ECHO:
        return this.build(req, 0, EMPTY_BODY);
      case Command.CANCEL:
        return undefined;
      default:
        return this.build(req, NtStatus.NOT_SUPPORTED, ERROR_BODY);
    }
  }

  /** MS-SMB2 3.3.5.4: the configured dialect; on 3.1.1 the SHA-512 preauth and AES-CMAC contexts. */
  private negotiate(req: HostileRequest): Buffer {
    const offer = decodeNegotiateRequest(req.message);
    this.dialect = this.options.dialect ?? Dialect.SMB_3_1_1;
    const is311 = this.dialect === Dialect.SMB_3_1_1 && offer.dialects.includes(Dialect.SMB_3_1_1);
    if (!is311 && this.dialect === Dialect.SMB_3_1_1) this.dialect = Dialect.SMB_2_1;
    this.signingAlgorithm = signingAlgorithmFor(this.dialect, is311 ? SigningAlgorithm.AES_CMAC : undefined);
    const size = this.options.maxSize ?? 1 << 20;
    const body = encodeNegotiateResponse({
      securityMode:
        SecurityMode.SIGNING_ENABLED |
        ((this.options.signingRequired ?? true) ? SecurityMode.SIGNING_REQUIRED : 0),
      dialectRevision: this.dialect,
      serverGuid: randomBytes(16),
      capabilities: Capability.LARGE_MTU,
      maxTransactSize: size,
      maxReadSize: size,
      maxWriteSize: size,
      systemTime: 0n,
      serverStartTime: 0n,
      securityBuffer: Buffer.alloc(0),
      negotiateContexts: is311
        ? [
            { kind: "preauth", hashAlgorithms: [HashAlgorithm.SHA512], salt: randomBytes(32) },
            { kind: "signing", signingAlgorithms: [SigningAlgorithm.AES_CMAC] },
          ]
        : [],
    });
    const answer = this.build(req, 0, body);
    if (is311) {
      this.preauth = new PreauthIntegrity();
      this.preauth.update(req.message);
      this.preauth.update(answer);
    }
    return answer;
  }

  /** MS-SMB2 3.3.5.5: two rounds of NTLM; the final answer signed with the new key (3.3.5.5.3). */
  private sessionSetup(req: HostileRequest): Buffer {
    const token = decodeSessionSetupRequest(req.message).securityBuffer;
    if (this.ntlm === undefined) {
      this.ntlm = new NtlmServer(this.options.password);
      this.sessionPreauth = this.preauth?.fork();
      this.sessionPreauth?.update(req.message);
      const body = encodeSessionSetupResponse({
        sessionFlags: 0,
        securityBuffer: this.ntlm.challenge(token),
      });
      const answer = this.build(req, NtStatus.MORE_PROCESSING_REQUIRED, body, {}, false);
      this.sessionPreauth?.update(answer);
      return answer;
    }
    this.sessionPreauth?.update(req.message);
    const done = this.ntlm.authenticate(token);
    const keys = deriveSessionKeys({
      dialect: this.dialect,
      sessionKey: done.sessionKey,
      ...(this.sessionPreauth ? { preauthHash: this.sessionPreauth.value } : {}),
    });
    this.signingKey = keys.signingKey;
    const body = encodeSessionSetupResponse({ sessionFlags: 0, securityBuffer: done.token });
    return this.build(req, 0, body, {}, true);
  }

  private create(req: HostileRequest): Buffer {
    const c = decodeCreateRequest(req.message);
    const exists = this.files.has(c.name);
    if (!exists && c.createDisposition === CreateDisposition.OPEN) {
      return this.build(req, NtStatus.OBJECT_NAME_NOT_FOUND, ERROR_BODY);
    }
    if (c.createDisposition !== CreateDisposition.OPEN) this.files.set(c.name, Buffer.alloc(0));
    const fileId = randomBytes(16);
    this.handles.set(fileId.toString("hex"), c.name);
    const size = BigInt(this.files.get(c.name)?.length ?? 0);
    return this.build(
      req,
      0,
      encodeCreateResponse({
        oplockLevel: 0,
        flags: 0,
        createAction: exists ? 1 : 2,
        creationTime: 0n,
        lastAccessTime: 0n,
        lastWriteTime: 0n,
        changeTime: 0n,
        allocationSize: size,
        endOfFile: size,
        fileAttributes: 0x80,
        fileId,
        createContexts: Buffer.alloc(0),
      }),
    );
  }
}

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
  const closings: Promise<void>[] = [];
  const server = net.createServer((socket) => {
    sockets.add(socket);
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
  const serve = (socket: net.Socket, conversation: Conversation, message: Buffer): void => {
    const request = { header: decodeHeader(message), message };
    requests.push(request);
    const valid = conversation.respond(request);
    const signs = valid !== undefined && (valid.readUInt32LE(16) & HeaderFlag.SIGNED) !== 0;
    const reply = hostile.misbehave?.({
      request,
      valid: Buffer.from(valid ?? Buffer.alloc(0)),
      resign: (m) => (signs ? conversation.sign(m) : m),
      answer: (status, body = ERROR_BODY, fields = {}) => conversation.build(request, status, body, fields),
    });
    if (reply === undefined) {
      if (valid !== undefined) socket.write(encodeFrame(valid));
      return;
    }
    switch (reply.kind) {
      case "message":
        socket.write(encodeFrame(reply.message));
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
