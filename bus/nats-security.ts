/**
 * How sumac proves who it is to a NATS server and checks the server (docs/nats.md): TLS (a CA to
 * verify the server, a client certificate for mutual TLS) and at most one credential: a creds file
 * (user JWT and nkey seed), an nkey seed or a token.
 *
 * Secrets come from files or from the environment, never from a command line. A file holding one
 * (creds, seed, token, TLS key) is refused when its group or others may read it, or when someone
 * other than this user or root owns it, as ssh refuses a loose key file. What a secret holds never
 * appears in an error message: files are named by their path, values by the variable they came in.
 */
import { connect as tcpConnect } from "node:net";
import { withDeadline } from "../base/deadline.ts";
import { type FileRefusal, MAX_SECRET_BYTES, readCheckedFile } from "../base/files.ts";
import {
  credsAuthenticator,
  nkeyAuthenticator,
  tokenAuthenticator,
  type Authenticator,
  type TlsOptions,
} from "@nats-io/transport-node";
import { BusError } from "./bus.ts";
import { INBOX_PREFIX } from "./subject-rules.ts";

/** One credential, from a file (`file`) or from a value the caller read (`value`, named by `from`). */
export type NatsCredential =
  | { readonly kind: "creds" | "nkey" | "token"; readonly file: string }
  | { readonly kind: "nkey" | "token"; readonly value: string; readonly from: string };

/** TLS towards NATS: with any of these, the connection must be TLS (no plain-text fallback). */
export interface NatsTls {
  /** PEM CA certificate(s) to verify the server with, instead of the system's. */
  readonly caFile?: string;
  /** PEM client certificate, for servers that verify clients (mutual TLS); needs `keyFile`. */
  readonly certFile?: string;
  /** PEM private key of `certFile`; a secret, so its mode is checked. */
  readonly keyFile?: string;
}

export interface NatsSecurity {
  readonly tls?: NatsTls;
  readonly credential?: NatsCredential;
  /**
   * Where replies come to (default `_INBOX`): a user allowed to subscribe to its own inboxes only
   * (`_INBOX.worker.>`), so that it cannot read the replies meant for others.
   */
  readonly inboxPrefix?: string;
  /**
   * Lets a credential go to a server on another host without TLS (`SUMAC_NATS_ALLOW_PLAINTEXT=1`),
   * with a warning. Without it, a credential and no TLS options mean TLS verified against the
   * system's CAs, except towards this machine's own loopback addresses.
   */
  readonly allowPlaintext?: boolean;
}

/** What the connection gets from {@link NatsSecurity}. */
export interface NatsConnectSecurity {
  readonly tls?: TlsOptions;
  readonly authenticator?: Authenticator;
  readonly inboxPrefix?: string;
}

/** A CA bundle or a client certificate is small: anything larger is not one. */
const MAX_CERT_BYTES = 1024 * 1024;

const SEED = /^SU[A-Z2-7]{56}$/;
const JWT_BLOCK =
  /-----BEGIN NATS USER JWT-----\s*\n\s*([A-Za-z0-9_.-]+)\s*\n[^\n]*-----END NATS USER JWT-----/;
const SEED_BLOCK =
  /-----BEGIN USER NKEY SEED-----\s*\n\s*(SU[A-Z2-7]{56})\s*\n[^\n]*-----END USER NKEY SEED-----/;

/** A credential or TLS file that cannot be used: missing, loose, too large or malformed. */
function unusable(message: string, cause?: unknown): BusError {
  return new BusError("BUS_CREDENTIALS_INVALID", message, cause === undefined ? undefined : { cause });
}

/** Says in a few words which credential is used, without its content (for messages). */
export function describeCredential(credential: NatsCredential): string {
  const name = { creds: "creds file", nkey: "nkey seed", token: "token" }[credential.kind];
  return "file" in credential ? `the ${name} ${credential.file}` : `the ${name} in ${credential.from}`;
}

/**
 * Reads a file sumac must keep to itself: owned by this user or root and readable by nobody else
 * (symlinks are followed, as ssh does, and the file they reach is checked).
 */
function readPrivateFile(path: string, what: string): Promise<Buffer> {
  return readCheckedFile(path, {
    maxBytes: MAX_SECRET_BYTES,
    refuse: refusal(path, what),
    check: (st) => {
      const uid = process.getuid?.();
      if (uid !== undefined && st.uid !== uid && st.uid !== 0)
        throw unusable(`the ${what} ${path} belongs to uid ${st.uid}, not to this user (uid ${uid}) or root`);
      if ((st.mode & 0o077) !== 0)
        throw unusable(
          `the ${what} ${path} may be read by others (mode ${(st.mode & 0o777).toString(8).padStart(4, "0")}): ` +
            `it holds a secret; make it private with 'chmod 600 ${path}'`,
        );
    },
  });
}

function readPublicFile(path: string, what: string): Promise<Buffer> {
  return readCheckedFile(path, { maxBytes: MAX_CERT_BYTES, refuse: refusal(path, what) });
}

/** The words of a refused credential or TLS file. */
function refusal(path: string, what: string): (refused: FileRefusal) => Error {
  return (refused) => {
    switch (refused.reason) {
      case "unreadable":
        return unusable(`cannot read the ${what} ${path}: ${refused.code}`, refused.cause);
      case "not-file":
        return unusable(`the ${what} ${path} is not a regular file`);
      case "too-large":
        return unusable(`the ${what} ${path} is over ${refused.maxBytes} bytes: not a ${what}`);
    }
  };
}

function checkToken(token: string, where: string): string {
  const t = token.trim();
  if (t === "") throw unusable(`the token in ${where} is empty`);
  if (/[\s\u0000-\u001f\u007f]/.test(t))
    throw unusable(`the token in ${where} is not one line without spaces`);
  return t;
}

/** The user seed of `text`: its one line that is one (`nk -gen user -pubout` adds the public key). */
function checkSeed(text: string, where: string): Uint8Array {
  const seeds = text
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => SEED.test(line));
  if (seeds.length !== 1)
    throw unusable(`${where} does not hold one user nkey seed (a line of 58 characters starting with SU)`);
  return new TextEncoder().encode(seeds[0]);
}

async function authenticator(credential: NatsCredential): Promise<Authenticator> {
  if (credential.kind === "creds") {
    const text = (await readPrivateFile(credential.file, "NATS creds file")).toString("utf8");
    if (!JWT_BLOCK.test(text) || !SEED_BLOCK.test(text))
      throw unusable(
        `the NATS creds file ${credential.file} does not hold a user JWT and a user nkey seed ` +
          `(the BEGIN NATS USER JWT and BEGIN USER NKEY SEED blocks of 'nsc generate creds')`,
      );
    return credsAuthenticator(new TextEncoder().encode(text));
  }
  if ("file" in credential) {
    const what = credential.kind === "nkey" ? "NATS nkey seed file" : "NATS token file";
    const text = (await readPrivateFile(credential.file, what)).toString("utf8");
    const where = `the ${what} ${credential.file}`;
    return credential.kind === "nkey"
      ? nkeyAuthenticator(checkSeed(text, where))
      : tokenAuthenticator(checkToken(text, where));
  }
  return credential.kind === "nkey"
    ? nkeyAuthenticator(checkSeed(credential.value, credential.from))
    : tokenAuthenticator(checkToken(credential.value, credential.from));
}

async function tlsOptions(tls: NatsTls): Promise<TlsOptions> {
  if ((tls.certFile === undefined) !== (tls.keyFile === undefined))
    throw unusable(
      tls.certFile === undefined
        ? `a NATS client key (${tls.keyFile}) was given without its certificate`
        : `a NATS client certificate (${tls.certFile}) was given without its key`,
    );
  const ca = tls.caFile === undefined ? undefined : await readPublicFile(tls.caFile, "NATS CA file");
  if (ca !== undefined && !ca.includes("-----BEGIN CERTIFICATE-----"))
    throw unusable(`the NATS CA file ${tls.caFile} holds no PEM certificate`);
  const cert =
    tls.certFile === undefined ? undefined : await readPublicFile(tls.certFile, "NATS client certificate");
  if (cert !== undefined && !cert.includes("-----BEGIN CERTIFICATE-----"))
    throw unusable(`the NATS client certificate ${tls.certFile} holds no PEM certificate`);
  const key = tls.keyFile === undefined ? undefined : await readPrivateFile(tls.keyFile, "NATS client key");
  if (key !== undefined && !/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(key.toString("latin1")))
    throw unusable(`the NATS client key ${tls.keyFile} holds no PEM private key`);
  return {
    ...(ca === undefined ? {} : { ca: ca.toString("utf8") }),
    ...(cert === undefined ? {} : { cert: cert.toString("utf8") }),
    ...(key === undefined ? {} : { key: key.toString("utf8") }),
  };
}

/**
 * Reads and checks the files and values of `security` and returns what nats.js takes; fails with
 * `BUS_CREDENTIALS_INVALID` naming the file or variable (never its content).
 */
export async function natsConnectSecurity(security: NatsSecurity | undefined): Promise<NatsConnectSecurity> {
  if (security === undefined) return {};
  const tls = security.tls === undefined ? undefined : await tlsOptions(security.tls);
  const auth = security.credential === undefined ? undefined : await authenticator(security.credential);
  const prefix = security.inboxPrefix;
  if (prefix !== undefined && !INBOX_PREFIX.test(prefix))
    throw unusable(`the NATS inbox prefix '${prefix}' is not subject tokens of [A-Za-z0-9_-] joined by dots`);
  return {
    ...(tls === undefined ? {} : { tls }),
    ...(auth === undefined ? {} : { authenticator: auth }),
    ...(prefix === undefined ? {} : { inboxPrefix: prefix }),
  };
}

/** What a server says of itself before any TLS or credential: the flags of its INFO line. */
export interface ServerInfo {
  readonly tls_required?: boolean;
  readonly tls_verify?: boolean;
  readonly auth_required?: boolean;
}

/** The longest INFO line read: a server's, with its cluster URLs, is a few hundred bytes. */
const MAX_INFO_BYTES = 16 * 1024;

/**
 * Reads the INFO line of the first server of `url` (the server sends it at once, in the clear), to
 * tell why a connection failed when the client could not; undefined when it cannot be had in `ms`.
 */
export async function probeServerInfo(url: string, ms: number): Promise<ServerInfo | undefined> {
  let host: string;
  let port: number;
  try {
    const parsed = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(url) ? url : `nats://${url}`);
    host = parsed.hostname.replace(/^\[|\]$/g, "");
    port = parsed.port === "" ? 4222 : Number(parsed.port);
  } catch {
    return undefined;
  }
  try {
    return await withDeadline(
      { ms, timeout: () => new Error("no INFO") },
      (signal) =>
        new Promise<ServerInfo | undefined>((resolve) => {
          const socket = tcpConnect({ host, port, signal });
          let line = "";
          const done = (info: ServerInfo | undefined): void => {
            socket.destroy();
            resolve(info);
          };
          socket.on("error", () => done(undefined));
          socket.on("close", () => done(undefined));
          socket.on("data", (d: Buffer) => {
            line += d.toString("latin1");
            const end = line.indexOf("\r\n");
            if (end < 0) {
              if (line.length > MAX_INFO_BYTES) done(undefined);
              return;
            }
            const m = /^INFO\s+(\{.*\})\s*$/.exec(line.slice(0, end));
            try {
              done(m?.[1] === undefined ? undefined : (JSON.parse(m[1]) as ServerInfo));
            } catch {
              done(undefined);
            }
          });
        }),
    );
  } catch {
    return undefined;
  }
}
