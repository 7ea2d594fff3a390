/**
 * A target as the job means it: `defaults:` applied, its id given, its login and sudo settings
 * checked across fields (one login method, nothing that does not fit a local or Windows target),
 * and its secret files queued for the existence check.
 */
import { parseAccount } from "../../actors/smb/auth/account.ts";
import type { Checker } from "./checker.ts";
import type { JobDocument } from "./schema.ts";
import type { DocPath } from "./source.ts";
import type { Become, JobTarget, SecretRef, TargetAuth } from "./types.ts";

type TargetDoc = JobDocument["targets"][number];
type DefaultsDoc = NonNullable<JobDocument["defaults"]>;
type SecretDoc = { file?: string | undefined; env?: string | undefined };

const DEFAULT_PORT = { linux: 22, windows: 445 } as const;

function secret(check: Checker, path: DocPath, doc: SecretDoc): SecretRef | undefined {
  if (doc.file !== undefined && doc.env === undefined)
    return { kind: "file", path: check.file([...path, "file"], doc.file, "secret file") };
  if (doc.env !== undefined && doc.file === undefined) return { kind: "env", name: doc.env };
  check.problem(path, `needs exactly one of "file" and "env"`, "{ env: NAME } or { file: path }");
  return undefined;
}

function auth(check: Checker, path: DocPath, doc: NonNullable<TargetDoc["auth"]>): TargetAuth | undefined {
  const methods = (["key", "agent", "password"] as const).filter((m) => doc[m] !== undefined);
  if (methods.length !== 1) {
    const message =
      methods.length === 0 ? "no login method" : `more than one login method (${methods.join(", ")})`;
    check.problem(path, message, "exactly one of key, agent, password");
    return undefined;
  }
  if (doc.passphrase !== undefined && doc.key === undefined)
    check.problem([...path, "passphrase"], "a passphrase is for a key", "passphrase only with key", "key");
  if (doc.key) {
    const key = secret(check, [...path, "key"], doc.key);
    const passphrase = doc.passphrase && secret(check, [...path, "passphrase"], doc.passphrase);
    return key && { method: "key", key, ...(passphrase ? { passphrase } : {}) };
  }
  if (doc.password) {
    const password = secret(check, [...path, "password"], doc.password);
    return password && { method: "password", password };
  }
  return { method: "agent" };
}

function become(check: Checker, path: DocPath, doc: TargetDoc["become"]): Become | undefined {
  if (doc === undefined || doc === false) return undefined;
  if (doc === true) return { method: "sudo" };
  const sudoPath = doc.sudoPath === undefined ? {} : { sudoPath: doc.sudoPath };
  if (doc.password === undefined) return { method: "sudo", ...sudoPath };
  const password = secret(check, [...path, "password"], doc.password);
  return password && { method: "sudo", password, ...sudoPath };
}

/** The target's id: `name`, or host (with its port when that is not the default). */
export function targetId(doc: JobDocument, t: TargetDoc): string {
  if (t.name !== undefined) return t.name;
  if (t.host === "local") return "local";
  const os = t.os ?? doc.defaults?.os ?? "linux";
  const port = t.port ?? doc.defaults?.port ?? DEFAULT_PORT[os];
  if (port === DEFAULT_PORT[os]) return t.host;
  return `${t.host.includes(":") ? `[${t.host}]` : t.host}:${port}`;
}

export function target(check: Checker, doc: JobDocument, i: number): JobTarget | undefined {
  const t = (doc.targets[i] ?? {}) as TargetDoc;
  const at: DocPath = ["targets", i];
  const tags = [...new Set(t.tags ?? [])];
  if (t.host === "local") {
    for (const key of ["port", "os", "user", "domain", "auth", "become", "hostKey"] as const)
      if (t[key] !== undefined)
        check.problem(
          [...at, key],
          `a local target (host: local) takes no ${key}`,
          "only host, name, tags",
          "key",
        );
    return { transport: "local", id: targetId(doc, t), host: "local", os: "linux", tags };
  }
  const d: DefaultsDoc = doc.defaults ?? {};
  const from = <K extends keyof DefaultsDoc>(key: K): { value: DefaultsDoc[K]; path: DocPath } =>
    t[key] !== undefined ? { value: t[key], path: [...at, key] } : { value: d[key], path: ["defaults", key] };
  const os = from("os").value ?? "linux";
  const port = from("port").value ?? DEFAULT_PORT[os];
  const id = targetId(doc, t);
  const user = from("user").value ?? "root";
  const authDoc = from("auth");
  if (authDoc.value === undefined) {
    check.problem(
      at,
      `missing field "auth" (set it here or under defaults)`,
      "{ key: ... }, { agent: true } or { password: ... }",
    );
    return undefined;
  }
  const login = auth(check, authDoc.path, authDoc.value);
  const becomeDoc = from("become");
  if (os === "windows") {
    if (t.hostKey !== undefined)
      check.problem(
        [...at, "hostKey"],
        "hostKey is for SSH; windows targets are reached over SMB",
        "no hostKey",
        "key",
      );
    if (becomeDoc.value !== undefined && becomeDoc.value !== false)
      check.problem(
        becomeDoc.path,
        "become is for SSH logins; windows targets log in as an administrator",
        "no become",
        "key",
      );
    if (login && login.method !== "password")
      check.problem(
        authDoc.path,
        `windows targets log in with a password (NTLM), not ${login.method}`,
        "{ password: ... }",
      );
    if (!login || login.method !== "password") return undefined;
    const domain = from("domain").value ?? "";
    try {
      parseAccount(user, domain);
    } catch (error) {
      check.problem(from("user").path, (error as Error).message, "user, DOMAIN\\user or user@domain");
    }
    return { transport: "smb", id, host: t.host, port, os, user, domain, auth: login, tags };
  }
  const domainDoc = from("domain");
  if (domainDoc.value !== undefined)
    check.problem(domainDoc.path, "domain is for windows targets (SMB logins)", "no domain", "key");
  const sudo = become(check, becomeDoc.path, becomeDoc.value);
  if (!login) return undefined;
  const hostKey = t.hostKey?.replace(/=$/, "");
  return {
    transport: "ssh",
    id,
    host: t.host,
    port,
    os,
    user,
    auth: login,
    ...(sudo ? { become: sudo } : {}),
    ...(hostKey ? { hostKey } : {}),
    tags,
  };
}
