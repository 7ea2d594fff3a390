import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import ssh2 from "ssh2";
import { MAX_PRIVATE_KEY_BYTES, resolveAuth } from "../../actors/ssh/auth.ts";

function goodKey(passphrase?: string): { private: string; public: string } {
  for (;;) {
    const pair = passphrase
      ? ssh2.utils.generateKeyPairSync("ed25519", { passphrase, cipher: "aes256-ctr", rounds: 16 })
      : ssh2.utils.generateKeyPairSync("ed25519");
    if (!(ssh2.utils.parseKey(pair.private, passphrase) instanceof Error)) return pair;
  }
}

describe("ssh login methods", () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "sumac-auth-"));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("ssh auth - a key file is read and checked; its passphrase goes to ssh2 only", async () => {
    const pair = goodKey("pass phrase");
    const path = join(dir, "enc.key");
    await writeFile(path, pair.private, { mode: 0o600 });
    const cfg = await resolveAuth({ kind: "key-file", path, passphrase: "pass phrase" });
    assert.ok("privateKey" in cfg && cfg.privateKey.equals(Buffer.from(pair.private)));
    assert.equal("passphrase" in cfg ? cfg.passphrase : undefined, "pass phrase");
  });

  it("ssh auth - unusable keys are BAD_PRIVATE_KEY naming the file and the reason", async () => {
    const enc = join(dir, "needs-passphrase.key");
    await writeFile(enc, goodKey("pw").private);
    await assert.rejects(
      resolveAuth({ kind: "key-file", path: enc }),
      (e: Error & { code?: string }) =>
        e.code === "BAD_PRIVATE_KEY" && e.message.includes(`file ${enc}`) && /passphrase/i.test(e.message),
    );
    const garbage = join(dir, "garbage.key");
    await writeFile(
      garbage,
      "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n",
    );
    await assert.rejects(
      resolveAuth({ kind: "key-file", path: garbage }),
      (e: Error & { code?: string }) =>
        e.code === "BAD_PRIVATE_KEY" && e.message.startsWith(`cannot use private key file ${garbage}: `),
    );
    const pub = join(dir, "id.pub");
    await writeFile(pub, goodKey().public);
    await assert.rejects(resolveAuth({ kind: "key-file", path: pub }), {
      code: "BAD_PRIVATE_KEY",
      message: `file ${pub} holds a public key, not a private key`,
    });
    await assert.rejects(
      resolveAuth({ kind: "key-file", path: join(dir, "missing") }),
      (e: Error & { code?: string }) =>
        e.code === "BAD_PRIVATE_KEY" && /cannot read private key file .*missing: ENOENT/.test(e.message),
    );
    const big = join(dir, "big.key");
    await writeFile(big, "x".repeat(MAX_PRIVATE_KEY_BYTES + 10));
    await assert.rejects(resolveAuth({ kind: "key-file", path: big }), { code: "BAD_PRIVATE_KEY" });
    await assert.rejects(
      resolveAuth({ kind: "key", privateKey: "nonsense", source: "the job's key for web-01" }),
      (e: Error & { code?: string }) =>
        e.code === "BAD_PRIVATE_KEY" && e.message.includes("the job's key for web-01"),
    );
  });

  it("ssh auth - agent needs a socket; password must not be empty", async () => {
    await assert.rejects(resolveAuth({ kind: "agent" }, {}), { code: "CONFIG_INVALID" });
    assert.deepEqual(await resolveAuth({ kind: "agent" }, { SSH_AUTH_SOCK: "/run/agent.sock" }), {
      agent: "/run/agent.sock",
    });
    assert.deepEqual(await resolveAuth({ kind: "agent", socket: "/x.sock" }, {}), { agent: "/x.sock" });
    await assert.rejects(resolveAuth({ kind: "password", password: "" }), { code: "CONFIG_INVALID" });
    assert.deepEqual(await resolveAuth({ kind: "password", password: "pw" }), { password: "pw" });
  });
});
