/**
 * The client's SESSION_SETUP (MS-SMB2 3.2.4.2.3, 3.2.5.3): the SPNEGO/NTLM exchange, the 3.1.1
 * pre-authentication hash over its messages, the session's keys by dialect, the check of the final
 * answer's signature, and the protection the connection applies from then on. A refused account
 * is AUTH_FAILED, said once: the client never tries the password again (a lockout policy counts
 * every attempt).
 */
import { startSpnegoNtlm } from "../auth/exchange.ts";
import { Command, HeaderFlag } from "../codec/header.ts";
import { encodeLogoffRequest } from "../codec/logoff.ts";
import { Dialect } from "../codec/negotiate.ts";
import {
  decodeSessionSetupResponse,
  encodeSessionSetupRequest,
  SessionFlag,
} from "../codec/session-setup.ts";
import { NtStatus, SmbStatusError, statusName } from "../codec/status.ts";
import { SmbIntegrityError } from "../crypto/errors.ts";
import { deriveSessionKeys, type SessionKeys } from "../crypto/keys.ts";
import { NonceSource } from "../crypto/nonce.ts";
import { signMessage, verifySignature } from "../crypto/signing.ts";
import { decryptMessage, encryptMessageParts } from "../crypto/transform.ts";
import type { CallOptions, SmbConnection } from "./connection.ts";
import { SmbAuthError, SmbNegotiationError } from "./errors.ts";
import type { Negotiated } from "./negotiate.ts";
import type { SessionSecurity } from "./security.ts";

/** SecurityMode of SESSION_SETUP, one byte (MS-SMB2 2.2.5). */
const SIGNING_ENABLED = 0x01;
const SIGNING_REQUIRED = 0x02;

/** Rounds of the exchange before the client gives up (NTLM takes two). */
const MAX_ROUNDS = 4;

/** Statuses that mean the account was refused (MS-SMB2 3.3.5.5.3 passes the authenticator's on). */
const REFUSALS = new Set<number>([
  NtStatus.LOGON_FAILURE,
  NtStatus.WRONG_PASSWORD,
  NtStatus.ACCOUNT_LOCKED_OUT,
  NtStatus.ACCOUNT_DISABLED,
  NtStatus.ACCOUNT_RESTRICTION,
  NtStatus.INVALID_LOGON_HOURS,
  NtStatus.INVALID_WORKSTATION,
  NtStatus.PASSWORD_EXPIRED,
  NtStatus.PASSWORD_MUST_CHANGE,
]);

/** The account: never logged with its password. */
export interface SmbCredentials {
  readonly user: string;
  readonly domain: string;
  readonly password: string;
}

/** A session, once set up. */
export interface Session {
  readonly id: bigint;
  readonly keys: SessionKeys;
  /** SessionFlags of the final answer (MS-SMB2 2.2.6). */
  readonly flags: number;
  /** Every message of the session is encrypted. */
  readonly encryptAll: boolean;
  /** What the connection needs to protect the session's messages. */
  readonly security: SessionSecurity;
}

/** The account as `DOMAIN\user`, for messages. */
export function accountName(c: SmbCredentials): string {
  return c.domain === "" ? c.user : `${c.domain}\\${c.user}`;
}

/**
 * The session's protection: signing with the negotiated algorithm, encryption with its cipher
 * (3.0 and later), `encryptAll` when the server's flags or the caller ask.
 */
export function sessionSecurity(
  negotiated: Negotiated,
  id: bigint,
  keys: SessionKeys,
  encryptAll: boolean,
): SessionSecurity {
  const alg = negotiated.signingAlgorithm;
  const cipher = negotiated.cipher;
  // The keys sign whenever asked; signAll says whether every request is (MS-SMB2 3.2.4.1.1).
  const signing = {
    sign: (m: Buffer) => signMessage(alg, keys.signingKey, m),
    verify: (m: Buffer) => verifySignature(alg, keys.signingKey, m),
    signAll: negotiated.signingRequired,
  };
  if (cipher === undefined || negotiated.dialect < Dialect.SMB_3_0)
    return { sessionId: id, ...signing, encryptAll };
  const nonces = new NonceSource(cipher);
  return {
    sessionId: id,
    ...signing,
    encryptAll,
    seal: {
      encrypt: (message) =>
        encryptMessageParts({
          cipher,
          key: keys.encryptionKey,
          sessionId: id,
          message,
          nonce: nonces.next(),
        }),
      decrypt: (frame) => {
        const out = decryptMessage({ cipher, key: keys.decryptionKey, frame });
        if (out.sessionId !== id)
          throw new SmbIntegrityError(`an encrypted answer for session ${out.sessionId}, not ${id}`);
        return out.message;
      },
    },
  };
}

/**
 * Authenticates on `conn` and installs the session's protection on it.
 * Throws AUTH_FAILED when the account is refused (or only a guest session is offered),
 * SMB_INTEGRITY_FAILED when the final answer's signature is wrong, SMB_NEGOTIATION_FAILED when the
 * caller asks for encryption that the connection cannot do.
 */
export async function setupSession(
  conn: SmbConnection,
  negotiated: Negotiated,
  options: { credentials: SmbCredentials; encrypt: boolean },
  call: CallOptions,
): Promise<Session> {
  const account = accountName(options.credentials);
  if (options.encrypt && negotiated.cipher === undefined) {
    throw new SmbNegotiationError(
      `${conn.host}: encryption asked for, but dialect 0x${negotiated.dialect.toString(16)} with this server has no cipher`,
    );
  }
  const { user, domain, password } = options.credentials;
  const exchange = startSpnegoNtlm({ user, domain, password }, { targetHost: conn.host });
  const preauth = negotiated.preauth?.fork();
  const securityMode = SIGNING_ENABLED | (negotiated.signingRequired ? SIGNING_REQUIRED : 0);
  let token = exchange.initial();
  let sessionId = 0n;
  // NTLM in SPNEGO is one CHALLENGE, then the final answer (MS-SMB2 3.2.5.3): a server that asks
  // for more, or succeeds before it, is not running the exchange the client started.
  let challenged = false;
  for (let round = 1; round <= MAX_ROUNDS; round++) {
    const body = encodeSessionSetupRequest({
      flags: 0,
      securityMode,
      capabilities: 0,
      channel: 0,
      previousSessionId: 0n,
      securityBuffer: token,
    });
    const response = await conn.send(
      { command: Command.SESSION_SETUP, body, sessionId, unsigned: true },
      call,
    );
    preauth?.update(response.request);
    const status = response.header.status >>> 0;
    if (status === NtStatus.MORE_PROCESSING_REQUIRED) {
      if (challenged) throw new SmbNegotiationError(`${conn.host} asked for a second NTLM round`);
      challenged = true;
      preauth?.update(response.message);
      sessionId = response.header.sessionId;
      token = exchange.respond(decodeSessionSetupResponse(response.message).securityBuffer);
      continue;
    }
    if (REFUSALS.has(status)) {
      throw new SmbAuthError(`${conn.host} refused the account ${account}: ${statusName(status)}`);
    }
    if (status !== NtStatus.SUCCESS)
      throw new SmbStatusError(`SESSION_SETUP of ${account} on ${conn.host}`, status);

    const answer = decodeSessionSetupResponse(response.message);
    if ((answer.sessionFlags & (SessionFlag.IS_GUEST | SessionFlag.IS_NULL)) !== 0) {
      throw new SmbAuthError(`${conn.host} gave ${account} a guest or anonymous session, which is refused`);
    }
    if (!challenged)
      throw new SmbNegotiationError(`${conn.host} ended SESSION_SETUP before NTLM's challenge`);
    exchange.complete(answer.securityBuffer.length > 0 ? answer.securityBuffer : undefined);
    sessionId = response.header.sessionId;
    const keys = deriveSessionKeys({
      dialect: negotiated.dialect,
      sessionKey: exchange.sessionKey,
      ...(preauth ? { preauthHash: preauth.value } : {}),
      ...(negotiated.cipher !== undefined ? { cipher: negotiated.cipher } : {}),
    });
    // MS-SMB2 3.2.5.3.1: on 3.1.1 the final answer is signed with the new key; on earlier
    // dialects it is when signing is required. An unsigned one there would be a downgrade.
    const signed = (response.header.flags & HeaderFlag.SIGNED) !== 0;
    const mustBeSigned = negotiated.dialect === Dialect.SMB_3_1_1 || negotiated.signingRequired;
    if (signed || mustBeSigned) {
      if (!signed || !verifySignature(negotiated.signingAlgorithm, keys.signingKey, response.message)) {
        throw new SmbIntegrityError(
          `${conn.host}: the final SESSION_SETUP answer is ${signed ? "badly signed" : "unsigned"}`,
        );
      }
    }
    const encryptAll = options.encrypt || (answer.sessionFlags & SessionFlag.ENCRYPT_DATA) !== 0;
    if (encryptAll && negotiated.cipher === undefined) {
      throw new SmbNegotiationError(`${conn.host} requires encryption, which this dialect cannot do`);
    }
    const security = sessionSecurity(negotiated, sessionId, keys, encryptAll);
    conn.secure(security);
    return { id: sessionId, keys, flags: answer.sessionFlags, encryptAll, security };
  }
  throw new SmbAuthError(`${conn.host}: the authentication of ${account} took over ${MAX_ROUNDS} rounds`);
}

/** LOGOFF (MS-SMB2 2.2.7); its failure is of no consequence to a client about to close. */
export async function logoff(conn: SmbConnection, call: CallOptions): Promise<void> {
  const response = await conn.send({ command: Command.LOGOFF, body: encodeLogoffRequest() }, call);
  const status = response.header.status >>> 0;
  if (status !== NtStatus.SUCCESS) throw new SmbStatusError(`LOGOFF on ${conn.host}`, status);
}
