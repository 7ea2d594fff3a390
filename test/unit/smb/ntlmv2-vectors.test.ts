/**
 * MS-NLMP 4.2.4 (NTLMv2 authentication) and its 4.2.4.4 GSS_WrapEx example, typed in from the
 * specification: user "User", domain "Domain", password "Password", workstation "COMPUTER", server
 * challenge 0123456789abcdef, client challenge aa..aa, random session key 55..55, time 0, and the
 * target info of 4.2.4 (MsvAvNbDomainName "Domain", MsvAvNbComputerName "Server").
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { AvId, decodeAvPairs, encodeAvPairs } from "../../../actors/smb/auth/ntlm-av-pairs.ts";
import { buildAuthenticate, targetInfoToSend } from "../../../actors/smb/auth/ntlm-authenticate.ts";
import {
  decodeAuthenticate,
  decodeChallenge,
  encodeAuthenticate,
  encodeChallenge,
} from "../../../actors/smb/auth/ntlm-messages.ts";
import {
  clientBlob,
  encryptSessionKey,
  lmowfv2,
  lmv2Response,
  mac,
  ntlmv2Response,
  ntowfv2,
  sealingKey,
  signingKey,
  upcaseUser,
} from "../../../actors/smb/auth/ntlmv2.ts";
import { createRc4 } from "../../../actors/smb/auth/rc4.ts";

const h = (text: string): Buffer => Buffer.from(text.replace(/\s+/g, ""), "hex");
const hex = (b: Buffer): string => b.toString("hex");

const SERVER_CHALLENGE = h("01 23 45 67 89 ab cd ef");
const CLIENT_CHALLENGE = h("aa aa aa aa aa aa aa aa");
const RANDOM_SESSION_KEY = Buffer.alloc(16, 0x55);

// MS-NLMP 4.2.4.3: the CHALLENGE_MESSAGE.
const CHALLENGE = h(`
  4e 54 4c 4d 53 53 50 00 02 00 00 00 0c 00 0c 00 38 00 00 00 33 82 8a e2 01 23 45 67 89 ab cd ef
  00 00 00 00 00 00 00 00 24 00 24 00 44 00 00 00 06 00 70 17 00 00 00 0f 53 00 65 00 72 00 76 00
  65 00 72 00 02 00 0c 00 44 00 6f 00 6d 00 61 00 69 00 6e 00 01 00 0c 00 53 00 65 00 72 00 76 00
  65 00 72 00 00 00 00 00`);

// MS-NLMP 4.2.4.3: the AUTHENTICATE_MESSAGE.
const AUTHENTICATE = h(`
  4e 54 4c 4d 53 53 50 00 03 00 00 00 18 00 18 00 6c 00 00 00 54 00 54 00 84 00 00 00 0c 00 0c 00
  48 00 00 00 08 00 08 00 54 00 00 00 10 00 10 00 5c 00 00 00 10 00 10 00 d8 00 00 00 35 82 88 e2
  05 01 28 0a 00 00 00 0f 44 00 6f 00 6d 00 61 00 69 00 6e 00 55 00 73 00 65 00 72 00 43 00 4f 00
  4d 00 50 00 55 00 54 00 45 00 52 00 86 c3 50 97 ac 9c ec 10 25 54 76 4a 57 cc cc 19 aa aa aa aa
  aa aa aa aa 68 cd 0a b8 51 e5 1c 96 aa bc 92 7b eb ef 6a 1c 01 01 00 00 00 00 00 00 00 00 00 00
  00 00 00 00 aa aa aa aa aa aa aa aa 00 00 00 00 02 00 0c 00 44 00 6f 00 6d 00 61 00 69 00 6e 00
  01 00 0c 00 53 00 65 00 72 00 76 00 65 00 72 00 00 00 00 00 00 00 00 00 c5 da d2 54 4f c9 79 90
  94 ce 1c e9 0b c9 d0 3e`);

const TARGET_INFO = h(`
  02 00 0c 00 44 00 6f 00 6d 00 61 00 69 00 6e 00 01 00 0c 00 53 00 65 00 72 00 76 00 65 00 72 00
  00 00 00 00`);

describe("NTLMv2 - MS-NLMP 4.2.4", () => {
  const responseKeyNt = ntowfv2("Password", "User", "Domain");
  const temp = clientBlob(0n, CLIENT_CHALLENGE, TARGET_INFO);
  const nt = ntlmv2Response(responseKeyNt, SERVER_CHALLENGE, temp);

  it("NTLMv2 - NTOWFv2 and LMOWFv2 give the ResponseKeyNT and ResponseKeyLM of 4.2.4.1.1", () => {
    assert.equal(hex(responseKeyNt), "0c868a403bfd7a93a3001ef22ef02e3f");
    assert.equal(hex(lmowfv2("Password", "User", "Domain")), "0c868a403bfd7a93a3001ef22ef02e3f");
    // The user name is upper-cased, the domain is not.
    assert.equal(hex(ntowfv2("Password", "USER", "Domain")), hex(responseKeyNt));
    assert.notEqual(hex(ntowfv2("Password", "User", "DOMAIN")), hex(responseKeyNt));
  });

  it("NTLMv2 - temp, NTProofStr (4.2.4.2.2) and the SessionBaseKey (4.2.4.1.2)", () => {
    assert.equal(
      hex(temp),
      "0101000000000000" +
        "0000000000000000" +
        "aaaaaaaaaaaaaaaa" +
        "00000000" +
        hex(TARGET_INFO) +
        "00000000",
    );
    assert.equal(hex(nt.ntProofStr), "68cd0ab851e51c96aabc927bebef6a1c");
    assert.equal(hex(nt.sessionBaseKey), "8de40ccadbc14a82f15cb0ad0de95ca3");
    assert.deepEqual(nt.ntChallengeResponse, Buffer.concat([nt.ntProofStr, temp]));
  });

  it("NTLMv2 - the LMv2 response of 4.2.4.2.1", () => {
    assert.equal(
      hex(lmv2Response(responseKeyNt, SERVER_CHALLENGE, CLIENT_CHALLENGE)),
      "86c35097ac9cec102554764a57cccc19aaaaaaaaaaaaaaaa",
    );
  });

  it("NTLMv2 - the encrypted session key of 4.2.4.2.3 (RC4 under the KeyExchangeKey)", () => {
    assert.equal(
      hex(encryptSessionKey(nt.sessionBaseKey, RANDOM_SESSION_KEY)),
      "c5dad2544fc9799094ce1ce90bc9d03e",
    );
  });

  it("NTLMv2 - the CHALLENGE_MESSAGE of 4.2.4.3 decodes to its fields and encodes back byte for byte", () => {
    const c = decodeChallenge(CHALLENGE);
    assert.equal(c.flags, 0xe28a8233);
    assert.equal(c.targetName, "Server");
    assert.deepEqual(c.serverChallenge, SERVER_CHALLENGE);
    assert.deepEqual(c.version, { major: 6, minor: 0, build: 6000, revision: 15 });
    assert.deepEqual(c.targetInfo, decodeAvPairs(TARGET_INFO));
    assert.deepEqual(
      c.targetInfo?.map((p) => [p.id, p.value.toString("utf16le")]),
      [
        [AvId.MsvAvNbDomainName, "Domain"],
        [AvId.MsvAvNbComputerName, "Server"],
      ],
    );
    assert.deepEqual(encodeChallenge(c), CHALLENGE);
    assert.deepEqual(encodeAvPairs(c.targetInfo ?? []), TARGET_INFO);
  });

  it("NTLMv2 - the AUTHENTICATE_MESSAGE of 4.2.4.3, computed from the inputs, byte for byte", () => {
    const challenge = decodeChallenge(CHALLENGE);
    const { message, exportedSessionKey } = buildAuthenticate({
      user: "User",
      domain: "Domain",
      password: "Password",
      workstation: "COMPUTER",
      negotiateBytes: Buffer.alloc(0),
      challengeBytes: CHALLENGE,
      challenge,
      flags: 0xe2888235,
      version: { major: 5, minor: 1, build: 2600, revision: 15 },
      clientChallenge: CLIENT_CHALLENGE,
      randomSessionKey: RANDOM_SESSION_KEY,
      time: 0n,
      targetInfo: challenge.targetInfo ?? [],
      // The example's server sends no MsvAvTimestamp, so there is no MIC and LMv2 is computed.
      withMic: false,
    });
    assert.equal(hex(message), hex(AUTHENTICATE));
    assert.deepEqual(exportedSessionKey, RANDOM_SESSION_KEY);
    const decoded = decodeAuthenticate(AUTHENTICATE);
    assert.deepEqual(
      [
        decoded.user,
        decoded.domain,
        decoded.workstation,
        decoded.mic,
        hex(decoded.encryptedRandomSessionKey),
      ],
      ["User", "Domain", "COMPUTER", undefined, "c5dad2544fc9799094ce1ce90bc9d03e"],
    );
    assert.deepEqual(encodeAuthenticate(decoded), AUTHENTICATE);
  });
});

describe("NTLMv2 - MS-NLMP 4.2.4.4 GSS_WrapEx", () => {
  // The example keys its session security with the RandomSessionKey (KEY_EXCH, 128-bit).
  const signKey = signingKey(RANDOM_SESSION_KEY, "client-to-server");
  const sealKey = sealingKey(RANDOM_SESSION_KEY, "client-to-server", 128);
  const plaintext = Buffer.from("Plaintext", "utf16le");

  it("NTLMv2 - SIGNKEY and SEALKEY (3.4.5.2, 3.4.5.3) of the example", () => {
    assert.equal(hex(sealKey), "59f600973cc4960a25480a7c196e4c58");
    assert.equal(hex(signKey), "4788dc861b4782f35d43fd98fe1a2d39");
  });

  it("NTLMv2 - sealing then the MAC on the same RC4 handle give the example's data and signature", () => {
    const handle = createRc4(sealKey);
    assert.equal(hex(handle.update(plaintext)), "54e50165bf1936dc996020c1811b0f06fb5f");
    // The checksum 7035 2851 f256 4309 is sealed with the handle where the data left it.
    assert.equal(hex(mac(signKey, handle, 0, plaintext)), "010000007fb38ec5c55d497600000000");
  });

  it("NTLMv2 - without key exchange the MAC's checksum is the plain HMAC prefix of the example", () => {
    assert.equal(
      hex(mac(signKey, undefined, 0, plaintext)),
      "01000000" + "7035" + "2851f2564309" + "00000000",
    );
    assert.equal(hex(mac(signKey, undefined, 7, plaintext).subarray(12)), "07000000");
  });
});

describe("NTLMv2 - the target info sent back", () => {
  const spec = decodeAvPairs(TARGET_INFO);

  it("NTLMv2 - MIC flag, zero channel bindings and the target name follow the server's pairs", () => {
    const sent = targetInfoToSend(spec, { withMic: true, targetName: "cifs/web01" });
    assert.deepEqual(
      sent.map((p) => p.id),
      [
        AvId.MsvAvNbDomainName,
        AvId.MsvAvNbComputerName,
        AvId.MsvAvFlags,
        AvId.MsvAvChannelBindings,
        AvId.MsvAvTargetName,
      ],
    );
    assert.equal(hex(sent[2]?.value ?? Buffer.alloc(0)), "02000000");
    assert.deepEqual(sent[3]?.value, Buffer.alloc(16));
    assert.equal(sent[4]?.value.toString("utf16le"), "cifs/web01");
    // A server's own MsvAvFlags keeps its bits and gains MIC_PRESENT, in place.
    const withFlags = targetInfoToSend([...spec, { id: AvId.MsvAvFlags, value: h("01000000") }], {
      withMic: true,
    });
    assert.deepEqual(
      withFlags.filter((p) => p.id === AvId.MsvAvFlags).map((p) => hex(p.value)),
      ["03000000"],
    );
    assert.ok(!targetInfoToSend(spec, { withMic: false }).some((p) => p.id === AvId.MsvAvFlags));
  });

  it("NTLMv2 - NTProofStr over an updated target info matches Chromium's test data for the spec's inputs", () => {
    // Chromium's net/ntlm/ntlm_test_data.h (kExpectedAuthenticateMsgEmptyChannelBindingsV2): the
    // inputs of MS-NLMP 4.2.4 with its client timestamp 131400439870000000, MsvAvFlags 2, zero
    // channel bindings and MsvAvTargetName "HTTP/server" gave this NTProofStr.
    const sent = targetInfoToSend(spec, { withMic: true, targetName: "HTTP/server" });
    const temp = clientBlob(131400439870000000n, CLIENT_CHALLENGE, encodeAvPairs(sent));
    const { ntProofStr } = ntlmv2Response(ntowfv2("Password", "User", "Domain"), SERVER_CHALLENGE, temp);
    assert.equal(hex(ntProofStr), "fe4dec67cf4dbdf8c7a78089b1c546a7");
  });

  it("NTLMv2 - user names are upper-cased one UTF-16 unit at a time, as Windows does", () => {
    assert.equal(upcaseUser("straße-ümit"), "STRAßE-ÜMIT");
    assert.equal(upcaseUser("deploy"), "DEPLOY");
  });
});
