/**
 * The agent's key pair, made on the target with node:crypto alone. `credentials.ts` has the same
 * `createKeyPair`, but importing it would pull its ASN.1 certificate builder into the agent bundle,
 * which never issues certificates.
 */
import { generateKeyPairSync } from "node:crypto";
import type { KeyPair } from "./credentials.ts";

/** An ECDSA P-256 key pair: SPKI PEM public key (sent to the workstation), PKCS#8 PEM private key (kept). */
export function createAgentKeyPair(): KeyPair {
  const { publicKey, privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  return {
    publicKeyPem: publicKey.export({ format: "pem", type: "spki" }).toString(),
    privateKeyPem: privateKey.export({ format: "pem", type: "pkcs8" }).toString(),
  };
}
