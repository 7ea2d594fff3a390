/**
 * The well-behaved half of the hostile SMB2 test server (smb-hostile-server.ts): one connection's
 * state (MS-SMB2 3.3.1: its dialect, preauth hash and session) and the valid answer to each request.
 */
import { randomBytes } from "node:crypto";
import { encodeCloseResponse } from "../../actors/smb/codec/close.ts";
import {
  decodeCreateRequest,
  encodeCreateResponse,
  CreateDisposition,
} from "../../actors/smb/codec/create.ts";
import { encodeErrorResponse } from "../../actors/smb/codec/error.ts";
import { Command, encodeHeader, HeaderFlag, type Smb2Header } from "../../actors/smb/codec/header.ts";
import {
  Capability,
  Cipher,
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
  SessionFlag,
} from "../../actors/smb/codec/session-setup.ts";
import { NtStatus } from "../../actors/smb/codec/status.ts";
import { encodeTreeConnectResponse, ShareType } from "../../actors/smb/codec/tree-connect.ts";
import { deriveSessionKeys, type SessionKeys } from "../../actors/smb/crypto/keys.ts";
import { decryptMessage, encryptMessage } from "../../actors/smb/crypto/transform.ts";
import { PreauthIntegrity } from "../../actors/smb/crypto/preauth.ts";
import { signingAlgorithmFor, signMessage } from "../../actors/smb/crypto/signing.ts";
import { NtlmServer } from "./smb-hostile-ntlm.ts";

/** One request as the server received it. */
export interface HostileRequest {
  readonly header: Smb2Header;
  /** The whole message, header and body. */
  readonly message: Buffer;
}

/** How the server behaves when it behaves. */
export interface ConversationOptions {
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
  /** 3.1.1 only: AES-128-GCM, and SMB2_SESSION_FLAG_ENCRYPT_DATA on the session. Default false. */
  readonly encrypt?: boolean;
}

const EMPTY_BODY = Buffer.from([4, 0, 0, 0]); // MS-SMB2 2.2.8, 2.2.12: StructureSize 4, Reserved
export const ERROR_BODY = encodeErrorResponse({ errorContextCount: 0, errorData: Buffer.alloc(0) });

/** The per-connection state of MS-SMB2 3.3.1: the dialect, the preauth hash, the session. */
export class Conversation {
  private readonly options: ConversationOptions;
  private readonly files: Map<string, Buffer>;
  private dialect = 0;
  private signingAlgorithm = SigningAlgorithm.HMAC_SHA256 as number;
  private preauth: PreauthIntegrity | undefined;
  private sessionPreauth: PreauthIntegrity | undefined;
  private ntlm: NtlmServer | undefined;
  private signingKey: Buffer | undefined;
  private keys: SessionKeys | undefined;
  private cipher: number | undefined;
  private readonly sessionId = 0x0000_4000_0000_0011n;
  private readonly handles = new Map<string, string>();

  constructor(options: ConversationOptions, files: Map<string, Buffer>) {
    this.options = options;
    this.files = files;
  }

  /**
   * The transform frame of `message` (MS-SMB2 3.3.4.1.4), encrypted with the session's
   * server-to-client key; `sessionId` to seal it as another session's.
   */
  seal(message: Buffer, sessionId = this.sessionId): Buffer {
    if (this.keys === undefined || this.cipher === undefined)
      throw new Error("hostile server: no encryption key yet");
    return encryptMessage({ cipher: this.cipher, key: this.keys.decryptionKey, sessionId, message });
  }

  /** The message in `frame`, decrypted when it is a transform frame (MS-SMB2 3.3.5.2.1.1). */
  unseal(frame: Buffer): { message: Buffer; sealed: boolean } {
    if (frame.length < 4 || frame.readUInt32BE(0) !== 0xfd534d42) return { message: frame, sealed: false };
    if (this.keys === undefined || this.cipher === undefined)
      throw new Error("hostile server: sealed too early");
    return {
      message: decryptMessage({ cipher: this.cipher, key: this.keys.encryptionKey, frame }).message,
      sealed: true,
    };
  }

  /** Signs `message` in place with the session's key (none before SESSION_SETUP ends). */
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
            ...(this.options.encrypt === true
              ? [{ kind: "encryption" as const, ciphers: [Cipher.AES_128_GCM] }]
              : []),
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
    const encrypt = this.options.encrypt === true && this.dialect === Dialect.SMB_3_1_1;
    if (encrypt) this.cipher = Cipher.AES_128_GCM;
    const keys = deriveSessionKeys({
      dialect: this.dialect,
      sessionKey: done.sessionKey,
      ...(this.sessionPreauth ? { preauthHash: this.sessionPreauth.value } : {}),
      ...(this.cipher !== undefined ? { cipher: this.cipher } : {}),
    });
    this.signingKey = keys.signingKey;
    this.keys = keys;
    const body = encodeSessionSetupResponse({
      sessionFlags: encrypt ? SessionFlag.ENCRYPT_DATA : 0,
      securityBuffer: done.token,
    });
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
