import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import ssh2 from "ssh2";
import {
  checkHostKey,
  fingerprint,
  formatKnownHostsLine,
  globMatch,
  hashHostName,
  hostsMatch,
  keyTypeOf,
  knownHostsName,
  knownKeyTypes,
  parseKnownHosts,
} from "../../actors/ssh/known-hosts.ts";

function newKey(type: "ed25519" | "ecdsa" = "ed25519"): { line: string; blob: Buffer } {
  const pub = ssh2.utils.generateKeyPairSync(type, type === "ecdsa" ? { bits: 256 } : {}).public.trim();
  const [keyType = "", b64 = ""] = pub.split(" ");
  return { line: `${keyType} ${b64}`, blob: Buffer.from(b64, "base64") };
}

const a = newKey();
const b = newKey();
const c = newKey("ecdsa");

describe("known_hosts parser", () => {
  it("known_hosts - comments, blank lines, CRLF and comments after the key are accepted", () => {
    const text = `# header\n\n  \r\nweb-01,10.0.0.1 ${a.line} root@web-01\r\n[db]:2222 ${c.line}\n`;
    const parsed = parseKnownHosts(text);
    assert.deepEqual(parsed.warnings, []);
    assert.deepEqual(
      parsed.entries.map((e) => [e.line, e.hosts, e.keyType]),
      [
        [4, "web-01,10.0.0.1", "ssh-ed25519"],
        [5, "[db]:2222", "ecdsa-sha2-nistp256"],
      ],
    );
    assert.ok(parsed.entries[0]?.key.equals(a.blob));
    assert.equal(parsed.endsWithNewline, true);
  });

  it("known_hosts - bad lines are skipped with a warning naming the line, the rest still count", () => {
    const text = [
      `web-01 ${a.line}`,
      "only-two fields",
      `web-02 ssh-ed25519 not*base64`,
      `web-03 ssh-rsa ${a.line.split(" ")[1]}`,
      `@bogus web-04 ${a.line}`,
      `|1|short|hash ${a.line}`,
      `@revoked * ${b.line}`,
    ].join("\n");
    const parsed = parseKnownHosts(text);
    assert.deepEqual(parsed.warnings, [
      "line 2: fewer than 3 fields",
      "line 3: key is not valid base64",
      "line 4: key type ssh-rsa does not match the key's own (ssh-ed25519)",
      "line 5: unknown marker @bogus",
      "line 6: malformed hashed host name",
    ]);
    assert.deepEqual(
      parsed.entries.map((e) => [e.line, e.marker]),
      [
        [1, undefined],
        [7, "revoked"],
      ],
    );
    assert.equal(parsed.endsWithNewline, false);
  });

  it("known_hosts - key type and fingerprint of a blob", () => {
    assert.equal(keyTypeOf(a.blob), "ssh-ed25519");
    assert.equal(keyTypeOf(Buffer.from([0, 0, 0, 200, 1])), undefined);
    assert.match(fingerprint(a.blob), /^SHA256:[A-Za-z0-9+/]{43}$/);
  });
});

describe("known_hosts matching", () => {
  it("known_hosts - names: host on port 22, [host]:port otherwise, lower case", () => {
    assert.equal(knownHostsName("Web-01.Example", 22), "web-01.example");
    assert.equal(knownHostsName("10.0.0.1", 2222), "[10.0.0.1]:2222");
  });

  it("known_hosts - patterns with wildcards and negation (a matching negation rules a line out)", () => {
    assert.equal(hostsMatch("web-*,db-0?", "web-17"), true);
    assert.equal(hostsMatch("web-*,db-0?", "db-01"), true);
    assert.equal(hostsMatch("web-*,db-0?", "db-011"), false);
    assert.equal(hostsMatch("*.example,!bad.example", "bad.example"), false);
    assert.equal(hostsMatch("*.example,!bad.example", "good.example"), true);
    assert.equal(hostsMatch("!bad.example", "good.example"), false, "a negation alone matches nothing");
    assert.equal(hostsMatch("WEB-01", "web-01"), true);
    assert.equal(hostsMatch("[10.0.0.1]:2222", "[10.0.0.1]:2222"), true);
    assert.equal(hostsMatch("10.0.0.1", "[10.0.0.1]:2222"), false);
    assert.equal(globMatch("abc", "a*b*c*"), true);
    assert.equal(globMatch("a".repeat(5000), `${"*a".repeat(50)}b`), false);
  });

  it("known_hosts - hashed names match by HMAC-SHA1 of the name with the salt", () => {
    const salt = Buffer.alloc(20, 7);
    const field = hashHostName("[web-01]:2222", salt);
    const expected = createHmac("sha1", salt).update("[web-01]:2222").digest("base64");
    assert.equal(field, `|1|${salt.toString("base64")}|${expected}`);
    assert.equal(hostsMatch(field, "[web-01]:2222"), true);
    assert.equal(hostsMatch(field, "web-01"), false);
    assert.notEqual(hashHostName("x"), hashHostName("x"), "a fresh salt each time");
  });

  it("known_hosts - a host's status: known, changed, revoked, unknown (cert-authority lines counted)", () => {
    const { entries } = parseKnownHosts(
      [
        `web-01 ${a.line}`,
        `web-01 ${c.line}`,
        `@revoked web-* ${b.line}`,
        `@cert-authority *.example ${b.line}`,
        `${hashHostName("db-01")} ${a.line}`,
      ].join("\n"),
    );
    assert.equal(checkHostKey(entries, "web-01", a.blob).kind, "known");
    assert.equal(checkHostKey(entries, "web-01", c.blob).kind, "known", "any of the host's keys");
    assert.equal(checkHostKey(entries, "web-01", b.blob).kind, "revoked");
    assert.equal(checkHostKey(entries, "db-01", a.blob).kind, "known");
    const changed = checkHostKey(entries, "db-01", c.blob);
    assert.equal(changed.kind, "changed");
    assert.deepEqual(changed.kind === "changed" ? changed.known.map((e) => e.line) : [], [5]);
    assert.deepEqual(checkHostKey(entries, "app.example", a.blob), { kind: "unknown", certAuthorities: 1 });
    assert.deepEqual(knownKeyTypes(entries, "web-01"), ["ssh-ed25519", "ecdsa-sha2-nistp256"]);
  });

  it("known_hosts - a formatted line parses back to the same host and key", () => {
    for (const hashed of [false, true]) {
      const line = formatKnownHostsLine("[10.1.2.3]:2200", a.blob, hashed);
      assert.ok(line.endsWith("\n"));
      const { entries, warnings } = parseKnownHosts(line);
      assert.deepEqual(warnings, []);
      assert.equal(checkHostKey(entries, "[10.1.2.3]:2200", a.blob).kind, "known");
      assert.equal(line.includes("10.1.2.3"), !hashed);
    }
    assert.throws(() => formatKnownHostsLine("x", Buffer.from("junk"), false), TypeError);
  });
});
