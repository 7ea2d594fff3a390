/**
 * The client's NEGOTIATE (MS-SMB2 3.2.4.2.2, 3.2.5.2): the dialects it offers between the caller's
 * bounds, and on 3.1.1 the contexts that pick the pre-authentication hash, the cipher and the
 * signing algorithm. What the server answers is checked against what was offered: a dialect, a
 * cipher or an algorithm the client did not offer ends the connection.
 */
import { randomBytes } from "node:crypto";
import { Command } from "../codec/header.ts";
import {
  Capability,
  Cipher,
  decodeNegotiateResponse,
  Dialect,
  encodeNegotiateRequest,
  HashAlgorithm,
  SecurityMode,
  SigningAlgorithm,
  type NegotiateContext,
  type NegotiateRequest,
} from "../codec/negotiate.ts";
import { NtStatus, SmbStatusError } from "../codec/status.ts";
import { PreauthIntegrity } from "../crypto/preauth.ts";
import { signingAlgorithmFor } from "../crypto/signing.ts";
import type { CallOptions, SmbConnection } from "./connection.ts";
import { SmbNegotiationError } from "./errors.ts";

/** Every dialect the client speaks, oldest first (MS-SMB2 2.2.3). */
export const DIALECTS: readonly number[] = [
  Dialect.SMB_2_0_2,
  Dialect.SMB_2_1,
  Dialect.SMB_3_0,
  Dialect.SMB_3_0_2,
  Dialect.SMB_3_1_1,
];

/** Ciphers offered on 3.1.1, the preferred first (the server picks by its own order or ours). */
export const CIPHERS: readonly number[] = [
  Cipher.AES_128_GCM,
  Cipher.AES_128_CCM,
  Cipher.AES_256_GCM,
  Cipher.AES_256_CCM,
];

/** Signing algorithms offered on 3.1.1, the preferred first. */
export const SIGNING_ALGORITHMS: readonly number[] = [
  SigningAlgorithm.AES_GMAC,
  SigningAlgorithm.AES_CMAC,
  SigningAlgorithm.HMAC_SHA256,
];

/** What the caller allows. */
export interface NegotiateOptions {
  /** Lowest dialect offered (default 2.0.2). */
  readonly minDialect?: number;
  /** Highest dialect offered (default 3.1.1). */
  readonly maxDialect?: number;
  /** Sign every message even when the server does not require it. */
  readonly requireSigning: boolean;
}

/** What NEGOTIATE settled for the connection. */
export interface Negotiated {
  readonly dialect: number;
  /** The request as sent: FSCTL_VALIDATE_NEGOTIATE_INFO repeats its fields (MS-SMB2 2.2.31.4). */
  readonly request: NegotiateRequest;
  readonly serverGuid: Buffer;
  readonly serverSecurityMode: number;
  readonly serverCapabilities: number;
  /** Messages are signed: the client or the server requires it (MS-SMB2 3.2.5.3.1). */
  readonly signingRequired: boolean;
  /** The signing algorithm of the dialect (SigningAlgorithm). */
  readonly signingAlgorithm: number;
  /** The cipher, when the connection can encrypt (3.0 and 3.0.2: AES-128-CCM). */
  readonly cipher: number | undefined;
  /** 2.1 and later with LARGE_MTU: requests over 64 KiB, charged a credit per 64 KiB. */
  readonly multiCredit: boolean;
  readonly maxTransactSize: number;
  readonly maxReadSize: number;
  readonly maxWriteSize: number;
  /** The server's first GSS token (SPNEGO negTokenInit), possibly empty. */
  readonly securityBuffer: Buffer;
  /** 3.1.1: the hash over NEGOTIATE, where each session's hash starts. */
  readonly preauth: PreauthIntegrity | undefined;
}

/** Client capabilities by dialect family (MS-SMB2 2.2.3): 3.x asks for large MTU and encryption. */
function capabilitiesFor(maxDialect: number): number {
  return maxDialect >= Dialect.SMB_3_0 ? Capability.LARGE_MTU | Capability.ENCRYPTION : Capability.LARGE_MTU;
}

/** The dialects between the bounds, oldest first; SMB_NEGOTIATION_FAILED when there are none. */
export function dialectsBetween(min: number = Dialect.SMB_2_0_2, max: number = Dialect.SMB_3_1_1): number[] {
  const list = DIALECTS.filter((d) => d >= min && d <= max);
  if (list.length === 0) {
    throw new SmbNegotiationError(`no SMB dialect between 0x${min.toString(16)} and 0x${max.toString(16)}`);
  }
  return list;
}

/**
 * Sends NEGOTIATE and checks the answer; sets the connection's credits and frame cap.
 *
 * @example
 * const negotiated = await negotiate(conn, { requireSigning: true }, { timeoutMs: 10_000 });
 */
export async function negotiate(
  conn: SmbConnection,
  options: NegotiateOptions,
  call: CallOptions,
): Promise<Negotiated> {
  const dialects = dialectsBetween(options.minDialect, options.maxDialect);
  const offers311 = dialects.includes(Dialect.SMB_3_1_1);
  const contexts: NegotiateContext[] = offers311
    ? [
        { kind: "preauth", hashAlgorithms: [HashAlgorithm.SHA512], salt: randomBytes(32) },
        { kind: "encryption", ciphers: CIPHERS },
        { kind: "signing", signingAlgorithms: SIGNING_ALGORITHMS },
      ]
    : [];
  const request: NegotiateRequest = {
    securityMode: SecurityMode.SIGNING_ENABLED | (options.requireSigning ? SecurityMode.SIGNING_REQUIRED : 0),
    capabilities: capabilitiesFor(dialects[dialects.length - 1]!),
    clientGuid: randomBytes(16),
    dialects,
    negotiateContexts: contexts,
  };
  const response = await conn.send(
    { command: Command.NEGOTIATE, body: encodeNegotiateRequest(request), unsigned: true },
    call,
  );
  if (response.header.status >>> 0 !== NtStatus.SUCCESS) {
    // Samba answers STATUS_NOT_SUPPORTED, Windows closes the connection, when no dialect is shared.
    const refusal = new SmbStatusError(`NEGOTIATE with ${conn.host}`, response.header.status);
    throw new SmbNegotiationError(
      `${conn.host} refused dialects ${dialects.map((d) => `0x${d.toString(16)}`).join(", ")}: ${refusal.statusName}`,
      { cause: refusal },
    );
  }
  const answer = decodeNegotiateResponse(response.message);
  const dialect = answer.dialectRevision;
  const refuse = (why: string): never => {
    throw new SmbNegotiationError(`${conn.host}: ${why}`);
  };
  if (!dialects.includes(dialect)) refuse(`the server chose dialect 0x${dialect.toString(16)}, not offered`);

  let preauth: PreauthIntegrity | undefined;
  let cipher: number | undefined;
  let negotiatedSigning: number | undefined;
  if (dialect === Dialect.SMB_3_1_1) {
    const one = <K extends NegotiateContext["kind"]>(kind: K): Extract<NegotiateContext, { kind: K }>[] =>
      answer.negotiateContexts.filter((c): c is Extract<NegotiateContext, { kind: K }> => c.kind === kind);
    // MS-SMB2 3.2.5.2: exactly one preauth context, with exactly one hash, one the client offered.
    const preauths = one("preauth");
    const hash = preauths[0]?.hashAlgorithms;
    if (preauths.length !== 1 || hash?.length !== 1 || hash[0] !== HashAlgorithm.SHA512) {
      refuse("the NEGOTIATE answer has no single SHA-512 pre-authentication context");
    }
    const encryption = one("encryption");
    if (encryption.length > 1) refuse("two encryption contexts");
    const chosen = encryption[0]?.ciphers;
    if (chosen !== undefined) {
      if (chosen.length !== 1) refuse(`${chosen.length} ciphers chosen, not one`);
      const c = chosen[0]!;
      if (c !== 0 && !CIPHERS.includes(c)) refuse(`the server chose cipher ${c}, not offered`);
      cipher = c === 0 ? undefined : c;
    }
    const signing = one("signing");
    if (signing.length > 1) refuse("two signing contexts");
    const algorithms = signing[0]?.signingAlgorithms;
    if (algorithms !== undefined) {
      if (algorithms.length !== 1 || !SIGNING_ALGORITHMS.includes(algorithms[0]!)) {
        refuse(`the server chose signing algorithm(s) ${algorithms.join(",")}, not one offered`);
      }
      negotiatedSigning = algorithms[0];
    }
    preauth = new PreauthIntegrity();
    preauth.update(response.request);
    preauth.update(response.message);
  } else if (dialect >= Dialect.SMB_3_0 && (answer.capabilities & Capability.ENCRYPTION) !== 0) {
    cipher = Cipher.AES_128_CCM; // MS-SMB2 3.2.5.2: 3.0 and 3.0.2 encrypt with AES-128-CCM only
  }

  const multiCredit = dialect !== Dialect.SMB_2_0_2 && (answer.capabilities & Capability.LARGE_MTU) !== 0;
  const maxPayload = Math.max(answer.maxTransactSize, answer.maxReadSize, answer.maxWriteSize);
  conn.negotiated({ multiCredit, maxPayload: multiCredit ? Math.min(maxPayload, 8 << 20) : 65536 });
  return {
    dialect,
    request,
    serverGuid: answer.serverGuid,
    serverSecurityMode: answer.securityMode,
    serverCapabilities: answer.capabilities,
    signingRequired: options.requireSigning || (answer.securityMode & SecurityMode.SIGNING_REQUIRED) !== 0,
    signingAlgorithm: signingAlgorithmFor(dialect, negotiatedSigning),
    cipher,
    multiCredit,
    maxTransactSize: answer.maxTransactSize,
    maxReadSize: answer.maxReadSize,
    maxWriteSize: answer.maxWriteSize,
    securityBuffer: answer.securityBuffer,
    preauth,
  };
}
