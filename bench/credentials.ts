/**
 * Certificate issuance for the agent's mutual TLS: median and p90 milliseconds of
 * key pair generation, run CA creation, a leaf with a new key, and a leaf on a supplied public key,
 * for every library tried. Requirement: a key plus a certificate in at most 5 ms median.
 *
 * Every candidate does the same work: ECDSA P-256 keys, the same extensions, the certificate and any
 * new private key (PKCS#8) out as PEM, a supplied key in as SPKI PEM. Rounds interleave the
 * candidates so that load from other processes on this shared machine falls on all of them alike.
 *
 * Run: node bench/credentials.ts [rounds]
 */
import "reflect-metadata"; // @peculiar/x509's DI container (tsyringe) needs it before loading
import { randomBytes, webcrypto } from "node:crypto";
import * as peculiar from "@peculiar/x509";
import * as asn1js from "asn1js";
import jsrsasign from "jsrsasign";
import * as pkijs from "pkijs";
import { createRunCa, issueLeaf } from "../agent/client/credentials.ts";
import { createKeyPair } from "../agent/protocol/key-pair.ts";
import { quantile } from "./stats.ts";

type Step = "key pair" | "run CA" | "leaf, new key" | "leaf, supplied key";
const STEPS: readonly Step[] = ["key pair", "run CA", "leaf, new key", "leaf, supplied key"];

interface Candidate {
  readonly name: string;
  /** Iterations per round: the pure-JS candidate is two orders of magnitude slower. */
  readonly perRound: number;
  readonly run: Record<Step, (suppliedSpkiPem: string) => unknown>;
}

const HOUR = 3_600_000;
const SANS = ["web01.example", "127.0.0.1"];
const ALG = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" };
const subtle = webcrypto.subtle;
type CryptoKey = webcrypto.CryptoKey;

const newKeys = () => subtle.generateKey(ALG, true, ["sign", "verify"]);
const pkcs8Pem = async (key: CryptoKey) => pem("PRIVATE KEY", await subtle.exportKey("pkcs8", key));
/** The key pair step of both WebCrypto candidates: a new pair, exported as the agent would. */
async function webCryptoKeyPair(): Promise<[string, string]> {
  const keys = await newKeys();
  return [pem("PUBLIC KEY", await subtle.exportKey("spki", keys.publicKey)), await pkcs8Pem(keys.privateKey)];
}

function pem(label: string, der: ArrayBuffer): string {
  const lines =
    Buffer.from(der)
      .toString("base64")
      .match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join("\n")}\n-----END ${label}-----\n`;
}

function spkiDer(spkiPem: string): Buffer {
  return Buffer.from(spkiPem.replace(/-----[^-]+-----|\s/g, ""), "base64");
}

function serialHex(): string {
  const b = randomBytes(16);
  b[0] = ((b[0] ?? 0) & 0x7f) | 0x40;
  return b.toString("hex");
}

function validity(): { notBefore: Date; notAfter: Date } {
  return { notBefore: new Date(Date.now() - 300_000), notAfter: new Date(Date.now() + HOUR) };
}

/** The chosen one: `agent/client/credentials.ts` (@peculiar/asn1-x509 encoding, node:crypto keys and signing). */
function chosen(): Candidate {
  const ca = createRunCa({ runId: "bench", validForMs: HOUR });
  const leaf = { commonName: "web01", subjectAltNames: SANS, usage: "server" } as const;
  return {
    name: "@peculiar/asn1-x509 + node:crypto (chosen)",
    perRound: 50,
    run: {
      "key pair": () => createKeyPair(),
      "run CA": () => createRunCa({ runId: "bench", validForMs: HOUR }),
      "leaf, new key": () => issueLeaf(ca, leaf),
      "leaf, supplied key": (publicKey) => issueLeaf(ca, { ...leaf, publicKey }),
    },
  };
}

/** @peculiar/x509 over Node's WebCrypto, as DESIGN.md first measured it. */
async function peculiarX509(): Promise<Candidate> {
  peculiar.cryptoProvider.set(webcrypto);
  const { KeyUsageFlags: F } = peculiar;
  const caExtensions = () => [
    new peculiar.BasicConstraintsExtension(true, 0, true),
    new peculiar.KeyUsagesExtension(F.keyCertSign | F.cRLSign, true),
  ];
  const makeCa = async () => {
    const keys = await newKeys();
    const cert = await peculiar.X509CertificateGenerator.createSelfSigned({
      ...{
        serialNumber: serialHex(),
        name: "CN=sumac run bench",
        keys,
        signingAlgorithm: ALG,
        ...validity(),
      },
      extensions: caExtensions(),
    });
    return { keys, cert, certPem: cert.toString("pem"), keyPem: await pkcs8Pem(keys.privateKey) };
  };
  const ca = await makeCa();
  const issue = async (publicKey: CryptoKey) => {
    const cert = await peculiar.X509CertificateGenerator.create({
      ...{ serialNumber: serialHex(), subject: "CN=web01", issuer: ca.cert.subject, ...validity() },
      ...{ publicKey, signingKey: ca.keys.privateKey, signingAlgorithm: ALG },
      extensions: [
        new peculiar.BasicConstraintsExtension(false, undefined, true),
        new peculiar.KeyUsagesExtension(F.digitalSignature, true),
        new peculiar.ExtendedKeyUsageExtension([peculiar.ExtendedKeyUsage.serverAuth]),
        new peculiar.SubjectAlternativeNameExtension([
          { type: "dns", value: SANS[0] ?? "" },
          { type: "ip", value: SANS[1] ?? "" },
        ]),
      ],
    });
    return cert.toString("pem");
  };
  return {
    name: "@peculiar/x509 + WebCrypto",
    perRound: 50,
    run: {
      "key pair": webCryptoKeyPair,
      "run CA": makeCa,
      "leaf, new key": async () => {
        const keys = await newKeys();
        return [await issue(keys.publicKey), await pkcs8Pem(keys.privateKey)];
      },
      "leaf, supplied key": async (spki) =>
        issue(await subtle.importKey("spki", spkiDer(spki), ALG, true, ["verify"])),
    },
  };
}

/** PKI.js over Node's WebCrypto. */
async function pkiJs(): Promise<Candidate> {
  pkijs.setEngine("node", new pkijs.CryptoEngine({ name: "node", crypto: webcrypto }));
  const cn = (value: string) =>
    new pkijs.AttributeTypeAndValue({ type: "2.5.4.3", value: new asn1js.Utf8String({ value }) });
  const ext = (extnID: string, critical: boolean, value: { toBER(): ArrayBuffer }) =>
    new pkijs.Extension({ extnID, critical, extnValue: value.toBER() });
  const keyUsage = (byte: number, unusedBits: number) =>
    new asn1js.BitString({ valueHex: new Uint8Array([byte]).buffer, unusedBits });
  const build = async (
    subject: string,
    spki: pkijs.PublicKeyInfo,
    signer: CryptoKey,
    extensions: pkijs.Extension[],
  ) => {
    const cert = new pkijs.Certificate();
    cert.version = 2;
    cert.serialNumber = new asn1js.Integer({ valueHex: Buffer.from(serialHex(), "hex") });
    cert.issuer.typesAndValues.push(cn("sumac run bench"));
    cert.subject.typesAndValues.push(cn(subject));
    const { notBefore, notAfter } = validity();
    cert.notBefore.value = notBefore;
    cert.notAfter.value = notAfter;
    cert.subjectPublicKeyInfo = spki;
    cert.extensions = extensions;
    await cert.sign(signer, "SHA-256");
    return pem("CERTIFICATE", cert.toSchema(true).toBER());
  };
  const keyInfo = async (key: CryptoKey) => pkijs.PublicKeyInfo.fromBER(await subtle.exportKey("spki", key));
  const makeCa = async () => {
    const keys = await newKeys();
    const certPem = await build("sumac run bench", await keyInfo(keys.publicKey), keys.privateKey, [
      ext("2.5.29.19", true, new pkijs.BasicConstraints({ cA: true, pathLenConstraint: 0 }).toSchema()),
      ext("2.5.29.15", true, keyUsage(0x06, 1)),
    ]);
    return { keys, certPem, keyPem: await pkcs8Pem(keys.privateKey) };
  };
  const ca = await makeCa();
  const ip = new asn1js.OctetString({ valueHex: new Uint8Array([127, 0, 0, 1]).buffer });
  const dns = new pkijs.GeneralName({ type: 2, value: SANS[0] });
  const sans = new pkijs.GeneralNames({ names: [dns, new pkijs.GeneralName({ type: 7, value: ip })] });
  const leaf = (spki: pkijs.PublicKeyInfo) =>
    build("web01", spki, ca.keys.privateKey, [
      ext("2.5.29.19", true, new pkijs.BasicConstraints({ cA: false }).toSchema()),
      ext("2.5.29.15", true, keyUsage(0x80, 7)),
      ext("2.5.29.37", false, new pkijs.ExtKeyUsage({ keyPurposes: ["1.3.6.1.5.5.7.3.1"] }).toSchema()),
      ext("2.5.29.17", false, sans.toSchema()),
    ]);
  return {
    name: "pkijs + WebCrypto",
    perRound: 50,
    run: {
      "key pair": webCryptoKeyPair,
      "run CA": makeCa,
      "leaf, new key": async () => {
        const keys = await newKeys();
        return [await leaf(await keyInfo(keys.publicKey)), await pkcs8Pem(keys.privateKey)];
      },
      "leaf, supplied key": (spki) => leaf(pkijs.PublicKeyInfo.fromBER(spkiDer(spki))),
    },
  };
}

/** jsrsasign: pure JavaScript elliptic curve arithmetic. */
function jsrsa(): Candidate {
  const { KEYUTIL, KJUR } = jsrsasign;
  const newKey = () => KEYUTIL.generateKeypair("EC", "secp256r1");
  const time = (d: Date) => d.toISOString().slice(2, 19).replace(/[-:T]/g, "") + "Z"; // UTCTime
  const cert = (subject: string, pub: unknown, signer: unknown, ext: unknown[]) => {
    const { notBefore, notAfter } = validity();
    const params = {
      version: 3,
      serial: { hex: serialHex() },
      issuer: { str: "/CN=sumac run bench" },
      subject: { str: subject },
      notbefore: time(notBefore),
      notafter: time(notAfter),
      sbjpubkey: pub,
      ext,
      sigalg: "SHA256withECDSA",
      cakey: signer,
    };
    return new KJUR.asn1.x509.Certificate(params as never).getPEM();
  };
  const makeCa = () => {
    const keys = newKey();
    const ext = [
      { extname: "basicConstraints", critical: true, cA: true, pathLen: 0 },
      { extname: "keyUsage", critical: true, names: ["keyCertSign", "cRLSign"] },
    ];
    return { keys, certPem: cert("/CN=sumac run bench", keys.pubKeyObj, keys.prvKeyObj, ext) };
  };
  const ca = makeCa();
  const leaf = (pub: unknown) =>
    cert("/CN=web01", pub, ca.keys.prvKeyObj, [
      { extname: "basicConstraints", critical: true, cA: false },
      { extname: "keyUsage", critical: true, names: ["digitalSignature"] },
      { extname: "extKeyUsage", array: [{ name: "serverAuth" }] },
      { extname: "subjectAltName", array: [{ dns: SANS[0] }, { ip: SANS[1] }] },
    ]);
  return {
    name: "jsrsasign (pure JS)",
    perRound: 2,
    run: {
      "key pair": () => {
        const keys = newKey();
        return [KEYUTIL.getPEM(keys.pubKeyObj), KEYUTIL.getPEM(keys.prvKeyObj, "PKCS8PRV")];
      },
      "run CA": () => KEYUTIL.getPEM(makeCa().keys.prvKeyObj, "PKCS8PRV"),
      "leaf, new key": () => {
        const keys = newKey();
        return [leaf(keys.pubKeyObj), KEYUTIL.getPEM(keys.prvKeyObj, "PKCS8PRV")];
      },
      "leaf, supplied key": (spki) => leaf(KEYUTIL.getKey(spki)),
    },
  };
}

async function main(): Promise<void> {
  const rounds = Number(process.argv[2] ?? 20);
  const supplied = createKeyPair().publicKeyPem;
  const candidates = [chosen(), await peculiarX509(), await pkiJs(), jsrsa()];
  const samples = new Map<string, number[]>();
  for (const c of candidates) for (const step of STEPS) await c.run[step](supplied); // warm up
  for (let round = 0; round < rounds; round++) {
    for (const c of candidates) {
      for (const step of STEPS) {
        const list = samples.get(`${c.name}\t${step}`) ?? [];
        for (let i = 0; i < c.perRound; i++) {
          const start = performance.now();
          await c.run[step](supplied);
          list.push(performance.now() - start);
        }
        samples.set(`${c.name}\t${step}`, list);
      }
    }
  }
  console.log(`credentials: ${rounds} interleaved rounds; ms per operation (requirement: median <= 5)`);
  const row = (cells: string[]) =>
    console.log(cells.map((c, i) => (i < 2 ? c.padEnd(i ? 20 : 44) : c.padStart(8))).join(" "));
  row(["library", "step", "median", "p90", "n"]);
  for (const [key, list] of samples) {
    const [name = "", step = ""] = key.split("\t");
    row([name, step, quantile(list, 0.5).toFixed(3), quantile(list, 0.9).toFixed(3), String(list.length)]);
  }
}

await main();
