/**
 * The NATS options and variables: where each comes from, which combinations are refused (exit 254,
 * before the job is read), and that `--help` says how to give secrets.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { main } from "../../cli/main.ts";
import { DEPLOY_HELP, natsSettings, parseRunArgs, UsageError, type RunArgs } from "../../cli/args.ts";
import { chmod, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fakeSteps, makeJob, ManualClock, tempDir } from "../support/run-fakes.ts";

const args = (...argv: string[]): RunArgs => {
  const parsed = parseRunArgs("deploy", ["job.yaml", ...argv]);
  assert.notEqual(parsed, "help");
  return parsed as RunArgs;
};

async function exitOf(
  argv: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; err: string }> {
  let err = "";
  const code = await main(argv, { out: () => undefined, err: (s) => (err += s), env });
  return { code, err };
}

describe("cli nats args", () => {
  it("cli nats args - options take paths; the URL, TLS files and credential come from them first, else from the environment", () => {
    assert.deepEqual(
      natsSettings(args("--nats", "nats://n:4222", "--nats-ca", "ca.pem", "--nats-creds", "u.creds"), {
        SUMAC_NATS_CA: "other.pem",
        SUMAC_NATS_TOKEN: "t",
      }),
      {
        natsUrl: "nats://n:4222",
        natsSecurity: { tls: { caFile: "ca.pem" }, credential: { kind: "creds", file: "u.creds" } },
      },
    );
    assert.deepEqual(
      natsSettings(args(), {
        SUMAC_NATS_URL: " nats://n:4222 ",
        SUMAC_NATS_CA: "ca.pem",
        SUMAC_NATS_CERT: "c.pem",
        SUMAC_NATS_KEY: "c.key",
        SUMAC_NATS_TOKEN: "secret",
      }),
      {
        natsUrl: "nats://n:4222",
        natsSecurity: {
          tls: { caFile: "ca.pem", certFile: "c.pem", keyFile: "c.key" },
          credential: { kind: "token", value: "secret", from: "SUMAC_NATS_TOKEN" },
        },
      },
    );
    for (const [name, kind] of [
      ["SUMAC_NATS_CREDS", "creds"],
      ["SUMAC_NATS_NKEY", "nkey"],
      ["SUMAC_NATS_TOKEN_FILE", "token"],
    ] as const)
      assert.deepEqual(natsSettings(args("--nats", "nats://n"), { [name]: "/f" }).natsSecurity, {
        credential: { kind, file: "/f" },
      });
    assert.deepEqual(
      natsSettings(args("--nats", "nats://n"), { SUMAC_NATS_NKEY_SEED: "SUxyz" }).natsSecurity?.credential,
      { kind: "nkey", value: "SUxyz", from: "SUMAC_NATS_NKEY_SEED" },
    );
    assert.deepEqual(
      natsSettings(args("--nats", "nats://n", "--nats-inbox-prefix", "_INBOX.worker"), {
        SUMAC_NATS_INBOX_PREFIX: "_INBOX.other",
      }).natsSecurity,
      { inboxPrefix: "_INBOX.worker" },
    );
    assert.deepEqual(
      natsSettings(args("--nats", "nats://n"), { SUMAC_NATS_INBOX_PREFIX: "_INBOX.w" }).natsSecurity,
      {
        inboxPrefix: "_INBOX.w",
      },
    );
    // Embedded: the variables are not used.
    assert.deepEqual(natsSettings(args(), { SUMAC_NATS_TOKEN: "t", SUMAC_NATS_CA: "ca.pem" }), {});
  });

  it("cli nats args - two credentials, half a client pair, options without a server, or a URL with a password and a credential are refused", () => {
    assert.throws(
      () => args("--nats-creds", "a", "--nats-token-file", "b"),
      (e: unknown) =>
        e instanceof UsageError &&
        /one NATS credential at most, got --nats-creds and --nats-token-file/.test(e.message),
    );
    assert.throws(() => args("--nats-cert", "c.pem"), /--nats-cert and --nats-key go together/);
    for (const bad of ["_INBOX.>", "_INBOX.*", "a..b", "a.", "x y"])
      assert.throws(
        () => args("--nats-inbox-prefix", bad),
        /--nats-inbox-prefix .* is not an inbox prefix \(1 to 8 tokens of \[A-Za-z0-9_-\] joined by dots, e\.g\. _INBOX\.worker\)/,
      );
    assert.throws(
      () => natsSettings(args("--nats", "nats://n"), { SUMAC_NATS_INBOX_PREFIX: "_INBOX.>" }),
      /SUMAC_NATS_INBOX_PREFIX '_INBOX\.>' is not an inbox prefix/,
    );
    assert.throws(
      () => natsSettings(args("--nats", "nats://n"), { SUMAC_NATS_TOKEN: "t", SUMAC_NATS_CREDS: "u.creds" }),
      /one NATS credential at most, but SUMAC_NATS_CREDS and SUMAC_NATS_TOKEN are all set/,
    );
    assert.throws(
      () => natsSettings(args("--nats", "nats://n"), { SUMAC_NATS_KEY: "c.key" }),
      /SUMAC_NATS_CERT and SUMAC_NATS_KEY go together/,
    );
    assert.throws(
      () => natsSettings(args("--nats-token-file", "t"), {}),
      /need a NATS server: --nats URL or SUMAC_NATS_URL/,
    );
    assert.throws(
      () => natsSettings(args(), { SUMAC_NATS_URL: "nats://u:p@n", SUMAC_NATS_TOKEN: "t" }),
      /carries a user, password or token, and a NATS credential is given too/,
    );
  });

  it("cli nats args - SUMAC_NATS_ALLOW_PLAINTEXT is 1 or 0, and only 1 allows a credential in plain text", () => {
    const url = args("--nats", "nats://n:4222");
    assert.deepEqual(natsSettings(url, { SUMAC_NATS_ALLOW_PLAINTEXT: "1", SUMAC_NATS_TOKEN: "t" }), {
      natsUrl: "nats://n:4222",
      natsSecurity: {
        credential: { kind: "token", value: "t", from: "SUMAC_NATS_TOKEN" },
        allowPlaintext: true,
      },
    });
    assert.deepEqual(natsSettings(url, { SUMAC_NATS_ALLOW_PLAINTEXT: "0" }), { natsUrl: "nats://n:4222" });
    assert.throws(
      () => natsSettings(url, { SUMAC_NATS_ALLOW_PLAINTEXT: "yes" }),
      (err: unknown) =>
        err instanceof UsageError && /SUMAC_NATS_ALLOW_PLAINTEXT is 1 or 0, not 'yes'/.test(err.message),
    );
  });

  it("cli nats args - a refused combination exits 254 before the job is read, without the secret", async () => {
    const { code, err } = await exitOf(["deploy", "/nonexistent/job.yaml", "--nats", "nats://n"], {
      SUMAC_NATS_TOKEN: "tok-123456",
      SUMAC_NATS_NKEY_SEED: "SUseed",
    });
    assert.equal(code, 254);
    assert.match(err, /one NATS credential at most/);
    assert.doesNotMatch(err, /tok-123456|SUseed|nonexistent/);
  });

  it("cli nats args - a token file others may read stops the run before any connection (255), naming the file and the fix, not the token", async () => {
    const { dir, cleanup } = await tempDir();
    try {
      const { file } = await makeJob(dir, ["t1"]);
      const tokenFile = join(dir, "nats.token");
      await writeFile(tokenFile, "tok-987654\n", { mode: 0o600 });
      await chmod(tokenFile, 0o644);
      const fake = fakeSteps({}, new ManualClock());
      let err = "";
      // Port 1 on loopback refuses at once, should sumac ever try it.
      const code = await main(
        [
          "deploy",
          file,
          "--state-dir",
          join(dir, "state"),
          "--nats",
          "nats://127.0.0.1:1",
          "--nats-token-file",
          tokenFile,
        ],
        { out: () => undefined, err: (s) => (err += s), env: {} },
        fake.factory,
      );
      assert.equal(code, 255);
      assert.equal(
        err,
        `sumac: cannot open the bus on the NATS server: the NATS token file ${tokenFile} may be read by others (mode 0644): it holds a secret; make it private with 'chmod 600 ${tokenFile}'\n`,
      );
      assert.deepEqual(fake.record.calls, []);
    } finally {
      await cleanup();
    }
  });

  it("cli nats args - --help names every NATS option, its variable, and that secrets stay off the command line", () => {
    for (const word of [
      "--nats-ca FILE",
      "--nats-cert FILE, --nats-key FILE",
      "--nats-creds FILE",
      "--nats-nkey FILE",
      "--nats-token-file",
      "--nats-inbox-prefix PREFIX",
      "SUMAC_NATS_INBOX_PREFIX",
      "SUMAC_NATS_CA",
      "SUMAC_NATS_CERT",
      "SUMAC_NATS_KEY",
      "SUMAC_NATS_CREDS",
      "SUMAC_NATS_NKEY",
      "SUMAC_NATS_NKEY_SEED",
      "SUMAC_NATS_TOKEN_FILE",
      "SUMAC_NATS_TOKEN",
      "chmod 600",
      "docs/nats.md",
    ])
      assert.ok(DEPLOY_HELP.includes(word), word);
    assert.match(DEPLOY_HELP, /Secrets are never taken from the command line/);
  });
});
