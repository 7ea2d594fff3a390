import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { generateKeyPairSync, X509Certificate } from "node:crypto";
import { once } from "node:events";
import type { AddressInfo, Socket } from "node:net";
import tls from "node:tls";
import { AsnConvert } from "@peculiar/asn1-schema";
import * as x509 from "@peculiar/asn1-x509";
import {
  CLOCK_SKEW_BACKDATE_MS,
  createRunCa,
  issueLeaf,
  type RunCa,
} from "../../agent/client/credentials.ts";
import { createKeyPair } from "../../agent/protocol/key-pair.ts";

const SOCKET_TIMEOUT_MS = 5_000;
const SERVER_AUTH = "1.3.6.1.5.5.7.3.1";
const CLIENT_AUTH = "1.3.6.1.5.5.7.3.2";

interface Pem {
  readonly cert?: string;
  readonly key?: string;
}

interface Outcome {
  /** What the server saw: a verified peer's fingerprint, or why the handshake was refused. */
  readonly server: { peerFingerprint?: string; error?: string; authorizationError?: string };
  readonly client: { peerFingerprint?: string; protocol?: string | null; error?: string; data: string };
}

/** One TLS 1.3 connection on 127.0.0.1 with both ends required to authenticate against `ca`. */
async function handshake(ca: RunCa, server: Pem, client: Pem): Promise<Outcome> {
  let serverOutcome: Outcome["server"] | undefined;
  let serverSaw = (): void => undefined;
  const serverDone = new Promise<void>((resolve, reject) => {
    serverSaw = resolve;
    setTimeout(() => reject(new Error("the server saw no connection")), SOCKET_TIMEOUT_MS).unref();
  });
  serverDone.catch(() => undefined); // awaited below; this only stops an early rejection counting as unhandled
  const listener = tls.createServer(
    {
      ...server,
      ca: ca.certPem,
      requestCert: true,
      rejectUnauthorized: true,
      minVersion: "TLSv1.3",
      handshakeTimeout: SOCKET_TIMEOUT_MS,
    },
    (socket) => {
      socket.setTimeout(SOCKET_TIMEOUT_MS, () => socket.destroy());
      serverOutcome = { peerFingerprint: socket.getPeerCertificate().fingerprint256 };
      socket.end("ok");
      serverSaw();
    },
  );
  listener.on("connection", (raw: Socket) => raw.setTimeout(SOCKET_TIMEOUT_MS, () => raw.destroy()));
  listener.on("tlsClientError", (err: NodeJS.ErrnoException, socket: tls.TLSSocket) => {
    // Node types authorizationError as Error; at run time it is OpenSSL's code string.
    const authorizationError = socket.authorizationError ? String(socket.authorizationError) : undefined;
    serverOutcome = { error: err.code ?? err.message, authorizationError };
    serverSaw();
  });
  listener.listen(0, "127.0.0.1");
  await once(listener, "listening");
  try {
    const socket = tls.connect({
      host: "127.0.0.1",
      port: (listener.address() as AddressInfo).port,
      ca: ca.certPem,
      ...client,
      minVersion: "TLSv1.3",
    });
    socket.setTimeout(SOCKET_TIMEOUT_MS, () => socket.destroy(new Error("client socket timed out")));
    const clientOutcome: Outcome["client"] = { data: "" };
    socket.on("secureConnect", () => {
      clientOutcome.protocol = socket.getProtocol();
      clientOutcome.peerFingerprint = socket.getPeerCertificate().fingerprint256;
    });
    socket.on("data", (chunk: Buffer) => (clientOutcome.data += chunk.toString()));
    socket.on("error", (err: NodeJS.ErrnoException) => (clientOutcome.error = err.code ?? err.message));
    // Not events.once: it rejects on "error", which is an outcome to record here.
    await new Promise((resolve) => socket.on("close", resolve));
    await serverDone;
    assert.ok(serverOutcome);
    return { server: serverOutcome, client: clientOutcome };
  } finally {
    listener.close();
  }
}

const tlsPair = (leaf: { certPem: string; keyPem: string }): Pem => ({
  cert: leaf.certPem,
  key: leaf.keyPem,
});

/** Extensions by OID, parsed with the same ASN.1 schemas the issuer uses. */
function extensions(pem: string): Map<string, { critical: boolean; value: ArrayBuffer }> {
  const list =
    AsnConvert.parse(new X509Certificate(pem).raw, x509.Certificate).tbsCertificate.extensions ?? [];
  return new Map(list.map((e) => [e.extnID, { critical: e.critical, value: e.extnValue.buffer }]));
}

function fixture() {
  const ca = createRunCa({ runId: "run-1", validForMs: 3_600_000 });
  const agentKeys = createKeyPair(); // made on the target; only the public half travels
  const agent = issueLeaf(ca, {
    commonName: "web01",
    subjectAltNames: ["web01.example", "127.0.0.1", "::1"],
    usage: "server",
    publicKey: agentKeys.publicKeyPem,
  });
  const workstation = issueLeaf(ca, { commonName: "workstation", subjectAltNames: [], usage: "client" });
  const agentTls = { cert: agent.certPem, key: agentKeys.privateKeyPem };
  const workstationTls = tlsPair(workstation);
  return { ca, agentKeys, agent, workstation, agentTls, workstationTls };
}

describe("credentials", () => {
  it("credentials - both ends present leaves from one run CA and mutual TLS 1.3 succeeds", async () => {
    const { ca, agent, workstation, agentTls, workstationTls } = fixture();
    const outcome = await handshake(ca, agentTls, workstationTls);
    assert.equal(outcome.client.error, undefined);
    assert.equal(outcome.client.protocol, "TLSv1.3");
    assert.equal(outcome.client.data, "ok");
    // Fingerprints are in exactly the format tls reports, so they can be pinned as they are.
    assert.equal(outcome.client.peerFingerprint, agent.fingerprint256);
    assert.equal(outcome.server.peerFingerprint, workstation.fingerprint256);
    assert.equal(new X509Certificate(ca.certPem).fingerprint256, ca.fingerprint256);
  });

  it("credentials - a client leaf from another run's CA is refused", async () => {
    const { ca, agentTls } = fixture();
    // Same run id, so same CA name: only the CA key tells them apart.
    const other = createRunCa({ runId: "run-1", validForMs: 3_600_000 });
    const stranger = issueLeaf(other, { commonName: "workstation", subjectAltNames: [], usage: "client" });
    const outcome = await handshake(ca, agentTls, tlsPair(stranger));
    assert.equal(outcome.server.peerFingerprint, undefined);
    assert.equal(outcome.server.authorizationError, "UNABLE_TO_VERIFY_LEAF_SIGNATURE");
    assert.equal(outcome.client.data, "");
  });

  it("credentials - a client with no certificate is refused", async () => {
    const { ca, agentTls } = fixture();
    const outcome = await handshake(ca, agentTls, {});
    assert.equal(outcome.server.error, "ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE");
    assert.equal(outcome.client.error, "ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED");
    assert.equal(outcome.client.data, "");
  });

  it("credentials - a server leaf whose subjectAltName does not match is refused by the client", async () => {
    const { ca, workstationTls } = fixture();
    const web02 = issueLeaf(ca, { commonName: "web02", subjectAltNames: ["web02.example"], usage: "server" });
    const outcome = await handshake(ca, tlsPair(web02), workstationTls);
    assert.equal(outcome.client.error, "ERR_TLS_CERT_ALTNAME_INVALID");
    assert.equal(outcome.server.peerFingerprint, undefined);
  });

  it("credentials - extKeyUsage is enforced: a server leaf offered as a client certificate is refused", async () => {
    const { ca, agentTls } = fixture();
    const outcome = await handshake(ca, agentTls, agentTls);
    assert.equal(outcome.server.authorizationError, "INVALID_PURPOSE");
  });

  it("credentials - the run CA is cA=true pathLen 0 with keyCertSign and cRLSign, both critical", () => {
    const { ca } = fixture();
    const cert = new X509Certificate(ca.certPem);
    assert.equal(cert.ca, true);
    assert.ok(cert.checkIssued(cert) && cert.verify(cert.publicKey));
    assert.equal(cert.subject, "CN=sumac run run-1");
    assert.equal(cert.publicKey.asymmetricKeyDetails?.namedCurve, "prime256v1");
    const ext = extensions(ca.certPem);
    const basic = ext.get(x509.id_ce_basicConstraints);
    assert.equal(basic?.critical, true);
    assert.deepEqual(
      { ...AsnConvert.parse(basic.value, x509.BasicConstraints) },
      { cA: true, pathLenConstraint: 0 },
    );
    const usage = ext.get(x509.id_ce_keyUsage);
    assert.equal(usage?.critical, true);
    assert.deepEqual(
      AsnConvert.parse(usage.value, x509.KeyUsage).toNumber(),
      x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign,
    );
    assert.ok(ext.has(x509.id_ce_subjectKeyIdentifier));
  });

  it("credentials - a leaf is cA=false, digitalSignature, has its usage's extKeyUsage and the SANs, issued by the CA", () => {
    const { ca, agent, workstation } = fixture();
    const caCert = new X509Certificate(ca.certPem);
    for (const [leaf, purpose] of [
      [agent, SERVER_AUTH],
      [workstation, CLIENT_AUTH],
    ] as const) {
      const cert = new X509Certificate(leaf.certPem);
      assert.equal(cert.ca, false);
      assert.deepEqual(cert.keyUsage, [purpose]); // Node names extKeyUsage "keyUsage"
      assert.ok(cert.checkIssued(caCert) && cert.verify(caCert.publicKey));
      const ext = extensions(leaf.certPem);
      const basic = ext.get(x509.id_ce_basicConstraints);
      assert.equal(basic?.critical, true);
      assert.equal(AsnConvert.parse(basic.value, x509.BasicConstraints).cA, false);
      const usage = ext.get(x509.id_ce_keyUsage);
      assert.equal(usage?.critical, true);
      assert.deepEqual(
        AsnConvert.parse(usage.value, x509.KeyUsage).toNumber(),
        x509.KeyUsageFlags.digitalSignature,
      );
      assert.ok(ext.has(x509.id_ce_authorityKeyIdentifier));
    }
    assert.equal(
      new X509Certificate(agent.certPem).subjectAltName,
      "DNS:web01.example, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1",
    );
  });

  it("credentials - serials are 16 random bytes and positive; validity is backdated and capped at the CA's", () => {
    const now = Date.UTC(2030, 0, 1);
    const ca = createRunCa({ runId: "r", validForMs: 3_600_000, now });
    const serials = new Set<string>();
    for (let i = 0; i < 20; i++) {
      const leaf = issueLeaf(ca, { commonName: "w", subjectAltNames: [], usage: "client", now: now + 1_000 });
      const cert = new X509Certificate(leaf.certPem);
      assert.match(cert.serialNumber, /^[0-7][0-9A-F]{31}$/);
      serials.add(cert.serialNumber);
      assert.equal(cert.validFromDate.getTime(), now + 1_000 - CLOCK_SKEW_BACKDATE_MS);
      assert.equal(cert.validToDate.getTime(), now + 3_600_000);
    }
    assert.equal(serials.size, 20);
    const short = issueLeaf(ca, {
      commonName: "w",
      subjectAltNames: [],
      usage: "client",
      now,
      validForMs: 60_000,
    });
    assert.equal(new X509Certificate(short.certPem).validToDate.getTime(), now + 60_000);
  });

  it("credentials - a leaf on a supplied public key carries that key and returns no private key", () => {
    const { agent, agentKeys } = fixture();
    assert.equal("keyPem" in agent, false);
    const key = new X509Certificate(agent.certPem).publicKey.export({ format: "pem", type: "spki" });
    assert.equal(key, agentKeys.publicKeyPem);
  });

  it("credentials - a CA read back from its PEM (no cache) issues leaves that chain to it", () => {
    const { ca } = fixture();
    const reloaded: RunCa = JSON.parse(JSON.stringify(ca)) as RunCa;
    const leaf = issueLeaf(reloaded, { commonName: "w", subjectAltNames: ["w.example"], usage: "server" });
    const cert = new X509Certificate(leaf.certPem);
    assert.ok(cert.checkIssued(new X509Certificate(ca.certPem)));
    const ski = extensions(ca.certPem).get(x509.id_ce_subjectKeyIdentifier)?.value;
    const aki = extensions(leaf.certPem).get(x509.id_ce_authorityKeyIdentifier)?.value;
    assert.ok(ski && aki);
    const keyId = AsnConvert.parse(aki, x509.AuthorityKeyIdentifier).keyIdentifier;
    assert.deepEqual(
      new Uint8Array(keyId?.buffer ?? new ArrayBuffer(0)),
      new Uint8Array(AsnConvert.parse(ski, x509.SubjectKeyIdentifier).buffer),
    );
  });

  it("credentials - private keys, other key types and garbage are refused as the supplied public key", () => {
    const { ca, agentKeys } = fixture();
    const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 }).publicKey.export({
      format: "pem",
      type: "spki",
    });
    const p384 = generateKeyPairSync("ec", { namedCurve: "P-384" }).publicKey.export({
      format: "pem",
      type: "spki",
    });
    const garbage = "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n";
    for (const publicKey of [agentKeys.privateKeyPem, rsa.toString(), p384.toString(), garbage]) {
      assert.throws(
        () => issueLeaf(ca, { commonName: "w", subjectAltNames: ["w"], usage: "server", publicKey }),
        { name: "InvalidPublicKeyError", code: "INVALID_PUBLIC_KEY", retryable: false },
      );
    }
  });

  it("credentials - names that cannot go into a certificate are refused", () => {
    const { ca } = fixture();
    const bad = { name: "InvalidSubjectNameError", code: "INVALID_SUBJECT_NAME", retryable: false };
    for (const subjectAltNames of [
      ["under_score.example"],
      ["-lead.example"],
      [""],
      ["::ffff:1.2.3.4"],
      [],
    ]) {
      assert.throws(() => issueLeaf(ca, { commonName: "w", subjectAltNames, usage: "server" }), bad);
    }
    assert.throws(() => issueLeaf(ca, { commonName: "", subjectAltNames: [], usage: "client" }), bad);
    assert.throws(() => issueLeaf(ca, { commonName: "a\nb", subjectAltNames: [], usage: "client" }), bad);
    assert.throws(() => createRunCa({ runId: "x".repeat(60), validForMs: 1_000 }), bad);
  });
});
