/**
 * Builds and signs X.509 v3 certificates (RFC 5280 4.1) with ECDSA P-256 / SHA-256: the ASN.1 comes
 * from `@peculiar/asn1-x509`, the signature from Node's OpenSSL (`crypto.sign`, synchronous). No
 * input checking here: `credentials.ts` checks names and keys and chooses the extensions' values.
 */
import { createHash, type KeyObject, randomBytes, sign } from "node:crypto";
import { AsnConvert, OctetString } from "@peculiar/asn1-schema";
import * as x509 from "@peculiar/asn1-x509";

/** ecdsa-with-SHA256 (RFC 5758 3.2): its AlgorithmIdentifier has no parameters. */
const ECDSA_WITH_SHA256 = "1.2.840.10045.4.3.2";
const ID_AT_COMMON_NAME = "2.5.4.3";

export type Name = x509.Name;
export type SubjectPublicKeyInfo = x509.SubjectPublicKeyInfo;
export type Extension = x509.Extension;

/** What one certificate says, before signing. Times are milliseconds since the epoch. */
export interface CertificateTemplate {
  readonly issuer: Name;
  readonly subject: Name;
  readonly spki: SubjectPublicKeyInfo;
  readonly notBefore: number;
  readonly notAfter: number;
  readonly extensions: readonly Extension[];
}

/** The parts of an issuer certificate that issuing under it needs. */
export interface ParsedIssuer {
  readonly subject: Name;
  readonly keyId: ArrayBuffer;
  readonly notAfter: number;
}

/** Encodes the TBSCertificate, signs it with `signer` and returns the certificate's DER. */
export function signCertificate(template: CertificateTemplate, signer: KeyObject): Buffer {
  const algorithm = new x509.AlgorithmIdentifier({ algorithm: ECDSA_WITH_SHA256 });
  const tbsCertificate = new x509.TBSCertificate({
    version: x509.Version.v3,
    serialNumber: serialNumber(),
    signature: algorithm,
    issuer: template.issuer,
    validity: new x509.Validity({
      notBefore: new Date(template.notBefore),
      notAfter: new Date(template.notAfter),
    }),
    subject: template.subject,
    subjectPublicKeyInfo: template.spki,
    extensions: new x509.Extensions([...template.extensions]),
  });
  const tbs = new Uint8Array(AsnConvert.serialize(tbsCertificate));
  // dsaEncoding "der": X.509 carries ECDSA-Sig-Value as a DER SEQUENCE (RFC 5480 2.2, RFC 3279 2.2.3).
  const signatureValue = toArrayBuffer(sign("sha256", tbs, { key: signer, dsaEncoding: "der" }));
  const certificate = new x509.Certificate({ tbsCertificate, signatureAlgorithm: algorithm, signatureValue });
  return Buffer.from(AsnConvert.serialize(certificate));
}

/** A CA's extensions: cA=true pathLen 0, keyCertSign + cRLSign, subjectKeyIdentifier (RFC 5280 4.2.1). */
export function caExtensions(keyId: ArrayBuffer): Extension[] {
  const usage = x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign;
  return [
    extension(
      x509.id_ce_basicConstraints,
      true,
      new x509.BasicConstraints({ cA: true, pathLenConstraint: 0 }),
    ),
    extension(x509.id_ce_keyUsage, true, new x509.KeyUsage(usage)),
    extension(x509.id_ce_subjectKeyIdentifier, false, new x509.SubjectKeyIdentifier(keyId)),
  ];
}

/** A subject alternative name, already checked by the caller. */
export type AltName = { readonly dns: string } | { readonly ip: string };

/**
 * An end entity's extensions: cA=false and digitalSignature (both critical; ECDHE key exchange
 * needs no keyEncipherment), extKeyUsage (serverAuth, clientAuth, or both; sumac issues one-purpose
 * leaves only, see credentials.ts), authorityKeyIdentifier, subjectAltName.
 */
export function leafExtensions(p: {
  readonly purpose: "server" | "client" | "server-and-client";
  readonly authorityKeyId: ArrayBuffer;
  readonly altNames: readonly AltName[];
}): Extension[] {
  const purposes =
    p.purpose === "server"
      ? [x509.id_kp_serverAuth]
      : p.purpose === "client"
        ? [x509.id_kp_clientAuth]
        : [x509.id_kp_serverAuth, x509.id_kp_clientAuth];
  const names = p.altNames.map((n) =>
    "ip" in n ? new x509.GeneralName({ iPAddress: n.ip }) : new x509.GeneralName({ dNSName: n.dns }),
  );
  const authority = new x509.AuthorityKeyIdentifier({
    keyIdentifier: new x509.KeyIdentifier(p.authorityKeyId),
  });
  return [
    extension(x509.id_ce_basicConstraints, true, new x509.BasicConstraints({ cA: false })),
    extension(x509.id_ce_keyUsage, true, new x509.KeyUsage(x509.KeyUsageFlags.digitalSignature)),
    extension(x509.id_ce_extKeyUsage, false, new x509.ExtendedKeyUsage(purposes)),
    extension(x509.id_ce_authorityKeyIdentifier, false, authority),
    // RFC 5280 4.2.1.6: critical only when the subject is empty, which ours never is.
    ...(names.length > 0
      ? [extension(x509.id_ce_subjectAltName, false, new x509.SubjectAlternativeName(names))]
      : []),
  ];
}

/** A Name holding one commonName, as a UTF8String (RFC 5280 4.1.2.6). */
export function commonName(cn: string): Name {
  const value = new x509.AttributeValue({ utf8String: cn });
  return new x509.Name([
    new x509.RelativeDistinguishedName([new x509.AttributeTypeAndValue({ type: ID_AT_COMMON_NAME, value })]),
  ]);
}

export function subjectPublicKeyInfo(publicKey: KeyObject): SubjectPublicKeyInfo {
  return AsnConvert.parse(publicKey.export({ format: "der", type: "spki" }), x509.SubjectPublicKeyInfo);
}

/** RFC 7093 2 method 1: the leftmost 160 bits of SHA-256 over the subjectPublicKey bits. */
export function keyIdentifier(spki: SubjectPublicKeyInfo): ArrayBuffer {
  const digest = createHash("sha256").update(new Uint8Array(spki.subjectPublicKey)).digest();
  return toArrayBuffer(digest.subarray(0, 20));
}

/** Reads back what issuing under a certificate needs, e.g. a run CA loaded from the state directory. */
export function parseIssuer(der: Uint8Array): ParsedIssuer {
  const tbs = AsnConvert.parse(der, x509.Certificate).tbsCertificate;
  return {
    subject: tbs.subject,
    keyId: keyIdentifier(tbs.subjectPublicKeyInfo),
    notAfter: tbs.validity.notAfter.getTime().getTime(),
  };
}

/** SHA-256 over the DER certificate, upper-case hex pairs joined by ':', as `tls` reports it. */
export function fingerprint256(der: Uint8Array): string {
  return createHash("sha256")
    .update(der)
    .digest("hex")
    .toUpperCase()
    .replace(/..(?!$)/g, "$&:");
}

/** PEM per RFC 7468 5.1: base64 in lines of 64 characters. */
export function toPem(der: Buffer): string {
  const lines = der.toString("base64").match(/.{1,64}/g) ?? [];
  return `-----BEGIN CERTIFICATE-----\n${lines.join("\n")}\n-----END CERTIFICATE-----\n`;
}

export function fromPem(pem: string): Buffer {
  const body = /-----BEGIN CERTIFICATE-----([\s\S]+?)-----END CERTIFICATE-----/.exec(pem)?.[1];
  if (body === undefined) throw new TypeError("not a PEM certificate");
  return Buffer.from(body.replace(/\s+/g, ""), "base64");
}

/**
 * 16 random bytes as a positive INTEGER (RFC 5280 4.1.2.2: positive, at most 20 octets). The top
 * bit is cleared (positive) and the next one set, so the DER is always exactly these 16 octets with
 * no leading zero to add or strip: 126 random bits.
 */
function serialNumber(): ArrayBuffer {
  const bytes = randomBytes(16);
  bytes[0] = ((bytes[0] ?? 0) & 0x7f) | 0x40;
  return toArrayBuffer(bytes);
}

function extension(id: string, critical: boolean, value: unknown): Extension {
  return new x509.Extension({
    extnID: id,
    critical,
    extnValue: new OctetString(AsnConvert.serialize(value)),
  });
}

function toArrayBuffer(bytes: Uint8Array): ArrayBuffer {
  return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
}
