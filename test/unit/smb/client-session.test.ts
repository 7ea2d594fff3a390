import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { SmbClient } from "../../../actors/smb/client/client.ts";
import { wirePath } from "../../../actors/smb/client/paths.ts";
import { Command, type Smb2Header } from "../../../actors/smb/codec/header.ts";
import {
  Capability,
  Dialect,
  decodeNegotiateRequest,
  encodeNegotiateResponse,
  HashAlgorithm,
  type NegotiateContext,
} from "../../../actors/smb/codec/negotiate.ts";
import { encodeSessionSetupResponse, SessionFlag } from "../../../actors/smb/codec/session-setup.ts";
import { NtStatus } from "../../../actors/smb/codec/status.ts";
import { answer, startFakeServer, type FakeServer } from "../../support/smb-fake-server.ts";

const servers: FakeServer[] = [];
after(async () => {
  for (const s of servers) await s.stop();
});

const password = "correct horse battery staple";
const credentials = { user: "deploy", domain: "CORP", password };

function negotiateAnswer(req: Smb2Header, dialect: number, contexts: NegotiateContext[]): Buffer {
  return answer(
    req,
    { credits: 10 },
    encodeNegotiateResponse({
      securityMode: 1,
      dialectRevision: dialect,
      serverGuid: Buffer.alloc(16, 7),
      capabilities: Capability.LARGE_MTU,
      maxTransactSize: 1 << 20,
      maxReadSize: 1 << 20,
      maxWriteSize: 1 << 20,
      systemTime: 0n,
      serverStartTime: 0n,
      securityBuffer: Buffer.alloc(0),
      negotiateContexts: contexts,
    }),
  );
}

const preauth: NegotiateContext = {
  kind: "preauth",
  hashAlgorithms: [HashAlgorithm.SHA512],
  salt: Buffer.alloc(32, 1),
};

/** A fake server answering NEGOTIATE with `dialect`, and SESSION_SETUP as `session` says. */
async function server(
  dialect: number,
  contexts: NegotiateContext[],
  session: (req: Smb2Header) => Buffer = (req) => answer(req, { status: NtStatus.LOGON_FAILURE }),
): Promise<FakeServer> {
  const s = await startFakeServer((req, fake) => {
    if (req.header.command === Command.NEGOTIATE) fake.send(negotiateAnswer(req.header, dialect, contexts));
    else if (req.header.command === Command.SESSION_SETUP) fake.send(session(req.header));
  });
  servers.push(s);
  return s;
}

const connect = (s: FakeServer, extra: object = {}) =>
  SmbClient.connect({ host: "127.0.0.1", port: s.port, credentials, timeoutMs: 3_000, ...extra });

describe("smb client negotiate and session", () => {
  it("negotiate - a dialect the client did not offer is SMB_NEGOTIATION_FAILED", async () => {
    const s = await server(Dialect.SMB_3_1_1, [preauth]);
    await assert.rejects(connect(s, { dialects: { max: Dialect.SMB_3_0_2 } }), {
      code: "SMB_NEGOTIATION_FAILED",
    });
  });

  it("negotiate - a 3.1.1 answer without the pre-authentication context is SMB_NEGOTIATION_FAILED", async () => {
    const s = await server(Dialect.SMB_3_1_1, []);
    await assert.rejects(connect(s), { code: "SMB_NEGOTIATION_FAILED" });
  });

  it("negotiate - the request offers the bounded dialects, signing required, and the 3.1.1 contexts", async () => {
    const s = await server(Dialect.SMB_3_1_1, [preauth]);
    await assert.rejects(connect(s), { code: "AUTH_FAILED" });
    const neg = s.requests[0]!.message;
    const dialectCount = neg.readUInt16LE(64 + 2);
    const dialects = Array.from({ length: dialectCount }, (_, i) => neg.readUInt16LE(64 + 36 + 2 * i));
    assert.deepEqual(dialects, [0x0202, 0x0210, 0x0300, 0x0302, 0x0311]);
    assert.equal(neg.readUInt16LE(64 + 4), 0x3, "SIGNING_ENABLED | SIGNING_REQUIRED");
    assert.equal(neg.readUInt16LE(64 + 32), 3, "three negotiate contexts");
  });

  it("session - a refused account is AUTH_FAILED naming it and its status, never the password, and is not retried", async () => {
    const s = await server(Dialect.SMB_3_1_1, [preauth]);
    const err = await connect(s).then(
      () => assert.fail("connected"),
      (e: unknown) => e as Error & { code: string; retryable: boolean },
    );
    assert.equal(err.code, "AUTH_FAILED");
    assert.equal(err.retryable, false);
    assert.match(err.message, /CORP\\deploy/);
    assert.match(err.message, /STATUS_LOGON_FAILURE/);
    assert.ok(!err.message.includes(password));
    assert.equal(s.requests.filter((r) => r.header.command === Command.SESSION_SETUP).length, 1);
  });

  it("session - a guest session is refused as AUTH_FAILED", async () => {
    const s = await server(Dialect.SMB_2_1, [], (req) =>
      answer(
        req,
        { sessionId: 9n },
        encodeSessionSetupResponse({ sessionFlags: SessionFlag.IS_GUEST, securityBuffer: Buffer.alloc(0) }),
      ),
    );
    await assert.rejects(connect(s), { code: "AUTH_FAILED", message: /guest/ });
  });

  it("session - encryption asked for on 2.1 is SMB_NEGOTIATION_FAILED before any SESSION_SETUP", async () => {
    const s = await server(Dialect.SMB_2_1, []);
    await assert.rejects(connect(s, { encrypt: true }), { code: "SMB_NEGOTIATION_FAILED" });
    assert.equal(s.requests.filter((r) => r.header.command === Command.SESSION_SETUP).length, 0);
  });

  it("session - a connect past its deadline is TIMEOUT and closes the connection", async () => {
    const s = await startFakeServer(() => {});
    servers.push(s);
    const t0 = performance.now();
    await assert.rejects(
      SmbClient.connect({ host: "127.0.0.1", port: s.port, credentials, timeoutMs: 200 }),
      { code: "TIMEOUT" },
    );
    assert.ok(performance.now() - t0 < 1_500);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(s.closedConnections(), 1);
  });

  it("paths - / and \\ both separate, .. and NUL are refused", () => {
    assert.equal(wirePath("/Temp//sumac\\a.zip"), "Temp\\sumac\\a.zip");
    assert.equal(wirePath("./a/./b"), "a\\b");
    assert.equal(wirePath("/"), "");
    assert.throws(() => wirePath("a/../b"), { code: "CONFIG_INVALID" });
    assert.throws(() => wirePath("a\0b"), { code: "CONFIG_INVALID" });
  });
});

describe("smb client negotiate offer", () => {
  it("negotiate - offers 2.0.2 to 3.1.1, SHA-512, the ciphers and signing algorithms in the order docs/smb.md gives", async () => {
    const server = await startFakeServer((_req, s) => s.drop());
    try {
      await assert.rejects(
        SmbClient.connect({
          host: "127.0.0.1",
          port: server.port,
          credentials: { user: "u", domain: "", password: "p" },
          timeoutMs: 2_000,
        }),
      );
      const first = server.requests[0];
      assert.equal(first?.header.command, Command.NEGOTIATE);
      const offer = decodeNegotiateRequest(first.message);
      assert.deepEqual(offer.dialects, [0x0202, 0x0210, 0x0300, 0x0302, 0x0311]);
      const context = (kind: string) => offer.negotiateContexts.find((c) => c.kind === kind);
      const preauth = context("preauth");
      assert.ok(preauth?.kind === "preauth");
      assert.deepEqual(preauth.hashAlgorithms, [HashAlgorithm.SHA512]);
      assert.equal(preauth.salt.length, 32);
      assert.deepEqual(context("encryption"), { kind: "encryption", ciphers: [2, 1, 4, 3] });
      assert.deepEqual(context("signing"), { kind: "signing", signingAlgorithms: [2, 1, 0] });
    } finally {
      await server.stop();
    }
  });
});
