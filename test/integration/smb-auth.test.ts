/**
 * The SPNEGO/NTLMv2 exchange of actors/smb/auth against Samba (the windows-standin container, SMB
 * 3.1.1 only, NTLMv2 only): a bare SMB2 NEGOTIATE and the two SESSION_SETUP round trips, written here
 * from MS-SMB2 2.2.3 to 2.2.6 with the header codec, no more. Samba checks the NTLMv2 proof, the MIC
 * and the client's mechListMIC; the exchange checks Samba's mechListMIC, which also shows that both
 * sides hold the same session key.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { connect, type Socket } from "node:net";
import { withDeadline } from "../../base/deadline.ts";
import { Command, decodeHeader, encodeHeader, HEADER_SIZE } from "../../actors/smb/codec/header.ts";
import { startSpnegoNtlm } from "../../actors/smb/auth/exchange.ts";
import { MIC_OFFSET } from "../../actors/smb/auth/ntlm-messages.ts";
import {
  decodeNegTokenResp,
  encodeNegTokenResp,
  MechOid,
  serverMechanisms,
  type NegTokenResp,
} from "../../actors/smb/auth/spnego.ts";
import { containerSkipReason } from "../support/engine.ts";
import { startWindowsStandin, type WindowsStandin } from "../support/windows-standin.ts";

const STATUS_SUCCESS = 0;
const STATUS_MORE_PROCESSING_REQUIRED = 0xc0000016;
const STATUS_LOGON_FAILURE = 0xc000006d;

/** One SMB2 connection over direct TCP (MS-SMB2 2.1: a 4-byte big-endian length before each message). */
class BareSmb2 {
  private readonly socket: Socket;
  private buffered = Buffer.alloc(0);
  private waiting: ((message: Buffer) => void) | undefined;
  private messageId = 0n;
  sessionId = 0n;

  constructor(socket: Socket) {
    this.socket = socket;
    socket.on("data", (data: Buffer) => {
      this.buffered = Buffer.concat([this.buffered, data]);
      const length = this.buffered.length >= 4 ? this.buffered.readUInt32BE(0) & 0xffffff : -1;
      if (length >= 0 && this.buffered.length >= 4 + length && this.waiting) {
        const message = this.buffered.subarray(4, 4 + length);
        this.buffered = this.buffered.subarray(4 + length);
        this.waiting(Buffer.from(message));
      }
    });
  }

  static open(host: string, port: number): Promise<BareSmb2> {
    return withDeadline(
      { ms: 10_000, timeout: new Error(`no TCP connection to ${host}:${port}`) },
      () =>
        new Promise<BareSmb2>((resolve, reject) => {
          const socket = connect({ host, port }, () => resolve(new BareSmb2(socket)));
          socket.once("error", reject);
        }),
    );
  }

  /** Sends one request and returns the response's header fields and body. */
  request(command: number, body: Buffer) {
    const header = encodeHeader({
      creditCharge: 1,
      status: 0,
      command,
      credits: 1,
      flags: 0,
      nextCommand: 0,
      messageId: this.messageId++,
      treeId: 0,
      sessionId: this.sessionId,
      signature: Buffer.alloc(16),
    });
    const message = Buffer.concat([header, body]);
    const frame = Buffer.alloc(4);
    frame.writeUInt32BE(message.length);
    return withDeadline(
      { ms: 10_000, timeout: new Error(`no answer to SMB2 command ${command}`) },
      () =>
        new Promise<{ status: number; sessionId: bigint; message: Buffer }>((resolve) => {
          this.waiting = (answer) => {
            const h = decodeHeader(answer);
            resolve({ status: h.status, sessionId: h.sessionId, message: answer });
          };
          this.socket.write(Buffer.concat([frame, message]));
        }),
    );
  }

  close(): void {
    this.socket.destroy();
  }
}

/** NEGOTIATE for 3.1.1 alone, with the pre-auth integrity context Samba requires (MS-SMB2 2.2.3, 2.2.3.1.1). */
function negotiateRequest(): Buffer {
  const context = Buffer.alloc(8 + 38);
  context.writeUInt16LE(1, 0); // SMB2_PREAUTH_INTEGRITY_CAPABILITIES
  context.writeUInt16LE(38, 2);
  context.writeUInt16LE(1, 8); // one hash algorithm
  context.writeUInt16LE(32, 10); // salt length
  context.writeUInt16LE(1, 12); // SHA-512
  randomBytes(32).copy(context, 14);
  const fixed = Buffer.alloc(36 + 2 + 2); // the fixed part, one dialect, padding to 8
  fixed.writeUInt16LE(36, 0);
  fixed.writeUInt16LE(1, 2); // DialectCount
  fixed.writeUInt16LE(1, 4); // SecurityMode: signing enabled
  randomBytes(16).copy(fixed, 12); // ClientGuid
  fixed.writeUInt32LE(HEADER_SIZE + fixed.length, 28); // NegotiateContextOffset
  fixed.writeUInt16LE(1, 32); // NegotiateContextCount
  fixed.writeUInt16LE(0x0311, 36);
  return Buffer.concat([fixed, context]);
}

/** SESSION_SETUP with a security buffer (MS-SMB2 2.2.5). */
function sessionSetupRequest(token: Buffer): Buffer {
  const fixed = Buffer.alloc(24);
  fixed.writeUInt16LE(25, 0);
  fixed.writeUInt8(1, 3); // SecurityMode: signing enabled
  fixed.writeUInt16LE(HEADER_SIZE + 24, 12);
  fixed.writeUInt16LE(token.length, 14);
  return Buffer.concat([fixed, token]);
}

/** The security buffer of a NEGOTIATE (2.2.4: at 56) or SESSION_SETUP (2.2.6: at 4) response. */
function securityBuffer(message: Buffer, at: number): Buffer {
  const offset = message.readUInt16LE(HEADER_SIZE + at);
  const length = message.readUInt16LE(HEADER_SIZE + at + 2);
  return message.subarray(offset, offset + length);
}

const skip = await containerSkipReason();

describe("smb-auth - SPNEGO/NTLMv2 against Samba", { skip }, () => {
  let standin: WindowsStandin;

  before(async () => {
    standin = await startWindowsStandin({ netbiosName: "AUTHTARGET" });
  });

  after(async () => {
    await standin?.stop();
  });

  /** NEGOTIATE then both SESSION_SETUPs; returns the statuses and the exchange. */
  async function logOn(password: string, tamper: (token: NegTokenResp) => NegTokenResp = (t) => t) {
    const smb = await BareSmb2.open(standin.host, standin.port);
    try {
      const negotiated = await smb.request(Command.NEGOTIATE, negotiateRequest());
      assert.equal(negotiated.status, STATUS_SUCCESS);
      const mechanisms = serverMechanisms(securityBuffer(negotiated.message, 56));
      const auth = startSpnegoNtlm(
        { user: standin.user, domain: standin.workgroup, password },
        { targetHost: standin.netbiosName },
      );
      const first = await smb.request(Command.SESSION_SETUP, sessionSetupRequest(auth.initial()));
      assert.equal(first.status, STATUS_MORE_PROCESSING_REQUIRED);
      smb.sessionId = first.sessionId;
      const answer = encodeNegTokenResp(
        tamper(decodeNegTokenResp(auth.respond(securityBuffer(first.message, 4)))),
      );
      const second = await smb.request(Command.SESSION_SETUP, sessionSetupRequest(answer));
      return { mechanisms, auth, status: second.status, token: securityBuffer(second.message, 4) };
    } finally {
      smb.close();
    }
  }

  it("smb-auth - Samba offers NTLMSSP, accepts the AUTHENTICATE with its MIC and mechListMIC, and its own mechListMIC verifies", async () => {
    const result = await logOn(standin.password);
    assert.ok(result.mechanisms?.includes(MechOid.NTLMSSP), String(result.mechanisms));
    assert.equal(result.status, STATUS_SUCCESS, `status 0x${result.status.toString(16)}`);
    assert.ok(result.token.length > 0, "Samba sends a final NegTokenResp");
    result.auth.complete(result.token);
    assert.equal(result.auth.sessionKey.length, 16);
  });

  it("smb-auth - a wrong password is STATUS_LOGON_FAILURE", async () => {
    const result = await logOn(`${standin.password}x`);
    assert.equal(result.status, STATUS_LOGON_FAILURE, `status 0x${result.status.toString(16)}`);
  });

  it("smb-auth - Samba checks what the exchange signs: a changed MIC or mechListMIC is refused", async () => {
    const flip = (b: Buffer | undefined, at: number): Buffer => {
      const out = Buffer.from(b ?? Buffer.alloc(0));
      out[at] = (out[at] ?? 0) ^ 0x01;
      return out;
    };
    const badMic = await logOn(standin.password, (t) => ({
      ...t,
      responseToken: flip(t.responseToken, MIC_OFFSET),
    }));
    assert.notEqual(badMic.status, STATUS_SUCCESS, "an AUTHENTICATE with a wrong MIC was accepted");
    const badList = await logOn(standin.password, (t) => ({ ...t, mechListMIC: flip(t.mechListMIC, 4) }));
    assert.notEqual(badList.status, STATUS_SUCCESS, "a wrong mechListMIC was accepted");
  });
});
