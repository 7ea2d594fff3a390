import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { isSumacError } from "../../../base/errors.ts";
import { MalformedPacketError } from "../../../actors/wire/bytes.ts";
import { parseAccount } from "../../../actors/smb/auth/account.ts";
import { startSpnegoNtlm, type NtlmCredentials } from "../../../actors/smb/auth/exchange.ts";
import {
  AvId,
  avFlags,
  decodeAvPairs,
  findAvPair,
  type AvPair,
} from "../../../actors/smb/auth/ntlm-av-pairs.ts";
import {
  decodeAuthenticate,
  decodeNegotiate,
  encodeChallenge,
  MIC_OFFSET,
  NegotiateFlags as F,
} from "../../../actors/smb/auth/ntlm-messages.ts";
import {
  computeMic,
  mac,
  ntlmv2Response,
  ntowfv2,
  sealingKey,
  signingKey,
} from "../../../actors/smb/auth/ntlmv2.ts";
import { createRc4 } from "../../../actors/smb/auth/rc4.ts";
import {
  decodeNegTokenInit,
  decodeNegTokenResp,
  encodeMechTypeList,
  encodeNegTokenResp,
  MechOid,
  NegState,
} from "../../../actors/smb/auth/spnego.ts";

const PASSWORD = "Tr0ub4dor&3-secret";
const CREDENTIALS: NtlmCredentials = { user: "deploy", domain: "WEB01", password: PASSWORD };
const SERVER_CHALLENGE = Buffer.from("0123456789abcdef", "hex");
const TIMESTAMP = 133_500_000_000_000_000n;
const SERVER_FLAGS = 0xe28a8215;

/** A counter as the exchange's randomness, so that each run is the same. */
const counting = (): ((n: number) => Buffer) => {
  let next = 1;
  return (n) => Buffer.from(Array.from({ length: n }, () => next++ & 0xff));
};

function serverPairs(withTimestamp: boolean): AvPair[] {
  const stamp = Buffer.alloc(8);
  stamp.writeBigUInt64LE(TIMESTAMP);
  return [
    { id: AvId.MsvAvNbDomainName, value: Buffer.from("WEB01", "utf16le") },
    { id: AvId.MsvAvNbComputerName, value: Buffer.from("WEB01", "utf16le") },
    ...(withTimestamp ? [{ id: AvId.MsvAvTimestamp, value: stamp }] : []),
  ];
}

/**
 * A server side written from MS-NLMP 3.2.5.1.2 with the codecs: it checks the NTLMv2 proof with
 * the password it knows, recovers the session key, checks the MIC and the client's mechListMIC,
 * and signs its own mechListMIC.
 */
function acceptor(options: { flags?: number; withTimestamp?: boolean } = {}) {
  const challengeBytes = encodeChallenge({
    flags: options.flags ?? SERVER_FLAGS,
    targetName: "WEB01",
    serverChallenge: SERVER_CHALLENGE,
    targetInfo: serverPairs(options.withTimestamp ?? true),
    version: { major: 10, minor: 0, build: 20348, revision: 15 },
  });
  let negotiateBytes: Buffer = Buffer.alloc(0);
  return {
    challengeToken(initial: Buffer): Buffer {
      const init = decodeNegTokenInit(initial);
      assert.deepEqual(init.mechTypes, [MechOid.NTLMSSP]);
      negotiateBytes = init.mechToken ?? Buffer.alloc(0);
      return encodeNegTokenResp({
        negState: NegState.ACCEPT_INCOMPLETE,
        supportedMech: MechOid.NTLMSSP,
        responseToken: challengeBytes,
      });
    },
    /** Verifies the client's answer; returns what the server learnt and its final token. */
    accept(answer: Buffer, password = PASSWORD) {
      const resp = decodeNegTokenResp(answer);
      const authBytes = resp.responseToken ?? Buffer.alloc(0);
      const auth = decodeAuthenticate(authBytes);
      const key = ntowfv2(password, auth.user, auth.domain);
      const proof = auth.ntChallengeResponse.subarray(0, 16);
      const temp = auth.ntChallengeResponse.subarray(16);
      const nt = ntlmv2Response(key, SERVER_CHALLENGE, temp);
      const proofOk = nt.ntProofStr.equals(proof);
      const exported = createRc4(nt.sessionBaseKey).update(auth.encryptedRandomSessionKey);
      const zeroed = Buffer.from(authBytes);
      zeroed.fill(0, MIC_OFFSET, MIC_OFFSET + 16);
      const micOk = auth.mic?.equals(computeMic(exported, negotiateBytes, challengeBytes, zeroed)) ?? false;
      const mechTypes = encodeMechTypeList([MechOid.NTLMSSP]);
      const sign = (direction: "client-to-server" | "server-to-client"): Buffer =>
        mac(signingKey(exported, direction), createRc4(sealingKey(exported, direction, 128)), 0, mechTypes);
      const mechListMicOk = resp.mechListMIC?.equals(sign("client-to-server")) ?? false;
      const final = encodeNegTokenResp({
        negState: NegState.ACCEPT_COMPLETED,
        mechListMIC: sign("server-to-client"),
      });
      return { auth, temp, proofOk, micOk, mechListMicOk, exported, final };
    },
  };
}

describe("SMB auth exchange", () => {
  it("SMB auth exchange - against a server with a timestamp: NTLMv2 proof, MIC and mechListMICs verify both ways", () => {
    const server = acceptor();
    const auth = startSpnegoNtlm(CREDENTIALS, { targetHost: "web01.corp.example", random: counting() });
    const initial = auth.initial();
    const negotiate = decodeNegotiate(decodeNegTokenInit(initial).mechToken ?? Buffer.alloc(0));
    assert.equal(negotiate.flags, 0xe2088215);
    assert.throws(() => auth.sessionKey, /before respond/);
    const answer = auth.respond(server.challengeToken(initial));
    const seen = server.accept(answer);
    assert.ok(seen.proofOk, "NTLMv2 proof");
    assert.ok(seen.micOk, "MIC");
    assert.ok(seen.mechListMicOk, "client mechListMIC");
    assert.deepEqual(auth.sessionKey, seen.exported);
    assert.deepEqual(
      auth.sessionKey,
      Buffer.from(Array.from({ length: 16 }, (_, i) => 9 + i)),
      "random bytes 9..24",
    );
    auth.complete(seen.final);
    // MS-NLMP 3.1.5.1.2: LMv2 zeros, the server's time, the MIC flag, a target name, no channel.
    assert.deepEqual(seen.auth.lmChallengeResponse, Buffer.alloc(24));
    assert.equal(seen.temp.readBigUInt64LE(8), TIMESTAMP);
    const sent = decodeAvPairs(seen.temp.subarray(28));
    assert.equal(avFlags(sent), 2);
    assert.equal(findAvPair(sent, AvId.MsvAvTargetName)?.toString("utf16le"), "cifs/web01.corp.example");
    assert.deepEqual(findAvPair(sent, AvId.MsvAvChannelBindings), Buffer.alloc(16));
    assert.deepEqual([seen.auth.user, seen.auth.domain, seen.auth.workstation], ["deploy", "WEB01", ""]);
    assert.equal((seen.auth.flags & F.KEY_EXCH) !== 0 && (seen.auth.flags & F.VERSION) !== 0, true);
  });

  it("SMB auth exchange - a wrong password fails the server's proof; a server mechListMIC that does not verify is SMB_INTEGRITY_FAILED", () => {
    const server = acceptor();
    const auth = startSpnegoNtlm(CREDENTIALS);
    const seen = server.accept(auth.respond(server.challengeToken(auth.initial())), "not the password");
    assert.equal(seen.proofOk, false);
    const forged = encodeNegTokenResp({
      negState: NegState.ACCEPT_COMPLETED,
      mechListMIC: Buffer.alloc(16, 1),
    });
    assert.throws(
      () => auth.complete(forged),
      (err) => isSumacError(err) && err.code === "SMB_INTEGRITY_FAILED",
    );
  });

  it("SMB auth exchange - a CHALLENGE without a server timestamp is SMB_NEGOTIATION_FAILED: no AUTHENTICATE goes without its MIC", () => {
    // A man in the middle who strips MsvAvTimestamp would otherwise get an AUTHENTICATE with no
    // MIC (MS-NLMP 3.1.5.1.2), which he could relay with its flags changed.
    const server = acceptor({ withTimestamp: false });
    const auth = startSpnegoNtlm(CREDENTIALS, { random: counting() });
    assert.throws(() => auth.respond(server.challengeToken(auth.initial())), {
      code: "SMB_NEGOTIATION_FAILED",
      message: /MsvAvTimestamp/,
    });
  });

  it("SMB auth exchange - SPNEGO reject is AUTH_FAILED, a weak or foreign server is SMB_NEGOTIATION_FAILED", () => {
    const codeOf = (f: () => unknown): string | undefined => {
      try {
        f();
      } catch (err) {
        return isSumacError(err) ? err.code : String(err);
      }
      return undefined;
    };
    const rejected = encodeNegTokenResp({ negState: NegState.REJECT });
    const a = startSpnegoNtlm(CREDENTIALS);
    a.initial();
    assert.equal(
      codeOf(() => a.respond(rejected)),
      "AUTH_FAILED",
    );
    const kerberos = encodeNegTokenResp({
      negState: 1,
      supportedMech: MechOid.KERBEROS,
      responseToken: Buffer.alloc(4),
    });
    const b = startSpnegoNtlm(CREDENTIALS);
    b.initial();
    assert.equal(
      codeOf(() => b.respond(kerberos)),
      "SMB_NEGOTIATION_FAILED",
    );
    const weak = acceptor({ flags: SERVER_FLAGS & ~F.NEGOTIATE_128 });
    const c = startSpnegoNtlm(CREDENTIALS);
    assert.equal(
      codeOf(() => c.respond(weak.challengeToken(c.initial()))),
      "SMB_NEGOTIATION_FAILED",
    );
    const server = acceptor();
    const d = startSpnegoNtlm(CREDENTIALS);
    server.accept(d.respond(server.challengeToken(d.initial())));
    assert.equal(
      codeOf(() => d.complete(rejected)),
      "AUTH_FAILED",
    );
  });

  it("SMB auth exchange - the password appears in no error, whatever the server sends", () => {
    const secrets = [PASSWORD, Buffer.from(PASSWORD, "utf16le").toString("latin1")];
    const tokens = [
      Buffer.alloc(0),
      Buffer.from("a1 03 30 01 00".replace(/ /g, ""), "hex"),
      encodeNegTokenResp({ negState: 1, responseToken: Buffer.from("NTLMSSP\0\x02\0\0\0", "latin1") }),
      encodeNegTokenResp({ negState: NegState.REJECT }),
      encodeNegTokenResp({ negState: 1 }),
    ];
    for (const token of tokens) {
      const auth = startSpnegoNtlm(CREDENTIALS);
      auth.initial();
      try {
        auth.respond(token);
        assert.fail("a bad token was accepted");
      } catch (err) {
        assert.ok(isSumacError(err), String(err));
        const text = `${String(err)} ${(err as Error).stack ?? ""} ${JSON.stringify(err)} ${String((err as Error).cause)}`;
        for (const secret of secrets) assert.ok(!text.includes(secret), text);
      }
    }
    assert.throws(() => startSpnegoNtlm(CREDENTIALS).respond(Buffer.alloc(0)), /out of turn/);
  });

  it("SMB auth exchange - a malformed CHALLENGE is MalformedPacketError", () => {
    const auth = startSpnegoNtlm(CREDENTIALS);
    auth.initial();
    const token = encodeNegTokenResp({
      negState: 1,
      responseToken: Buffer.from("NTLMSSP\0\x02\0\0\0", "latin1"),
    });
    assert.throws(() => auth.respond(token), MalformedPacketError);
  });
});

describe("SMB account", () => {
  it("SMB account - DOMAIN\\user, user@domain and a bare user with its default domain", () => {
    assert.deepEqual(parseAccount("CORP\\deploy"), { user: "deploy", domain: "CORP" });
    assert.deepEqual(parseAccount("deploy@corp.example"), { user: "deploy", domain: "corp.example" });
    assert.deepEqual(parseAccount("deploy"), { user: "deploy", domain: "" });
    assert.deepEqual(parseAccount("deploy", "WEB01"), { user: "deploy", domain: "WEB01" });
    assert.deepEqual(parseAccount("CORP\\first@last"), { user: "first@last", domain: "CORP" });
  });

  it("SMB account - empty parts, control characters and extra backslashes are CONFIG_INVALID", () => {
    for (const bad of [
      "",
      "\\deploy",
      "CORP\\",
      "deploy@",
      "@corp",
      "a\\b\\c",
      "dep\nloy",
      "CORP\\de\u0000ploy",
      "x".repeat(300),
    ]) {
      assert.throws(
        () => parseAccount(bad),
        (err) => isSumacError(err) && err.code === "CONFIG_INVALID" && !/[\n\u0000]/.test(err.message),
        JSON.stringify(bad),
      );
    }
  });
});
