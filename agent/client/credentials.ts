/**
 * Credentials for the agent's mutual TLS 1.3: one CA per run, and leaf certificates for each end of
 * each target's session, all ECDSA P-256 with SHA-256 (RFC 5758 3.2, RFC 5480).
 *
 * Why this shape:
 * - Keys are made and signed by Node's own OpenSSL (`node:crypto`, synchronous); the ASN.1 of the
 *   certificate is built with `@peculiar/asn1-x509`. Measured in `bench/credentials.ts` against
 *   `@peculiar/x509` over WebCrypto, `pkijs` and `jsrsasign` (leaf with a new key, median of three
 *   runs under load: 0.78 ms, against 2.2, 1.2 and 42 ms), this pairing was the fastest, is
 *   synchronous, and needs no global `reflect-metadata` polyfill, DI container or crypto engine.
 * - The agent's private key never leaves the target: the agent makes its own (agent/protocol/key-pair.ts), sends
 *   back only its SPKI public key over the push channel (SSH or signed SMB, which already protect
 *   integrity), and the workstation issues its two leaves on that key (server, and client for its
 *   callbacks). A PKCS#10 CSR would add a proof of possession, but the TLS 1.3 CertificateVerify
 *   (RFC 8446 4.4.3) proves possession on the first handshake anyway, and a CSR encoder would have
 *   to ship inside the agent bundle.
 * - Nothing here verifies chains: Node's TLS does (never node-forge).
 */
import { errorClass } from "../../base/errors.ts";
import { DEFAULT_MAX_OFFSET_MS } from "../protocol/message-security.ts";
import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from "node:crypto";
import { isIP } from "node:net";
import {
  type AltName,
  caExtensions,
  commonName,
  fingerprint256,
  fromPem,
  keyIdentifier,
  leafExtensions,
  type ParsedIssuer,
  parseIssuer,
  signCertificate,
  subjectPublicKeyInfo,
  toPem,
} from "./x509-builder.ts";

/** ub-common-name (RFC 5280 Appendix A.1). */
const MAX_COMMON_NAME = 64;

/**
 * How far notBefore is set in the past, so a target whose clock runs behind still accepts the
 * workstation's certificates: a day, as far as message security lets two clocks differ
 * (DEFAULT_MAX_OFFSET_MS in agent/protocol/message-security.ts). Nothing was signed with the run's
 * CA before it was made, so the earlier start opens nothing.
 */
export const CLOCK_SKEW_BACKDATE_MS = DEFAULT_MAX_OFFSET_MS;

/** A run's CA: certificate and PKCS#8 key in PEM, and the SHA-256 fingerprint in `tls`'s format. */
export interface RunCa {
  readonly certPem: string;
  readonly keyPem: string;
  readonly fingerprint256: string;
}

/** A leaf issued on a public key the caller supplied: no private key here. */
export interface IssuedCertificate {
  readonly certPem: string;
  readonly fingerprint256: string;
}

/** A leaf issued with a fresh key pair. */
export interface IssuedLeafWithKey extends IssuedCertificate {
  readonly keyPem: string;
}

/**
 * Which end of TLS a leaf authenticates: selects extKeyUsage serverAuth, clientAuth, or both.
 * sumac issues only one-purpose leaves: an agent gets a server leaf for its listener and a client
 * leaf on the same key for its callbacks, so neither can stand in for the other, and the
 * workstation's own leaf is client-only.
 */
export type LeafUsage = "server" | "client" | "server-and-client";

export interface LeafOptions {
  readonly commonName: string;
  /** DNS names and IPv4/IPv6 literals; required (non-empty) for a server leaf. */
  readonly subjectAltNames: readonly string[];
  readonly usage: LeafUsage;
  /** Defaults to, and is always capped at, the CA's own notAfter. */
  readonly validForMs?: number;
  /** Milliseconds since the epoch; defaults to `Date.now()`. */
  readonly now?: number;
}

/** A public key that is not an ECDSA P-256 SPKI PEM. */
export class InvalidPublicKeyError extends errorClass("INVALID_PUBLIC_KEY") {}

/** A common name or subject alternative name that cannot go into a certificate. */
export class InvalidSubjectNameError extends errorClass("INVALID_SUBJECT_NAME") {}

/**
 * Makes the run's CA: self-signed, basicConstraints cA=true with pathLen 0 (it signs leaves only)
 * and keyUsage keyCertSign + cRLSign, both critical (RFC 5280 4.2.1.9, 4.2.1.3), valid from
 * {@link CLOCK_SKEW_BACKDATE_MS} ago for `validForMs` from `now`.
 */
export function createRunCa(options: {
  readonly runId: string;
  readonly validForMs: number;
  readonly now?: number;
}): RunCa {
  const runId = checkText(options.runId, "runId", MAX_COMMON_NAME - "sumac run ".length);
  if (!(options.validForMs > 0)) throw new RangeError("validForMs must be positive");
  const name = commonName(`sumac run ${runId}`);
  const { publicKey, privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const spki = subjectPublicKeyInfo(publicKey);
  const keyId = keyIdentifier(spki);
  const now = options.now ?? Date.now();
  const notAfter = now + options.validForMs;
  const der = signCertificate(
    {
      issuer: name,
      subject: name,
      spki,
      notBefore: now - CLOCK_SKEW_BACKDATE_MS,
      notAfter,
      extensions: caExtensions(keyId),
    },
    privateKey,
  );
  const ca = { certPem: toPem(der), keyPem: pkcs8(privateKey), fingerprint256: fingerprint256(der) };
  // UTCTime holds whole seconds: cache what the certificate says, as parseIssuer would read it.
  caCache.set(ca, { subject: name, keyId, notAfter: Math.floor(notAfter / 1000) * 1000, key: privateKey });
  return ca;
}

/**
 * Issues a leaf signed by `ca`: basicConstraints cA=false, keyUsage digitalSignature (both
 * critical), extKeyUsage serverAuth or clientAuth, subjectAltName, a random positive 16-byte
 * serial, notBefore backdated by {@link CLOCK_SKEW_BACKDATE_MS}, notAfter no later than the CA's.
 *
 * With `publicKey` (an SPKI PEM from agent/protocol/key-pair.ts on the other machine) only the
 * certificate comes back; without it a new key pair is made and its PKCS#8 PEM is returned too.
 *
 * @example
 * const agent = issueLeaf(ca, { commonName: "web01", subjectAltNames: ["web01.lan", "10.0.0.7"],
 *   usage: "server", publicKey: agentPublicKeyPem });
 * const workstation = issueLeaf(ca, { commonName: "workstation", subjectAltNames: [], usage: "client" });
 */
export function issueLeaf(
  ca: RunCa,
  options: LeafOptions & { readonly publicKey: string },
): IssuedCertificate;
export function issueLeaf(
  ca: RunCa,
  options: LeafOptions & { readonly publicKey?: undefined },
): IssuedLeafWithKey;
export function issueLeaf(
  ca: RunCa,
  options: LeafOptions & { readonly publicKey?: string | undefined },
): IssuedCertificate | IssuedLeafWithKey {
  const issuer = caState(ca);
  const altNames = options.subjectAltNames.map(altName);
  if (options.usage !== "client" && altNames.length === 0)
    throw new InvalidSubjectNameError("a server leaf needs at least one subject alternative name");
  const subject = commonName(checkText(options.commonName, "commonName", MAX_COMMON_NAME));

  let publicKey: KeyObject;
  let privateKey: KeyObject | undefined;
  if (options.publicKey === undefined)
    ({ publicKey, privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" }));
  else publicKey = parseP256PublicKey(options.publicKey);

  const now = options.now ?? Date.now();
  const template = {
    issuer: issuer.subject,
    subject,
    spki: subjectPublicKeyInfo(publicKey),
    notBefore: now - CLOCK_SKEW_BACKDATE_MS,
    notAfter: Math.min(now + (options.validForMs ?? Infinity), issuer.notAfter),
    extensions: leafExtensions({ purpose: options.usage, authorityKeyId: issuer.keyId, altNames }),
  };
  const der = signCertificate(template, issuer.key);
  const leaf = { certPem: toPem(der), fingerprint256: fingerprint256(der) };
  return privateKey === undefined ? leaf : { ...leaf, keyPem: pkcs8(privateKey) };
}

interface CaState extends ParsedIssuer {
  readonly key: KeyObject;
}

/** Parsed CAs, so issuing many leaves parses the CA's PEM once; a CA loaded from disk is parsed on first use. */
const caCache = new WeakMap<RunCa, CaState>();

function caState(ca: RunCa): CaState {
  let state = caCache.get(ca);
  if (state === undefined) {
    state = { ...parseIssuer(fromPem(ca.certPem)), key: createPrivateKey(ca.keyPem) };
    caCache.set(ca, state);
  }
  return state;
}

/** RFC 1123 host names, the "preferred name syntax" RFC 5280 4.2.1.6 requires of dNSName. */
const DNS_NAME =
  /^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/i;

function altName(value: string): AltName {
  if (isIP(value) !== 0) {
    // The IP converter of @peculiar/asn1-x509 does not take IPv6 with an embedded dotted quad.
    if (value.includes(":") && value.includes("."))
      throw new InvalidSubjectNameError(`unsupported IPv6 form: ${value}`);
    return { ip: value };
  }
  if (!DNS_NAME.test(value))
    throw new InvalidSubjectNameError(`not a DNS name or IP address: ${JSON.stringify(value)}`);
  return { dns: value };
}

function checkText(value: string, what: string, max: number): string {
  if (value.length === 0 || value.length > max || /[\u0000-\u001f\u007f]/.test(value))
    throw new InvalidSubjectNameError(`${what} must be 1 to ${max} printable characters`);
  return value;
}

function parseP256PublicKey(pem: string): KeyObject {
  // createPublicKey would also derive a public key from a private one; refuse that, since a
  // private key arriving here means it crossed the push channel.
  if (!pem.trimStart().startsWith("-----BEGIN PUBLIC KEY-----"))
    throw new InvalidPublicKeyError("expected an SPKI PEM (-----BEGIN PUBLIC KEY-----)");
  let key: KeyObject;
  try {
    key = createPublicKey({ key: pem, format: "pem" });
  } catch (cause) {
    throw new InvalidPublicKeyError("the public key PEM does not parse", { cause });
  }
  if (key.asymmetricKeyType !== "ec" || key.asymmetricKeyDetails?.namedCurve !== "prime256v1")
    throw new InvalidPublicKeyError(`expected an ECDSA P-256 key, got ${key.asymmetricKeyType ?? "unknown"}`);
  return key;
}

function pkcs8(key: KeyObject): string {
  return key.export({ format: "pem", type: "pkcs8" }).toString();
}
