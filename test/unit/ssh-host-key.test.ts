import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import ssh2 from "ssh2";
import { parseFingerprint, validatePolicy, verifyHostKey } from "../../actors/ssh/host-key.ts";
import { KnownHostsFile } from "../../actors/ssh/known-hosts-file.ts";
import { fingerprint } from "../../actors/ssh/known-hosts.ts";

function key(): { blob: Buffer; line: string } {
  const [type = "", b64 = ""] = ssh2.utils.generateKeyPairSync("ed25519").public.split(" ");
  return { blob: Buffer.from(b64, "base64"), line: `${type} ${b64}` };
}

describe("host key verification", () => {
  const host = key();
  const other = key();
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "sumac-hostkey-"));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("host key - a pinned fingerprint accepts its key, with or without base64 padding", async () => {
    for (const f of [fingerprint(host.blob), `${fingerprint(host.blob)}=`]) {
      const v = await verifyHostKey(
        { kind: "pinned", fingerprints: [fingerprint(other.blob), f] },
        "web-01",
        22,
        host.blob,
      );
      assert.deepEqual(v, { ok: true, fingerprint: fingerprint(host.blob), added: false });
    }
  });

  it("host key - a pinned mismatch names both fingerprints and where the expectation came from", async () => {
    const v = await verifyHostKey(
      { kind: "pinned", fingerprints: [fingerprint(other.blob)] },
      "web-01",
      2222,
      host.blob,
    );
    assert.equal(v.ok, false);
    const error = v.ok ? undefined : v.error;
    assert.equal(error?.code, "HOST_KEY_MISMATCH");
    assert.equal(
      error?.message.split(";")[0],
      `host key of web-01:2222 does not match: it presented ${fingerprint(host.blob)} (ssh-ed25519), ` +
        `expected ${fingerprint(other.blob)} (pinned in the job)`,
    );
  });

  it("host key - a fingerprint not in SHA256:base64 form is CONFIG_INVALID before any connection", () => {
    for (const bad of ["", "MD5:aa:bb", "SHA256:short", `sha256:${fingerprint(host.blob).slice(7)}`]) {
      assert.throws(() => parseFingerprint(bad), { code: "CONFIG_INVALID" }, bad);
    }
    assert.throws(() => validatePolicy({ kind: "pinned", fingerprints: [] }), { code: "CONFIG_INVALID" });
    const file = new KnownHostsFile({ path: join(dir, "x") });
    assert.throws(() => validatePolicy({ kind: "known-hosts", file, policy: "yes" as "strict" }), {
      code: "CONFIG_INVALID",
    });
  });

  it("host key - strict: unknown is refused and the file is left alone; known is accepted", async () => {
    const path = join(dir, "strict");
    await writeFile(path, `[web-01]:2222 ${other.line}\n`);
    const file = new KnownHostsFile({ path });
    const unknown = await verifyHostKey(
      { kind: "known-hosts", file, policy: "strict" },
      "web-02",
      22,
      host.blob,
    );
    assert.equal(unknown.ok ? "" : unknown.error.code, "HOST_KEY_UNKNOWN");
    assert.equal(await readFile(path, "utf8"), `[web-01]:2222 ${other.line}\n`);
    const known = await verifyHostKey(
      { kind: "known-hosts", file, policy: "strict" },
      "WEB-01",
      2222,
      other.blob,
    );
    assert.equal(known.ok, true);
  });

  it("host key - accept-new records an unknown host once; a changed key is refused with the file and line", async () => {
    const path = join(dir, "accept-new");
    await writeFile(path, `# fleet\nweb-01 ${other.line}\n`);
    const file = new KnownHostsFile({ path, hashNewEntries: false });
    const policy = { kind: "known-hosts", file, policy: "accept-new" } as const;
    assert.deepEqual(await verifyHostKey(policy, "web-02", 22, host.blob), {
      ok: true,
      fingerprint: fingerprint(host.blob),
      added: true,
    });
    assert.deepEqual(await verifyHostKey(policy, "web-02", 22, host.blob), {
      ok: true,
      fingerprint: fingerprint(host.blob),
      added: false,
    });
    assert.equal(await readFile(path, "utf8"), `# fleet\nweb-01 ${other.line}\nweb-02 ${host.line}\n`);
    const changed = await verifyHostKey(policy, "web-01", 22, host.blob);
    assert.equal(changed.ok ? "" : changed.error.code, "HOST_KEY_MISMATCH");
    assert.match(
      changed.ok ? "" : changed.error.message,
      new RegExp(
        `expected ${fingerprint(other.blob).replace(/[+/]/g, "\\$&")} \\(ssh-ed25519\\) \\(known_hosts .*accept-new line 2\\)`,
      ),
    );
  });

  it("host key - @revoked is refused even under accept-new; @cert-authority alone leaves the host unknown, said so", async () => {
    const path = join(dir, "markers");
    await writeFile(path, `@revoked * ${host.line}\n@cert-authority *.example ${other.line}\n`);
    const file = new KnownHostsFile({ path });
    const revoked = await verifyHostKey(
      { kind: "known-hosts", file, policy: "accept-new" },
      "web-01",
      22,
      host.blob,
    );
    assert.equal(revoked.ok ? "" : revoked.error.code, "HOST_KEY_REVOKED");
    const ca = await verifyHostKey(
      { kind: "known-hosts", file, policy: "strict" },
      "app.example",
      22,
      other.blob,
    );
    assert.equal(ca.ok ? "" : ca.error.code, "HOST_KEY_UNKNOWN");
    assert.match(ca.ok ? "" : ca.error.message, /host certificates are not supported/);
  });

  it("host key - an alias is looked up instead of the host name", async () => {
    const path = join(dir, "alias");
    await writeFile(path, `web-01-alias ${host.line}\n`);
    const file = new KnownHostsFile({ path });
    const v = await verifyHostKey(
      { kind: "known-hosts", file, policy: "strict", alias: "web-01-alias" },
      "10.0.0.7",
      22,
      host.blob,
    );
    assert.equal(v.ok, true);
  });
});
