/**
 * The key pairs of the agent's mutual TLS: ECDSA P-256 (RFC 5480), made with node:crypto alone so
 * that the agent, which makes its own on the target, carries no certificate builder in its bundle.
 * The workstation makes the run CA's and its own leaves' keys the same way (agent/client/credentials.ts).
 */
import { generateKeyPairSync } from "node:crypto";

/** A public key in SPKI PEM and its private key in PKCS#8 PEM. */
export interface KeyPair {
  readonly publicKeyPem: string;
  readonly privateKeyPem: string;
}

/** Makes an ECDSA P-256 key pair; the agent calls this on the target and sends back only the public half. */
export function createKeyPair(): KeyPair {
  const { publicKey, privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  return {
    publicKeyPem: publicKey.export({ format: "pem", type: "spki" }).toString(),
    privateKeyPem: privateKey.export({ format: "pem", type: "pkcs8" }).toString(),
  };
}
