/**
 * The server side of NTLMv2 inside SPNEGO, as much of it as a test server needs (MS-NLMP 3.2.5,
 * RFC 4178): it answers the client's NegTokenInit with a CHALLENGE_MESSAGE and takes any
 * AUTHENTICATE_MESSAGE, from which it computes the session key with the password the test gave
 * the client. It checks nothing of the client's proof: a wrong password shows up as a signature
 * the client cannot verify, which is what these tests want from it.
 */
import { randomBytes } from "node:crypto";
import { AvId, avText, type AvPair } from "../../actors/smb/auth/ntlm-av-pairs.ts";
import {
  decodeAuthenticate,
  encodeChallenge,
  NegotiateFlags as F,
} from "../../actors/smb/auth/ntlm-messages.ts";
import { encryptSessionKey, ntlmv2Response, ntowfv2 } from "../../actors/smb/auth/ntlmv2.ts";
import {
  decodeNegTokenInit,
  decodeNegTokenResp,
  encodeNegTokenResp,
  MechOid,
  NegState,
} from "../../actors/smb/auth/spnego.ts";

/** What a Windows server offers (MS-NLMP 2.2.2.5): NTLMv2 with 128-bit keys and key exchange. */
const SERVER_FLAGS =
  (F.UNICODE |
    F.REQUEST_TARGET |
    F.SIGN |
    F.NTLM |
    F.ALWAYS_SIGN |
    F.TARGET_TYPE_SERVER |
    F.EXTENDED_SESSIONSECURITY |
    F.TARGET_INFO |
    F.VERSION |
    F.NEGOTIATE_128 |
    F.KEY_EXCH |
    F.NEGOTIATE_56) >>>
  0;

/** FILETIME of now (MS-NLMP 2.2.2.1 MsvAvTimestamp): its presence makes the client send a MIC. */
function fileTimeNow(): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE((BigInt(Date.now()) + 11_644_473_600_000n) * 10_000n);
  return b;
}

/** One NTLM authentication, server side. */
export class NtlmServer {
  private readonly password: string;
  private readonly serverChallenge = randomBytes(8);

  constructor(password: string) {
    this.password = password;
  }

  /** The answer to the first SESSION_SETUP: a NegTokenResp carrying the CHALLENGE_MESSAGE. */
  challenge(clientToken: Buffer): Buffer {
    // Decoded only to fail loudly when the client sends something else than a NegTokenInit.
    decodeNegTokenInit(clientToken);
    const targetInfo: AvPair[] = [
      avText(AvId.MsvAvNbDomainName, "HOSTILE"),
      avText(AvId.MsvAvNbComputerName, "HOSTILE"),
      { id: AvId.MsvAvTimestamp, value: fileTimeNow() },
    ];
    const challenge = encodeChallenge({
      flags: SERVER_FLAGS,
      targetName: "HOSTILE",
      serverChallenge: this.serverChallenge,
      targetInfo,
      version: { major: 10, minor: 0, build: 20348, revision: 15 },
    });
    return encodeNegTokenResp({
      negState: NegState.ACCEPT_INCOMPLETE,
      supportedMech: MechOid.NTLMSSP,
      responseToken: challenge,
    });
  }

  /**
   * Takes the client's NegTokenResp with its AUTHENTICATE_MESSAGE; returns the exported session
   * key (MS-NLMP 3.3.2: SessionBaseKey = HMAC-MD5(NTOWFv2, NTProofStr), which NTLMv2 uses as its
   * KeyExchangeKey, 3.4.5.1; with KEY_EXCH the client's key is RC4-encrypted under it) and the
   * final NegTokenResp to send back.
   */
  authenticate(clientToken: Buffer): { sessionKey: Buffer; token: Buffer } {
    const resp = decodeNegTokenResp(clientToken);
    if (resp.responseToken === undefined) throw new Error("hostile server: no AUTHENTICATE_MESSAGE");
    const auth = decodeAuthenticate(resp.responseToken);
    const responseKey = ntowfv2(this.password, auth.user, auth.domain);
    const temp = auth.ntChallengeResponse.subarray(16);
    const { sessionBaseKey } = ntlmv2Response(responseKey, this.serverChallenge, temp);
    const keyExch = (auth.flags & F.KEY_EXCH) !== 0 && auth.encryptedRandomSessionKey.length === 16;
    // RC4 is its own inverse: decrypting the random session key is encrypting it again.
    const sessionKey = keyExch
      ? encryptSessionKey(sessionBaseKey, auth.encryptedRandomSessionKey)
      : sessionBaseKey;
    // No mechListMIC: the client accepts a completed exchange without one (RFC 4178 5).
    return { sessionKey, token: encodeNegTokenResp({ negState: NegState.ACCEPT_COMPLETED }) };
  }
}
