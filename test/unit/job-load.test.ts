import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadJob, type Job } from "../../run/job/load.ts";
import { readSecret, SecretUnavailableError } from "../../run/job/secret.ts";

let dir = "";

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "sumac-job-load-"));
  await mkdir(join(dir, "pkg"));
  await mkdir(join(dir, "keys"));
  await writeFile(join(dir, "pkg", "a.sh"), "echo 1\n");
  await writeFile(join(dir, "pkg", "b.tar"), "b");
  await writeFile(join(dir, "keys", "deploy"), "not really a key\n");
  await writeFile(join(dir, "keys", "pw"), "s3cret\n");
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function load(text: string): Promise<Job> {
  const file = join(dir, "job.yml");
  await writeFile(file, text);
  return loadJob(file);
}

const PACKAGE = `package:
  components:
    - id: a
      version: "2.1"
      files: [pkg/a.sh, pkg/b.tar]
      detect: sh a.sh
      install: sh a.sh install
`;

describe("job file loading", () => {
  it("job load - a minimal job gets every default", async () => {
    const job = await load(`targets:\n  - host: local\n${PACKAGE}`);
    const range = (base: number) => ({ base, strategy: "lowest", window: 1000 });
    assert.deepEqual(job, {
      file: join(dir, "job.yml"),
      name: "job",
      targets: [{ transport: "local", id: "local", host: "local", os: "linux", tags: [] }],
      package: {
        name: "job",
        components: [
          {
            id: "a",
            version: "2.1",
            files: [
              { source: join(dir, "pkg", "a.sh"), name: "a.sh" },
              { source: join(dir, "pkg", "b.tar"), name: "b.tar" },
            ],
            detect: "sh a.sh",
            absentExitCode: 1,
            install: "sh a.sh install",
            reboot: false,
          },
        ],
      },
      options: {
        concurrency: 32,
        policy: {},
        ports: { workstation: range(60000), callback: range(61000), agent: range(62286) },
        firewall: "auto",
        hostKeyPolicy: "strict",
        netbios: "auto",
        smb: { encrypt: false, runRoot: "/ADMIN$/Temp/sumac" },
        agentCache: false,
        output: { maxBytes: 8 * 1024 * 1024, bytesPerSecond: 64 * 1024, agentLogBytes: 8 * 1024 * 1024 },
      },
    });
  });

  it("job load - defaults apply to remote targets unless a target sets its own", async () => {
    const job = await load(`name: fleet
defaults:
  user: deploy
  auth: { key: { file: keys/deploy }, passphrase: { env: KEY_PASS } }
  become: true
targets:
  - host: 192.0.2.1
    hostKey: SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=
    tags: [web, web, eu]
  - host: web.example.net
    port: 2222
    user: root
    auth: { password: { file: keys/pw } }
    become: false
  - host: "2001:db8::1"
    port: 2200
    auth: { agent: true }
    become: { password: { env: SUDO_PW }, sudoPath: /opt/sudo/bin/sudo }
  - host: 192.0.2.9
    name: win-1
    os: windows
    auth: { password: { env: WIN_PW } }
    become: false
${PACKAGE}`);
    assert.equal(job.name, "fleet");
    assert.deepEqual(job.targets, [
      {
        transport: "ssh",
        id: "192.0.2.1",
        host: "192.0.2.1",
        port: 22,
        os: "linux",
        user: "deploy",
        auth: {
          method: "key",
          key: { kind: "file", path: join(dir, "keys", "deploy") },
          passphrase: { kind: "env", name: "KEY_PASS" },
        },
        become: { method: "sudo" },
        hostKey: "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU",
        tags: ["web", "eu"],
      },
      {
        transport: "ssh",
        id: "web.example.net:2222",
        host: "web.example.net",
        port: 2222,
        os: "linux",
        user: "root",
        auth: { method: "password", password: { kind: "file", path: join(dir, "keys", "pw") } },
        tags: [],
      },
      {
        transport: "ssh",
        id: "[2001:db8::1]:2200",
        host: "2001:db8::1",
        port: 2200,
        os: "linux",
        user: "deploy",
        auth: { method: "agent" },
        become: {
          method: "sudo",
          password: { kind: "env", name: "SUDO_PW" },
          sudoPath: "/opt/sudo/bin/sudo",
        },
        tags: [],
      },
      {
        transport: "smb",
        id: "win-1",
        host: "192.0.2.9",
        port: 445,
        os: "windows",
        user: "deploy",
        domain: "",
        auth: { method: "password", password: { kind: "env", name: "WIN_PW" } },
        tags: [],
      },
    ]);
  });

  it("job load - options become the policy, ports and modes the run uses", async () => {
    const job = await load(`targets: [{ host: local }]
${PACKAGE}      reboot: true
      timeout: 1h30m
      absentExitCode: 3
options:
  concurrency: 4
  retries: 0
  deadlines: { connect: 10s, install: 45 }
  ports: { callback: 41000, strategy: random, window: 50 }
  firewall: none
  hostKeyPolicy: accept-new
  netbios: always
  netbiosServer: 10.0.0.53
  smb: { encrypt: true, runRoot: '\\C$\\ProgramData\\sumac' }
  agentCache: true
  output: { maxBytes: 1048576, rate: 16KiB, agentLog: 1GiB }
`);
    const [component] = job.package.components;
    assert.equal(component?.reboot, true);
    assert.equal(component?.timeoutMs, 90 * 60_000);
    assert.equal(component?.absentExitCode, 3);
    const random = (base: number) => ({ base, strategy: "random", window: 50 });
    assert.deepEqual(job.options, {
      concurrency: 4,
      policy: {
        all: { maxAttempts: 1 },
        steps: { connect: { timeoutMs: 10_000 }, install: { timeoutMs: 45_000 } },
      },
      ports: { workstation: random(60000), callback: random(41000), agent: random(62286) },
      firewall: "none",
      hostKeyPolicy: "accept-new",
      netbios: "always",
      netbiosServer: "10.0.0.53",
      smb: { encrypt: true, runRoot: "/C$/ProgramData/sumac" },
      agentCache: true,
      output: { maxBytes: 1024 * 1024, bytesPerSecond: 16 * 1024, agentLogBytes: 1024 ** 3 },
    });
  });

  it("job load - strategy next is lowest by its other name", async () => {
    const job = await load(`targets: [{ host: local }]\n${PACKAGE}options: { ports: { strategy: next } }\n`);
    assert.equal(job.options.ports.agent.strategy, "lowest");
  });

  it("job load - a few aliases are fine (they are bounded, not banned)", async () => {
    const job = await load(`targets:
  - { host: 192.0.2.1, auth: &login { agent: true } }
  - { host: 192.0.2.2, auth: *login }
${PACKAGE}`);
    assert.deepEqual(
      job.targets.map((t) => t.transport === "ssh" && t.auth),
      [{ method: "agent" }, { method: "agent" }],
    );
  });
});

describe("job secrets", () => {
  it("job secrets - a file secret is its content less one final newline; an env secret its value", async () => {
    assert.equal(await readSecret({ kind: "file", path: join(dir, "keys", "pw") }), "s3cret");
    assert.equal(await readSecret({ kind: "env", name: "PW" }, { PW: "x y" }), "x y");
  });

  it("job secrets - an unset variable or a missing file is SecretUnavailableError naming the reference", async () => {
    await assert.rejects(readSecret({ kind: "env", name: "NOPE" }, {}), (e: unknown) => {
      assert.ok(e instanceof SecretUnavailableError);
      assert.equal(e.code, "SECRET_UNAVAILABLE");
      assert.equal(e.message, "environment variable NOPE is not set");
      return true;
    });
    await assert.rejects(readSecret({ kind: "file", path: join(dir, "none") }), {
      name: "SecretUnavailableError",
      message: `secret file ${join(dir, "none")} cannot be read (ENOENT)`,
    });
  });
});
