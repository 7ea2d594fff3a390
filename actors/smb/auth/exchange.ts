/**
 * SMB's authentication exchange: SPNEGO (RFC 4178) carrying NTLMSSP (MS-NLMP) with NTLMv2, the MIC
 * and the mechListMIC, as MS-SMB2 3.2.5.3 runs it over SESSION_SETUP:
 *
 * 1. `initial()`: NegTokenInit with the NEGOTIATE_MESSAGE (the first SESSION_SETUP request);
 * 2. `respond(token)`: the server's NegTokenResp carries the CHALLENGE_MESSAGE; the answer is a
 *    NegTokenResp with the AUTHENTICATE_MESSAGE and the mechListMIC (the second request);
 * 3. `complete(token)`: the server's last NegTokenResp (accept-completed, and its mechListMIC);
 * then `sessionKey` is what SMB 3 derives its signing and encryption keys from (MS-SMB2 3.2.5.3.1).
 *
 * Kerberos is out of scope: only NTLMSSP is offered, so a domain account authenticates through its
 * server's pass-through to a domain controller, and a server that refuses NTLM cannot be reached.
 * NTLMv1 and LM are never sent.
 */
import { randomBytes, timingSafeEqual } from "node:crypto";
import { check } from "../../wire/bytes.ts";
import {
  SmbAccountError,
  SmbAuthIntegrityError,
  SmbAuthNegotiationError,
  SmbAuthRejectedError,
} from "./errors.ts";
import { avTimestamp } from "./ntlm-av-pairs.ts";
import { buildAuthenticate, targetInfoToSend } from "./ntlm-authenticate.ts";
import { decodeChallenge, encodeNegotiate, NegotiateFlags as F, type NtlmVersion } from "./ntlm-messages.ts";
import { mac, sealingKey, signingKey } from "./ntlmv2.ts";
import { createRc4 } from "./rc4.ts";
import {
  decodeNegTokenResp,
  encodeMechTypeList,
  encodeNegTokenInit,
  encodeNegTokenResp,
  MechOid,
  NegState,
} from "./spnego.ts";

/** Who logs on. The password is used for the keys and never appears in an error. */
export interface NtlmCredentials {
  readonly user: string;
  readonly domain: string;
  readonly password: string;
  readonly workstation?: string;
}

/** One authentication of one SMB session. */
export interface SpnegoNtlmExchange {
  /** The first SESSION_SETUP security buffer: NegTokenInit carrying an NTLMSSP NEGOTIATE. */
  initial(): Buffer;
  /** Given the server's token (NegTokenResp with the CHALLENGE), the next buffer: NegTokenResp with the AUTHENTICATE and a mechListMIC. */
  respond(serverToken: Buffer): Buffer;
  /** Checks the server's last token (accept-completed; verifies its mechListMIC when present; throws SMB_INTEGRITY_FAILED when wrong). */
  complete(serverToken: Buffer | undefined): void;
  /** The exported session key (16 bytes), for SMB's key derivation; throws before respond(). */
  readonly sessionKey: Buffer;
}

/** Options of {@link startSpnegoNtlm}; `random` is for tests. */
export interface SpnegoNtlmOptions {
  /** The server's host name: sent as MsvAvTargetName `cifs/<host>`. */
  readonly targetHost?: string;
  readonly random?: (n: number) => Buffer;
}

/**
 * What the client asks for (MS-NLMP 2.2.2.5), as Windows' SMB client does minus LM_KEY and OEM:
 * NTLMv2 with extended session security, 128-bit keys, key exchange and signing.
 */
const CLIENT_FLAGS =
  (F.UNICODE |
    F.REQUEST_TARGET |
    F.SIGN |
    F.NTLM |
    F.ALWAYS_SIGN |
    F.EXTENDED_SESSIONSECURITY |
    F.VERSION |
    F.NEGOTIATE_128 |
    F.KEY_EXCH |
    F.NEGOTIATE_56) >>>
  0;

/** Without these from the server there is no NTLMv2 session security this client implements. */
const REQUIRED = [
  [F.UNICODE, "Unicode"],
  [F.EXTENDED_SESSIONSECURITY, "extended session security"],
  [F.NEGOTIATE_128, "128-bit keys"],
] as const;

/** The VERSION sent (MS-NLMP 2.2.2.10, informative only): 10.0, build 0, NTLMSSP_REVISION_W2K3. */
const CLIENT_VERSION: NtlmVersion = { major: 10, minor: 0, build: 0, revision: 15 };

const MECH_TYPES = [MechOid.NTLMSSP];

/**
 * Starts an authentication.
 *
 * @example
 * const auth = startSpnegoNtlm({ user, domain, password }, { targetHost: "web01" });
 * const challenge = await sessionSetup(auth.initial());
 * const done = await sessionSetup(auth.respond(challenge.securityBuffer));
 * auth.complete(done.securityBuffer);
 * deriveKeys(auth.sessionKey);
 */
export function startSpnegoNtlm(
  credentials: NtlmCredentials,
  options: SpnegoNtlmOptions = {},
): SpnegoNtlmExchange {
  if (credentials.user === "") throw new SmbAccountError("the SMB account has an empty user name");
  const random = options.random ?? randomBytes;
  const mechTypeList = encodeMechTypeList(MECH_TYPES);
  let negotiate: Buffer | undefined;
  let exported: Buffer | undefined;
  let serverMic: (() => Buffer) | undefined;
  let completed = false;

  return {
    initial(): Buffer {
      if (negotiate !== undefined) throw new Error("initial() called twice on one SMB authentication");
      negotiate = encodeNegotiate({
        flags: CLIENT_FLAGS,
        domain: "",
        workstation: "",
        version: CLIENT_VERSION,
      });
      return encodeNegTokenInit({ mechTypes: MECH_TYPES, mechToken: negotiate });
    },

    respond(serverToken: Buffer): Buffer {
      if (negotiate === undefined || exported !== undefined) {
        throw new Error("respond() called out of turn on an SMB authentication");
      }
      const answer = decodeNegTokenResp(serverToken);
      if (answer.negState === NegState.REJECT) {
        throw new SmbAuthRejectedError("the SMB server rejected NTLM authentication (SPNEGO reject)");
      }
      if (answer.supportedMech !== undefined && answer.supportedMech !== MechOid.NTLMSSP) {
        throw new SmbAuthNegotiationError(
          `the SMB server chose mechanism ${answer.supportedMech}, not NTLMSSP`,
        );
      }
      check(
        answer.responseToken !== undefined,
        "SPNEGO NegTokenResp: no CHALLENGE_MESSAGE in the server's answer",
      );
      const challengeBytes = answer.responseToken;
      const challenge = decodeChallenge(challengeBytes);
      for (const [flag, name] of REQUIRED) {
        if ((challenge.flags & flag) === 0) {
          throw new SmbAuthNegotiationError(`the SMB server's NTLM does not offer ${name}`);
        }
      }
      const serverPairs = challenge.targetInfo ?? [];
      const timestamp = avTimestamp(serverPairs);
      // MS-NLMP 3.1.5.1.2: a MIC when the server sent a timestamp (every Windows since 2008 and Samba
      // do). Without one the AUTHENTICATE would go without a MIC: a man in the middle who stripped
      // it could relay the message with its flags changed, so no timestamp is no authentication.
      if (timestamp === undefined) {
        throw new SmbAuthNegotiationError(
          "the SMB server's NTLM CHALLENGE has no MsvAvTimestamp: the AUTHENTICATE would go without a MIC",
        );
      }
      const withMic = true;
      // The flags both sides have, and VERSION since the field is filled in.
      const flags = ((challenge.flags & (CLIENT_FLAGS | F.TARGET_INFO)) | F.VERSION) >>> 0;
      const host = options.targetHost;
      const { message, exportedSessionKey } = buildAuthenticate({
        user: credentials.user,
        domain: credentials.domain,
        password: credentials.password,
        workstation: credentials.workstation ?? "",
        negotiateBytes: negotiate,
        challengeBytes,
        challenge,
        flags,
        version: CLIENT_VERSION,
        clientChallenge: random(8),
        randomSessionKey: random(16),
        time: timestamp,
        targetInfo: targetInfoToSend(serverPairs, {
          withMic,
          ...(host === undefined || host === "" ? {} : { targetName: `cifs/${host}` }),
        }),
        withMic,
      });
      exported = exportedSessionKey;
      // MS-NLMP 3.4.4.2: the checksum is sealed with the direction's RC4 handle under KEY_EXCH.
      const keyExch = (flags & F.KEY_EXCH) !== 0;
      const sign = (direction: "client-to-server" | "server-to-client"): Buffer =>
        mac(
          signingKey(exportedSessionKey, direction),
          keyExch ? createRc4(sealingKey(exportedSessionKey, direction, 128)) : undefined,
          0,
          mechTypeList,
        );
      serverMic = () => sign("server-to-client");
      // RFC 4178 5: the mechListMIC covers the mechTypes as the client sent them.
      return encodeNegTokenResp({ responseToken: message, mechListMIC: sign("client-to-server") });
    },

    complete(serverToken: Buffer | undefined): void {
      if (serverMic === undefined || completed)
        throw new Error("complete() called out of turn on an SMB authentication");
      completed = true;
      if (serverToken === undefined || serverToken.length === 0) return;
      const answer = decodeNegTokenResp(serverToken);
      if (answer.negState === NegState.REJECT) {
        throw new SmbAuthRejectedError("the SMB server rejected the NTLM authentication (SPNEGO reject)");
      }
      if (answer.negState !== undefined && answer.negState !== NegState.ACCEPT_COMPLETED) {
        throw new SmbAuthNegotiationError(
          `the SMB server did not complete SPNEGO (negState ${answer.negState})`,
        );
      }
      if (answer.mechListMIC === undefined) return;
      const expected = serverMic();
      const given = answer.mechListMIC;
      if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
        throw new SmbAuthIntegrityError("the SMB server's SPNEGO mechListMIC does not verify");
      }
    },

    get sessionKey(): Buffer {
      if (exported === undefined) throw new Error("the SMB session key is not known before respond()");
      return Buffer.from(exported);
    },
  };
}
