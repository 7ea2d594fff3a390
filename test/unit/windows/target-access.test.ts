/**
 * A Windows target from the job file to the login the SMB transport is given (run/job/targets.ts,
 * run/target-access.ts): the account's domain from `user` or from `domain`, `domain` refused where
 * it means nothing, and the password read only when the login asks for it.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { JobFileError, loadJob, type Job, type JobProblem } from "../../../run/job/load.ts";
import { targetAccess } from "../../../run/target-access.ts";
import type { SmbAccess } from "../../../actors/target/transport.ts";

let dir = "";

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "sumac-windows-access-"));
  await writeFile(join(dir, "a.sh"), "echo 1\n");
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

const PACKAGE = `package:
  components:
    - id: a
      version: "1"
      files: [a.sh]
      detect: sh a.sh
      install: sh a.sh
`;

async function load(text: string): Promise<Job> {
  const file = join(dir, "job.yaml");
  await writeFile(file, text);
  return loadJob(file);
}

/** The problems of loading `text`; fails when it loads. */
async function problems(text: string): Promise<JobProblem[]> {
  const error = await load(text).then(
    () => assert.fail("the job loaded"),
    (e: unknown) => e,
  );
  assert.ok(error instanceof JobFileError, String(error));
  return [...error.problems];
}

/** The one Windows target of a job whose target is `lines` (YAML under `- `), as the transport gets it. */
async function windowsAccess(lines: string, env: NodeJS.ProcessEnv = {}): Promise<SmbAccess> {
  const job = await load(
    `targets:\n  - host: 192.0.2.9\n    os: windows\n    auth: { password: { env: WIN_PW } }\n${lines}${PACKAGE}`,
  );
  const [target] = job.targets;
  assert.ok(target !== undefined);
  const access = targetAccess(target, env);
  assert.equal(access.transport, "smb");
  return access;
}

describe("windows target access", () => {
  it("windows access - a user written DOMAIN\\user logs in as user of DOMAIN", async () => {
    const access = await windowsAccess("    user: CORP\\deploy\n");
    assert.deepEqual(
      { user: access.user, domain: access.domain, host: access.host, port: access.port, id: access.id },
      { user: "deploy", domain: "CORP", host: "192.0.2.9", port: 445, id: "192.0.2.9" },
    );
  });

  it("windows access - a user written user@domain logs in as user of that domain", async () => {
    const access = await windowsAccess("    user: deploy@corp.example.com\n");
    assert.deepEqual(
      { user: access.user, domain: access.domain },
      { user: "deploy", domain: "corp.example.com" },
    );
  });

  it("windows access - domain gives a bare user its domain, here or from defaults", async () => {
    const access = await windowsAccess("    user: deploy\n    domain: CORP\n");
    assert.deepEqual({ user: access.user, domain: access.domain }, { user: "deploy", domain: "CORP" });

    const job = await load(
      `defaults:\n  domain: corp.example.com\n  user: deploy\n  os: windows\n  auth: { password: { env: WIN_PW } }\ntargets:\n  - host: win-1\n  - host: win-2\n    domain: OTHER\n${PACKAGE}`,
    );
    assert.deepEqual(
      job.targets
        .map((t) => targetAccess(t, {}))
        .map((a) => a.transport === "smb" && [a.id, a.user, a.domain]),
      [
        ["win-1", "deploy", "corp.example.com"],
        ["win-2", "deploy", "OTHER"],
      ],
    );
  });

  it("windows access - without domain a bare user is the server's own account (empty domain)", async () => {
    const access = await windowsAccess("    user: Administrator\n");
    assert.deepEqual({ user: access.user, domain: access.domain }, { user: "Administrator", domain: "" });
  });

  it("windows access - domain on a linux target is a job error at its path", async () => {
    const list = await problems(
      `targets:\n  - host: web-1\n    user: deploy\n    domain: CORP\n    auth: { agent: true }\n${PACKAGE}`,
    );
    assert.deepEqual(
      list.map((p) => [p.path, p.line, p.column, p.message, p.expected]),
      [["targets[0].domain", 4, 5, "domain is for windows targets (SMB logins)", "no domain"]],
    );
  });

  it("windows access - a default domain with a linux target is a job error at defaults.domain", async () => {
    const list = await problems(
      `defaults:\n  domain: CORP\ntargets:\n  - host: web-1\n    auth: { agent: true }\n${PACKAGE}`,
    );
    assert.deepEqual(
      list.map((p) => [p.path, p.message]),
      [["defaults.domain", "domain is for windows targets (SMB logins)"]],
    );
  });

  it("windows access - domain on a local target is a job error at its path", async () => {
    const list = await problems(`targets:\n  - host: local\n    domain: CORP\n${PACKAGE}`);
    assert.deepEqual(
      list.map((p) => [p.path, p.message]),
      [["targets[0].domain", "a local target (host: local) takes no domain"]],
    );
  });

  it("windows access - the password is read when password() is called, not before, and each time", async () => {
    const env: NodeJS.ProcessEnv = {};
    let reads = 0;
    const watched = new Proxy(env, {
      get(target, key, receiver) {
        if (key === "WIN_PW") reads++;
        return Reflect.get(target, key, receiver) as unknown;
      },
    });
    const access = await windowsAccess("    user: CORP\\deploy\n", watched);
    assert.equal(reads, 0, "nothing read when the access is made");
    // Unset now: only the call finds that out, with the variable's name and no value.
    await assert.rejects(access.password(), (e: unknown) => {
      assert.equal((e as { code?: unknown }).code, "SECRET_UNAVAILABLE");
      assert.match((e as Error).message, /WIN_PW/);
      return true;
    });
    env.WIN_PW = "s3cret";
    assert.equal(await access.password(), "s3cret");
    env.WIN_PW = "changed";
    assert.equal(await access.password(), "changed");
    assert.equal(reads, 3);
    assert.ok(!JSON.stringify(access).includes("s3cret"));
  });

  it("windows access - a password from a file is read at the call, not at the load", async () => {
    const file = join(dir, "win-pw");
    await writeFile(file, "first\n", { mode: 0o600 });
    const job = await load(
      `targets:\n  - host: 192.0.2.9\n    os: windows\n    user: deploy\n    auth: { password: { file: win-pw } }\n${PACKAGE}`,
    );
    const [target] = job.targets;
    assert.ok(target !== undefined);
    const access = targetAccess(target, {}) as SmbAccess;
    await writeFile(file, "second\n", { mode: 0o600 });
    assert.equal(await access.password(), "second");
  });

  // KNOWN BUG (reported, left failing on purpose): the job accepts an account that parseAccount
  // refuses (`CORP\` has no user, `\deploy` no domain, `a\b\c` two backslashes); the refusal comes
  // only when the run is composed (run/compose.ts maps every target through targetAccess), as an
  // SmbAccountError that names no place in the job and stops every target of the run.
  it("windows access - an account parseAccount refuses is a job error at targets[0].user", async () => {
    for (const user of ["'CORP\\'", "'\\deploy'", "'a\\b\\c'", "'deploy@'"]) {
      const file = join(dir, "job.yaml");
      const text = `targets:\n  - host: 192.0.2.9\n    os: windows\n    user: ${user}\n    auth: { password: { env: WIN_PW } }\n${PACKAGE}`;
      await writeFile(file, text);
      const outcome = await loadJob(file).then(
        (job) => {
          const [target] = job.targets;
          assert.ok(target !== undefined);
          try {
            targetAccess(target, {});
            return "accepted by both";
          } catch (error) {
            return `loaded, then refused when the run is composed: ${(error as Error).message}`;
          }
        },
        (error: unknown) => error,
      );
      assert.ok(outcome instanceof JobFileError, `${user}: ${String(outcome)}`);
      assert.deepEqual(
        outcome.problems.map((p) => p.path),
        ["targets[0].user"],
      );
    }
  });
});
