/**
 * The client's answer to a CHALLENGE_MESSAGE (MS-NLMP 3.1.5.1.2): the NTLMv2 responses, the key
 * exchange and the MIC, assembled into the AUTHENTICATE_MESSAGE. Pure: the randomness, the time and
 * the target info to send back are inputs, so that MS-NLMP 4.2.4's example runs through it.
 */
import { AvFlag, AvId, avFlags, avText, encodeAvPairs, type AvPair } from "./ntlm-av-pairs.ts";
import {
  encodeAuthenticate,
  MIC_OFFSET,
  NegotiateFlags,
  type ChallengeMessage,
  type NtlmVersion,
} from "./ntlm-messages.ts";
import {
  clientBlob,
  computeMic,
  encryptSessionKey,
  lmv2Response,
  ntlmv2Response,
  ntowfv2,
} from "./ntlmv2.ts";

/** Everything the AUTHENTICATE_MESSAGE is computed from. */
export interface AuthenticateInputs {
  readonly user: string;
  readonly domain: string;
  readonly password: string;
  readonly workstation: string;
  /** The NEGOTIATE_MESSAGE and CHALLENGE_MESSAGE as they went over the wire (the MIC covers them). */
  readonly negotiateBytes: Buffer;
  readonly challengeBytes: Buffer;
  readonly challenge: ChallengeMessage;
  /** The AUTHENTICATE_MESSAGE's NegotiateFlags. */
  readonly flags: number;
  readonly version?: NtlmVersion;
  /** 8 random bytes. */
  readonly clientChallenge: Buffer;
  /** 16 random bytes, the ExportedSessionKey when KEY_EXCH is in `flags`. */
  readonly randomSessionKey: Buffer;
  /** The FILETIME in the client blob: the server's MsvAvTimestamp when it sent one. */
  readonly time: bigint;
  /** The AV_PAIR list put in the client blob (see {@link targetInfoToSend}). */
  readonly targetInfo: readonly AvPair[];
  /** Whether to send a MIC (and LMv2 as zeros): when the server's target info has a timestamp. */
  readonly withMic: boolean;
}

/** The AUTHENTICATE_MESSAGE and the key SMB derives its own keys from. */
export interface AuthenticateResult {
  readonly message: Buffer;
  readonly exportedSessionKey: Buffer;
}

/**
 * The AV_PAIR list a client sends back (MS-NLMP 3.1.5.1.2), as Windows clients build it: the
 * server's pairs, MsvAvFlags with MIC_PRESENT when a MIC is sent, an all-zero MsvAvChannelBindings
 * (no TLS channel under SMB) and MsvAvTargetName `cifs/<host>` when the host is known.
 */
export function targetInfoToSend(
  serverPairs: readonly AvPair[],
  options: { readonly withMic: boolean; readonly targetName?: string },
): AvPair[] {
  const replaced = new Set<number>([AvId.MsvAvChannelBindings, AvId.MsvAvTargetName]);
  const pairs = serverPairs.filter((p) => !replaced.has(p.id));
  if (options.withMic) {
    const flags = Buffer.alloc(4);
    flags.writeUInt32LE(((avFlags(serverPairs) ?? 0) | AvFlag.MIC_PRESENT) >>> 0, 0);
    const at = pairs.findIndex((p) => p.id === AvId.MsvAvFlags);
    if (at >= 0) pairs[at] = { id: AvId.MsvAvFlags, value: flags };
    else pairs.push({ id: AvId.MsvAvFlags, value: flags });
  }
  pairs.push({ id: AvId.MsvAvChannelBindings, value: Buffer.alloc(16) });
  if (options.targetName !== undefined) pairs.push(avText(AvId.MsvAvTargetName, options.targetName));
  return pairs;
}

/** Computes the AUTHENTICATE_MESSAGE (MS-NLMP 3.1.5.1.2, 3.3.2) and the ExportedSessionKey. */
export function buildAuthenticate(i: AuthenticateInputs): AuthenticateResult {
  const serverChallenge = i.challenge.serverChallenge;
  const responseKey = ntowfv2(i.password, i.user, i.domain);
  const temp = clientBlob(i.time, i.clientChallenge, encodeAvPairs(i.targetInfo));
  const nt = ntlmv2Response(responseKey, serverChallenge, temp);
  // MS-NLMP 3.3.2: with a server timestamp, the LMv2 response is Z(24) (the MIC protects instead).
  const lm = i.withMic ? Buffer.alloc(24) : lmv2Response(responseKey, serverChallenge, i.clientChallenge);
  responseKey.fill(0);
  // MS-NLMP 3.4.5.1: NTLMv2's KeyExchangeKey is the SessionBaseKey.
  const keyExchangeKey = nt.sessionBaseKey;
  const keyExch = (i.flags & NegotiateFlags.KEY_EXCH) !== 0;
  const exportedSessionKey = keyExch ? Buffer.from(i.randomSessionKey) : Buffer.from(keyExchangeKey);
  const message = encodeAuthenticate({
    flags: i.flags,
    lmChallengeResponse: lm,
    ntChallengeResponse: nt.ntChallengeResponse,
    domain: i.domain,
    user: i.user,
    workstation: i.workstation,
    encryptedRandomSessionKey: keyExch
      ? encryptSessionKey(keyExchangeKey, i.randomSessionKey)
      : Buffer.alloc(0),
    ...(i.version === undefined ? {} : { version: i.version }),
    ...(i.withMic ? { mic: Buffer.alloc(16) } : {}),
  });
  if (i.withMic) {
    computeMic(exportedSessionKey, i.negotiateBytes, i.challengeBytes, message).copy(message, MIC_OFFSET);
  }
  return { message, exportedSessionKey };
}
