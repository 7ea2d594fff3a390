/**
 * nats-server with a configuration of the test's own (accounts, TLS, tokens, operator mode), and
 * what such configurations need: user nkeys, a test CA and its certificates, operator, account and
 * user JWTs and creds files (no JWT library here: a NATS JWT is base64url JSON signed with the
 * issuer's ed25519 nkey), and private files of mode 0600.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { nkeys } from "@nats-io/transport-node";
import { waitUntil } from "./container.ts";
import { createRunCa, issueLeaf } from "../../agent/client/credentials.ts";

const binary = process.env.SUMAC_NATS_SERVER ?? "nats-server";

export interface ConfiguredNats {
  /** `nats://127.0.0.1:PORT` */
  readonly url: string;
  /** What the server wrote on stderr so far (its log). */
  log(): string;
  stop(): Promise<void>;
}

/**
 * Writes `config` to `<dir>/nats-server.conf` (plus `files`, e.g. an included accounts.conf, next
 * to it) and runs nats-server on it with `env` added to its environment; the configuration must
 * listen on `127.0.0.1:-1`. Resolves once the server listens (its ports file is written).
 */
export async function startConfiguredNats(
  dir: string,
  config: string,
  options: { readonly env?: Record<string, string>; readonly files?: Record<string, string> } = {},
): Promise<ConfiguredNats> {
  await mkdir(dir, { recursive: true });
  for (const [name, text] of Object.entries(options.files ?? {})) await writeFile(join(dir, name), text);
  const conf = join(dir, "nats-server.conf");
  await writeFile(conf, config);
  const portsDir = join(dir, "ports");
  await mkdir(portsDir, { recursive: true });
  const proc: ChildProcess = spawn(binary, ["-c", conf, "--ports_file_dir", portsDir], {
    stdio: ["ignore", "ignore", "pipe"],
    env: { ...process.env, ...options.env },
  });
  let stderr = "";
  proc.stderr?.on("data", (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-64_000);
  });
  const exited = new Promise<void>((resolve) => proc.once("exit", () => resolve()));
  const stop = async (): Promise<void> => {
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    proc.kill("SIGTERM");
    const timer = setTimeout(() => proc.kill("SIGKILL"), 5_000);
    await exited;
    clearTimeout(timer);
  };
  let port = 0;
  try {
    await waitUntil(
      "nats-server ports file",
      async () => {
        if (proc.exitCode !== null)
          throw new Error(`nats-server exited (${proc.exitCode}): ${stderr.trim()}`);
        const name = (await readdir(portsDir)).find((f) => f.endsWith(".ports"));
        if (!name) throw new Error("no ports file yet");
        const info = JSON.parse(await readFile(join(portsDir, name), "utf8")) as { nats?: string[] };
        const m = /:(\d+)$/.exec(info.nats?.[0] ?? "");
        if (!m?.[1]) throw new Error("no client port yet");
        port = Number(m[1]);
      },
      15_000,
      25,
    );
  } catch (err) {
    await stop();
    throw err;
  }
  return { url: `nats://127.0.0.1:${port}`, log: () => stderr, stop };
}

/** A file only its owner may read (as sumac wants its secrets). */
export async function privateFile(path: string, text: string): Promise<string> {
  await writeFile(path, text, { mode: 0o600 });
  return path;
}

/** A user nkey: its public key (for the server) and its seed (for the client). */
export function userNkey(): { readonly publicKey: string; readonly seed: string } {
  const kp = nkeys.createUser();
  return { publicKey: kp.getPublicKey(), seed: new TextDecoder().decode(kp.getSeed()) };
}

/** A test CA, a server certificate for 127.0.0.1 and a client certificate, as PEM. */
export function testTls(): {
  readonly caPem: string;
  readonly serverCertPem: string;
  readonly serverKeyPem: string;
  readonly clientCertPem: string;
  readonly clientKeyPem: string;
} {
  const ca = createRunCa({ runId: "nats-test", validForMs: 3_600_000 });
  const server = issueLeaf(ca, {
    commonName: "nats",
    subjectAltNames: ["127.0.0.1", "localhost"],
    usage: "server",
  });
  const client = issueLeaf(ca, { commonName: "sumac", subjectAltNames: [], usage: "client" });
  return {
    caPem: ca.certPem,
    serverCertPem: server.certPem,
    serverKeyPem: server.keyPem,
    clientCertPem: client.certPem,
    clientKeyPem: client.keyPem,
  };
}

type KeyPair = ReturnType<typeof nkeys.createUser>;

const b64 = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString("base64url");

/** A NATS JWT (v2): claims about `subject`, issued and signed by `issuer`. */
function encodeJwt(issuer: KeyPair, subject: string, name: string, nats: Record<string, unknown>): string {
  const header = b64({ typ: "JWT", alg: "ed25519-nkey" });
  const claims = {
    jti: randomBytes(20).toString("hex").toUpperCase(),
    iat: Math.floor(Date.now() / 1000),
    iss: issuer.getPublicKey(),
    name,
    sub: subject,
    nats: { ...nats, version: 2 },
  };
  const body = `${header}.${b64(claims)}`;
  return `${body}.${Buffer.from(issuer.sign(new TextEncoder().encode(body))).toString("base64url")}`;
}

export interface Permissions {
  readonly pub: { readonly allow?: readonly string[]; readonly deny?: readonly string[] };
  readonly sub: { readonly allow?: readonly string[]; readonly deny?: readonly string[] };
  readonly allowResponses?: boolean;
}

/**
 * An operator with one JetStream account: the server configuration lines that trust it
 * (`operator`, `resolver: MEMORY`, the account preloaded) and a maker of users' creds files.
 */
export function operatorMode(): {
  readonly serverConfig: string;
  creds(name: string, permissions?: Permissions): string;
} {
  const operator = nkeys.createOperator();
  const account = nkeys.createAccount();
  // JetStream in operator mode needs a system account.
  const system = nkeys.createAccount();
  const systemJwt = encodeJwt(operator, system.getPublicKey(), "SYS", { type: "account" });
  const operatorJwt = encodeJwt(operator, operator.getPublicKey(), "sumac-test", { type: "operator" });
  const accountJwt = encodeJwt(operator, account.getPublicKey(), "SUMAC", {
    type: "account",
    limits: {
      subs: -1,
      data: -1,
      payload: -1,
      imports: -1,
      exports: -1,
      wildcards: true,
      conn: -1,
      leaf: -1,
      mem_storage: -1,
      disk_storage: -1,
      streams: -1,
      consumer: -1,
    },
  });
  return {
    serverConfig: [
      `operator: "${operatorJwt}"`,
      "resolver: MEMORY",
      `system_account: ${system.getPublicKey()}`,
      `resolver_preload: { ${account.getPublicKey()}: "${accountJwt}", ${system.getPublicKey()}: "${systemJwt}" }`,
    ].join("\n"),
    creds(name, permissions) {
      const user = nkeys.createUser();
      const jwt = encodeJwt(account, user.getPublicKey(), name, {
        type: "user",
        subs: -1,
        data: -1,
        payload: -1,
        ...(permissions === undefined
          ? {}
          : {
              pub: permissions.pub,
              sub: permissions.sub,
              ...(permissions.allowResponses ? { resp: { max: 1, ttl: 0 } } : {}),
            }),
      });
      const seed = new TextDecoder().decode(user.getSeed());
      return [
        "-----BEGIN NATS USER JWT-----",
        jwt,
        "------END NATS USER JWT------",
        "",
        "************************* IMPORTANT *************************",
        "NKEY Seed printed below can be used to sign and prove identity.",
        "NKEYs are sensitive and should be treated as secrets.",
        "",
        "-----BEGIN USER NKEY SEED-----",
        seed,
        "------END USER NKEY SEED------",
        "",
      ].join("\n");
    },
  };
}

/**
 * The publish and subscribe allow (and deny) lists of one role of an accounts configuration in
 * nats-server syntax (`SUMAC_COORDINATOR = { publish: { allow: [...] } ... }`), so that a user JWT
 * gets the same permissions as the documented configuration.
 */
export function rolePermissions(conf: string, role: string): Permissions {
  const start = conf.indexOf(`${role} = {`);
  if (start < 0) throw new Error(`no ${role} in the configuration`);
  const block = conf.slice(start, conf.indexOf("\n}\n", start));
  const list = (section: string, kind: "allow" | "deny"): string[] | undefined => {
    const s = new RegExp(`${section}: \\{[\\s\\S]*?\\n  \\}`).exec(block)?.[0] ?? "";
    const m = new RegExp(`${kind}: \\[([\\s\\S]*?)\\]`).exec(s);
    return m?.[1] === undefined ? undefined : [...m[1].matchAll(/"([^"]+)"/g)].map((x) => x[1]!);
  };
  const part = (section: string) => {
    const allow = list(section, "allow");
    const deny = list(section, "deny");
    return { ...(allow ? { allow } : {}), ...(deny ? { deny } : {}) };
  };
  return {
    pub: part("publish"),
    sub: part("subscribe"),
    allowResponses: /allow_responses: true/.test(block),
  };
}
