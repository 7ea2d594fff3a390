/**
 * OpenSSH known_hosts, as pure functions over text (sshd(8) "SSH_KNOWN_HOSTS FILE FORMAT"): lines
 * of `[@marker] hostpatterns keytype base64key [comment]`, where host patterns are comma-separated
 * names with `*` and `?` wildcards and `!` negation, `[host]:port` for ports other than 22, or one
 * hashed name `|1|base64(salt)|base64(HMAC-SHA1(salt, name))`.
 *
 * Lines that cannot be parsed are skipped with a warning, as OpenSSH does: one bad line must not
 * lock out every host. `@cert-authority` lines are kept but never trusted (sumac does not accept
 * host certificates); `@revoked` keys are refused for the hosts their patterns match.
 */
import { createHash, createHmac, randomBytes } from "node:crypto";

export interface KnownHostsEntry {
  /** 1-based line number, for messages. */
  readonly line: number;
  readonly marker?: "cert-authority" | "revoked";
  /** The host field as written. */
  readonly hosts: string;
  readonly keyType: string;
  /** The key blob (the base64 field decoded). */
  readonly key: Buffer;
}

export interface ParsedKnownHosts {
  readonly entries: readonly KnownHostsEntry[];
  /** Lines skipped, with why ("line 7: key is not valid base64"). */
  readonly warnings: readonly string[];
  /** Whether the text ends with a newline (an append must start a new line otherwise). */
  readonly endsWithNewline: boolean;
}

/** Parses known_hosts text. The caller bounds its size. */
export function parseKnownHosts(text: string): ParsedKnownHosts {
  const entries: KnownHostsEntry[] = [];
  const warnings: string[] = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const raw = (lines[i] ?? "").replace(/\r$/, "").trim();
    if (raw === "" || raw.startsWith("#")) continue;
    const parsed = parseLine(raw, i + 1);
    if (typeof parsed === "string") warnings.push(`line ${i + 1}: ${parsed}`);
    else entries.push(parsed);
  }
  return { entries, warnings, endsWithNewline: text === "" || text.endsWith("\n") };
}

function parseLine(line: string, lineNo: number): KnownHostsEntry | string {
  const fields = line.split(/[ \t]+/);
  let marker: KnownHostsEntry["marker"];
  if (fields[0]?.startsWith("@")) {
    const name = fields.shift();
    if (name === "@cert-authority") marker = "cert-authority";
    else if (name === "@revoked") marker = "revoked";
    else return `unknown marker ${name}`;
  }
  const [hosts, keyType, base64] = fields;
  if (hosts === undefined || keyType === undefined || base64 === undefined) return "fewer than 3 fields";
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(base64)) return "key is not valid base64";
  const key = Buffer.from(base64, "base64");
  const embedded = keyTypeOf(key);
  if (embedded !== keyType) return `key type ${keyType} does not match the key's own (${String(embedded)})`;
  if (hosts.startsWith("|") && hashedParts(hosts) === undefined) return "malformed hashed host name";
  return { line: lineNo, ...(marker ? { marker } : {}), hosts, keyType, key };
}

/** The algorithm name at the start of an SSH public key blob (RFC 4253 6.6), or undefined. */
export function keyTypeOf(blob: Buffer): string | undefined {
  if (blob.length < 4) return undefined;
  const len = blob.readUInt32BE(0);
  if (len === 0 || len > 64 || blob.length < 4 + len) return undefined;
  const name = blob.subarray(4, 4 + len).toString("latin1");
  return /^[\x21-\x7e]+$/.test(name) ? name : undefined;
}

/** OpenSSH's fingerprint of a key blob: `SHA256:` and unpadded base64 of its SHA-256. */
export function fingerprint(blob: Buffer): string {
  return `SHA256:${createHash("sha256").update(blob).digest("base64").replace(/=+$/, "")}`;
}

/** The name a host is recorded under: `host` on port 22, `[host]:port` otherwise, lower case. */
export function knownHostsName(host: string, port: number): string {
  const h = host.toLowerCase();
  return port === 22 ? h : `[${h}]:${port}`;
}

function hashedParts(field: string): { salt: Buffer; hash: Buffer } | undefined {
  const m = /^\|1\|([A-Za-z0-9+/]+={0,2})\|([A-Za-z0-9+/]+={0,2})$/.exec(field);
  if (!m?.[1] || !m[2]) return undefined;
  const salt = Buffer.from(m[1], "base64");
  const hash = Buffer.from(m[2], "base64");
  return salt.length === 20 && hash.length === 20 ? { salt, hash } : undefined;
}

/** A hashed host field for `name` (what `ssh-keygen -H` writes), with a fresh salt by default. */
export function hashHostName(name: string, salt: Buffer = randomBytes(20)): string {
  const hash = createHmac("sha1", salt).update(name).digest();
  return `|1|${salt.toString("base64")}|${hash.toString("base64")}`;
}

/** Glob match with `*` and `?` (OpenSSH match_pattern), linear in practice, no regex. */
export function globMatch(text: string, pattern: string): boolean {
  let t = 0;
  let p = 0;
  let starP = -1;
  let starT = 0;
  while (t < text.length) {
    const pc = pattern[p];
    if (pc === "?" || (pc !== undefined && pc !== "*" && pc === text[t])) {
      t++;
      p++;
    } else if (pc === "*") {
      starP = p++;
      starT = t;
    } else if (starP >= 0) {
      p = starP + 1;
      t = ++starT;
    } else return false;
  }
  while (pattern[p] === "*") p++;
  return p === pattern.length;
}

/** Whether a host field (patterns or a hashed name) matches `name` (already lower case). */
export function hostsMatch(hosts: string, name: string): boolean {
  if (hosts.startsWith("|")) {
    const parts = hashedParts(hosts);
    return parts !== undefined && createHmac("sha1", parts.salt).update(name).digest().equals(parts.hash);
  }
  let matched = false;
  for (const raw of hosts.split(",")) {
    const negated = raw.startsWith("!");
    const pattern = (negated ? raw.slice(1) : raw).toLowerCase();
    if (pattern === "" || !globMatch(name, pattern)) continue;
    // A matching negated pattern rules the line out whatever else matches (OpenSSH match_hostname).
    if (negated) return false;
    matched = true;
  }
  return matched;
}

/** What known_hosts says about the key a host presented. */
export type HostKeyStatus =
  | { readonly kind: "known"; readonly entry: KnownHostsEntry }
  | { readonly kind: "revoked"; readonly entry: KnownHostsEntry }
  /** The host has keys recorded, none of them the presented one. */
  | { readonly kind: "changed"; readonly known: readonly KnownHostsEntry[] }
  /** Nothing recorded for the host; `certAuthorities` counts ignored `@cert-authority` lines. */
  | { readonly kind: "unknown"; readonly certAuthorities: number };

/** Looks up `key` for the host recorded as `name` (see {@link knownHostsName}). */
export function checkHostKey(entries: readonly KnownHostsEntry[], name: string, key: Buffer): HostKeyStatus {
  const known: KnownHostsEntry[] = [];
  let certAuthorities = 0;
  for (const entry of entries) {
    if (!hostsMatch(entry.hosts, name)) continue;
    if (entry.marker === "revoked") {
      if (entry.key.equals(key)) return { kind: "revoked", entry };
    } else if (entry.marker === "cert-authority") certAuthorities++;
    else known.push(entry);
  }
  const same = known.find((e) => e.key.equals(key));
  if (same) return { kind: "known", entry: same };
  if (known.length > 0) return { kind: "changed", known };
  return { kind: "unknown", certAuthorities };
}

/** Key types recorded for `name` (plain entries only), to prefer them in the key exchange. */
export function knownKeyTypes(entries: readonly KnownHostsEntry[], name: string): string[] {
  const types = new Set<string>();
  for (const e of entries) if (e.marker === undefined && hostsMatch(e.hosts, name)) types.add(e.keyType);
  return [...types];
}

/** One known_hosts line (with its newline) recording `key` for `name`. */
export function formatKnownHostsLine(name: string, key: Buffer, hashed: boolean): string {
  const type = keyTypeOf(key);
  if (type === undefined) throw new TypeError("not an SSH public key blob");
  return `${hashed ? hashHostName(name) : name} ${type} ${key.toString("base64")}\n`;
}
