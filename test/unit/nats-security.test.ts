/**
 * The checks on NATS credential and TLS files before any connection: each unusable file gets the
 * error a user would see, naming the file and never what it holds.
 */
import assert from "node:assert/strict";
import { inCI } from "../support/engine.ts";
import { after, before, describe, it } from "node:test";
import { chmod, mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BusError } from "../../bus/bus.ts";
import { natsConnectSecurity, type NatsSecurity } from "../../bus/nats-security.ts";
import { operatorMode, testTls, userNkey } from "../support/nats-secure.ts";

async function refusal(security: NatsSecurity): Promise<BusError> {
  try {
    await natsConnectSecurity(security);
  } catch (err) {
    assert.ok(err instanceof BusError, String(err));
    assert.equal(err.code, "BUS_CREDENTIALS_INVALID");
    assert.equal(err.retryable, false);
    return err;
  }
  assert.fail("expected the files to be refused");
}

describe("nats security files", () => {
  let dir: string;
  const seed = userNkey().seed;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "sumac-nats-files-"));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("nats security files - good files give nats.js an authenticator and TLS options", async () => {
    const tls = testTls();
    await writeFile(join(dir, "ok.creds"), operatorMode().creds("u"), { mode: 0o600 });
    await writeFile(join(dir, "ca.pem"), tls.caPem, { mode: 0o644 });
    await writeFile(join(dir, "c.pem"), tls.clientCertPem, { mode: 0o644 });
    await writeFile(join(dir, "c.key"), tls.clientKeyPem, { mode: 0o600 });
    const got = await natsConnectSecurity({
      credential: { kind: "creds", file: join(dir, "ok.creds") },
      tls: { caFile: join(dir, "ca.pem"), certFile: join(dir, "c.pem"), keyFile: join(dir, "c.key") },
    });
    assert.equal(typeof got.authenticator, "function");
    assert.deepEqual(got.tls, { ca: tls.caPem, cert: tls.clientCertPem, key: tls.clientKeyPem });
    // A link to a private file is followed, and the file it reaches is what is checked.
    await symlink(join(dir, "ok.creds"), join(dir, "link.creds"));
    assert.equal(
      typeof (await natsConnectSecurity({ credential: { kind: "creds", file: join(dir, "link.creds") } }))
        .authenticator,
      "function",
    );
  });

  it("nats security files - missing, not a file, loose, too large or malformed: refused, naming the file, not its content", async () => {
    const file = (name: string) => join(dir, name);
    assert.match(
      (await refusal({ credential: { kind: "nkey", file: file("none.nk") } })).message,
      /cannot read the NATS nkey seed file .*none\.nk: ENOENT/,
    );
    await mkdir(file("adir"));
    assert.match(
      (await refusal({ credential: { kind: "token", file: file("adir") } })).message,
      /the NATS token file .*adir is not a regular file/,
    );
    await writeFile(file("loose.nk"), seed, { mode: 0o600 });
    await chmod(file("loose.nk"), 0o604);
    const loose = await refusal({ credential: { kind: "nkey", file: file("loose.nk") } });
    assert.match(loose.message, /loose\.nk may be read by others \(mode 0604\).*chmod 600 .*loose\.nk/);
    await writeFile(file("big.token"), "x".repeat(70_000), { mode: 0o600 });
    assert.match(
      (await refusal({ credential: { kind: "token", file: file("big.token") } })).message,
      /big\.token is over 65536 bytes/,
    );
    await writeFile(file("bad.creds"), `just a seed ${seed}\n`, { mode: 0o600 });
    const badCreds = await refusal({ credential: { kind: "creds", file: file("bad.creds") } });
    assert.match(badCreds.message, /does not hold a user JWT and a user nkey seed/);
    await writeFile(file("bad.nk"), "SUNOTASEED\n", { mode: 0o600 });
    assert.match(
      (await refusal({ credential: { kind: "nkey", file: file("bad.nk") } })).message,
      /bad\.nk does not hold one user nkey seed/,
    );
    assert.match(
      (await refusal({ credential: { kind: "nkey", value: "SUshort", from: "SUMAC_NATS_NKEY_SEED" } }))
        .message,
      /SUMAC_NATS_NKEY_SEED does not hold one user nkey seed/,
    );
    assert.match(
      (await refusal({ credential: { kind: "token", value: "two words", from: "SUMAC_NATS_TOKEN" } }))
        .message,
      /the token in SUMAC_NATS_TOKEN is not one line without spaces/,
    );
    assert.match(
      (await refusal({ credential: { kind: "token", value: " ", from: "SUMAC_NATS_TOKEN" } })).message,
      /the token in SUMAC_NATS_TOKEN is empty/,
    );
    assert.match(
      (await refusal({ tls: { certFile: file("c.pem") } })).message,
      /a NATS client certificate .* was given without its key/,
    );
    await writeFile(file("notca.pem"), "hello\n");
    assert.match(
      (await refusal({ tls: { caFile: file("notca.pem") } })).message,
      /notca\.pem holds no PEM certificate/,
    );
    for (const e of [loose, badCreds]) assert.ok(!e.message.includes(seed), "the seed is not in the message");
  });

  it(
    "nats security files - a secret file of another user is refused",
    // CI runs as root, so it never skips there (a user's run may).
    { skip: process.getuid?.() !== 0 && !inCI() },
    async () => {
      await writeFile(join(dir, "theirs.nk"), seed, { mode: 0o600 });
      const { chown } = await import("node:fs/promises");
      await chown(join(dir, "theirs.nk"), 65534, 65534);
      assert.match(
        (await refusal({ credential: { kind: "nkey", file: join(dir, "theirs.nk") } })).message,
        /theirs\.nk belongs to uid 65534, not to this user \(uid 0\) or root/,
      );
    },
  );
});
