import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { JobFileError, loadJob, type JobProblem } from "../../run/job/load.ts";

let dir = "";

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "sumac-job-errors-"));
  await writeFile(join(dir, "hello.sh"), "echo 1.0.0\n");
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

const PACKAGE = `package:
  components:
    - id: hello
      version: "1.0.0"
      files: [hello.sh]
      detect: sh hello.sh
      install: sh hello.sh
`;

/** The problems of loading `text` as `name` in the test directory; fails when it loads. */
async function problems(text: string, name = "job.yaml"): Promise<JobProblem[]> {
  const file = join(dir, name);
  await writeFile(file, text);
  const error = await loadJob(file).then(
    () => assert.fail("the job loaded"),
    (e: unknown) => e,
  );
  assert.ok(error instanceof JobFileError, String(error));
  assert.equal(error.code, "BAD_JOB");
  assert.equal(error.retryable, false);
  return [...error.problems];
}

/** One problem, checked whole: place, path, message, expected. */
function only(list: JobProblem[]): Omit<JobProblem, "file"> {
  assert.equal(list.length, 1, list.map((p) => `${p.line}:${p.column} ${p.message}`).join("\n"));
  const { file, ...rest } = list[0] as JobProblem;
  assert.equal(file, join(dir, "job.yaml"));
  return rest;
}

describe("job file errors", () => {
  it("job errors - a sudo path that is not absolute and plain is refused at its place", async () => {
    for (const bad of ["sudo", "/usr/../bin/sudo", "/usr/bin/sudo; id"]) {
      const text = `targets:\n  - host: web-1\n    user: deploy\n    auth: { agent: true }\n    become: { sudoPath: "${bad}" }\n${PACKAGE}`;
      assert.deepEqual(only(await problems(text)), {
        line: 5,
        column: 25,
        path: "targets[0].become.sudoPath",
        message: `${JSON.stringify(bad)} is not a valid sudo path`,
        expected: "an absolute path such as /usr/bin/sudo (letters, digits, . _ + -; no . or .. segments)",
      });
    }
  });

  it("job errors - a missing field points at the mapping that lacks it", async () => {
    const text = `targets:\n  - host: local\npackage:\n  components:\n    - id: hello\n      version: "1"\n      detect: x\n`;
    assert.deepEqual(only(await problems(text)), {
      line: 5,
      column: 7,
      path: "package.components[0]",
      message: 'missing field "install"',
      expected: "a command of 1 to 8192 characters",
    });
  });

  it("job errors - a wrong type names what was found, as written", async () => {
    const text = `targets:\n  - host: local\n${PACKAGE}options:\n  concurrency: "32"\n`;
    assert.deepEqual(only(await problems(text)), {
      line: 11,
      column: 16,
      path: "options.concurrency",
      message: 'wrong type: got the string "32"',
      expected: "an integer from 1 to 10000",
    });
  });

  it("job errors - an unquoted version is a number, and the message says to quote it", async () => {
    const text = PACKAGE.replace('"1.0.0"', "1.10") + "targets: [{ host: local }]\n";
    assert.deepEqual(only(await problems(text)), {
      line: 4,
      column: 16,
      path: "package.components[0].version",
      message: "wrong type: got the number 1.10; put it in quotes to make it a string",
      expected: 'a version string such as "1.2.0", of letters, digits and . _ + ~ -',
    });
  });

  it("job errors - an unknown key points at the key, with a did-you-mean when it is close", async () => {
    const text = `targets:\n  - host: 192.0.2.1\n    auth: { agent: true }\n    hots: x\n${PACKAGE}`;
    assert.deepEqual(only(await problems(text)), {
      line: 4,
      column: 5,
      path: "targets[0].hots",
      message: 'unknown key "hots"; did you mean "host"?',
      expected: "one of host, name, port, os, user, domain, auth, become, hostKey, tags",
    });
  });

  it("job errors - an unknown key far from every known one gets no guess", async () => {
    const text = `targets: [{ host: local }]\n${PACKAGE}colour: blue\n`;
    assert.deepEqual(only(await problems(text)), {
      line: 9,
      column: 1,
      path: "colour",
      message: 'unknown key "colour"',
      expected: "one of name, defaults, targets, package, options",
    });
  });

  it("job errors - a port out of range", async () => {
    const text = `targets:\n  - host: 192.0.2.1\n    port: 70000\n    auth: { agent: true }\n${PACKAGE}`;
    assert.deepEqual(only(await problems(text)), {
      line: 3,
      column: 11,
      path: "targets[0].port",
      message: "70000 is not a valid port",
      expected: "an integer from 1 to 65535",
    });
  });

  it("job errors - a NetBIOS mode or WINS server that cannot be used is refused at its place", async () => {
    const mode = `targets: [{ host: local }]\n${PACKAGE}options:\n  netbios: sometimes\n`;
    const [modeProblem] = await problems(mode);
    assert.equal(modeProblem?.path, "options.netbios");
    assert.equal(modeProblem?.line, 10);
    assert.match(modeProblem?.expected ?? "", /"auto", "always", "never"|auto.*always.*never/);
    const server = `targets: [{ host: local }]\n${PACKAGE}options:\n  netbiosServer: wins.example.net\n`;
    assert.deepEqual(only(await problems(server)), {
      line: 10,
      column: 18,
      path: "options.netbiosServer",
      message: '"wins.example.net" is not a valid NetBIOS name server',
      expected: "an IPv4 address such as 10.0.0.53",
    });
  });

  it("job errors - a host with _ inside is accepted (a NetBIOS name); one with other punctuation is not", async () => {
    const ok = `targets:\n  - host: WIN_SRV01\n    os: windows\n    user: Administrator\n    auth: { password: { env: SUMAC_TEST_PW } }\n${PACKAGE}`;
    const okFile = join(dir, "netbios-host.yaml");
    await writeFile(okFile, ok);
    const job = await loadJob(okFile);
    assert.equal(job.targets[0]?.host, "WIN_SRV01");
    const bad = `targets:\n  - host: "WIN SRV!"\n    os: windows\n    user: Administrator\n    auth: { password: { env: SUMAC_TEST_PW } }\n${PACKAGE}`;
    assert.equal(only(await problems(bad)).path, "targets[0].host");
  });

  it("job errors - a Windows run root that climbs or names no directory is refused at its place", async () => {
    for (const root of ["/ADMIN$/Temp/../../x", "/ADMIN$", "C:/Windows/Temp", "/ADMIN$/Temp/sumac."]) {
      const text = `targets: [{ host: local }]\n${PACKAGE}options:\n  smb: { runRoot: "${root}" }\n`;
      const problem = only(await problems(text));
      assert.equal(problem.path, "options.smb.runRoot", root);
      assert.equal(problem.line, 10, root);
      assert.match(problem.expected ?? "", /\/SHARE\/directory/, root);
    }
  });

  it("job errors - an output size too small or written wrong says what a size is", async () => {
    for (const [value, column] of [
      ["1KiB", 23],
      ["8 megs", 23],
    ] as const) {
      const text = `targets: [{ host: local }]\n${PACKAGE}options:\n  output: { agentLog: ${value} }\n`;
      const problem = only(await problems(text));
      assert.equal(problem.path, "options.output.agentLog");
      assert.equal(problem.column, column);
      assert.equal(
        problem.expected,
        "a number of bytes or a size such as 512KiB or 8MiB, from 64KiB to 1024MiB",
      );
    }
  });

  it("job errors - a component file that does not exist points at its path", async () => {
    const text = `targets: [{ host: local }]\n${PACKAGE.replace("[hello.sh]", "[hello.sh, nope.sh]")}`;
    assert.deepEqual(only(await problems(text)), {
      line: 6,
      column: 25,
      path: "package.components[0].files[1]",
      message: `file "nope.sh" does not exist (looked at ${join(dir, "nope.sh")})`,
      expected: "a path relative to the job file's directory",
    });
  });

  it("job errors - a directory is not a component file", async () => {
    const text = `targets: [{ host: local }]\n${PACKAGE.replace("[hello.sh]", "[.]")}`;
    assert.deepEqual(only(await problems(text)), {
      line: 6,
      column: 15,
      path: "package.components[0].files[0]",
      message: 'file "." is not a regular file',
      expected: "a file, not a directory",
    });
  });

  it("job errors - a duplicate target is reported at the second one", async () => {
    const text = `defaults:\n  auth: { agent: true }\ntargets:\n  - host: 192.0.2.1\n  - host: 192.0.2.2\n  - host: 192.0.2.1\n${PACKAGE}`;
    assert.deepEqual(only(await problems(text)), {
      line: 6,
      column: 11,
      path: "targets[2].host",
      message: 'duplicate target "192.0.2.1" (the first is at line 4, column 5)',
      expected: "a unique target id; give one of them a name",
    });
  });

  it("job errors - the same host on another port is another target, and names must differ too", async () => {
    const text = `defaults:\n  auth: { agent: true }\ntargets:\n  - host: 192.0.2.1\n  - { host: 192.0.2.1, port: 2222 }\n  - { host: 192.0.2.3, name: "192.0.2.1:2222" }\n${PACKAGE}`;
    const p = only(await problems(text));
    assert.deepEqual([p.line, p.column, p.path], [6, 30, "targets[2].name"]);
    assert.equal(p.message, 'duplicate target "192.0.2.1:2222" (the first is at line 5, column 5)');
  });

  it("job errors - a second local target is refused: both would use this machine's run directory", async () => {
    const text = `targets:\n  - host: local\n  - { host: local, name: again }\n${PACKAGE}`;
    assert.deepEqual(only(await problems(text)), {
      line: 3,
      column: 13,
      path: "targets[1].host",
      message:
        "a second local target (the first is at line 2, column 5): they would share this machine's run directory",
      expected: "at most one target with host: local",
    });
  });

  it("job errors - a YAML syntax error has its own position", async () => {
    const text = `targets: [{ host: local }\n${PACKAGE}`;
    const p = only(await problems(text));
    assert.deepEqual([p.line, p.column, p.path], [2, 1, ""]);
    assert.match(p.message, /^YAML syntax: /);
  });

  it("job errors - a duplicate key is refused, not silently overwritten", async () => {
    const text = `targets: [{ host: local }]\n${PACKAGE}targets: [{ host: 192.0.2.9 }]\n`;
    assert.deepEqual(only(await problems(text)), {
      line: 9,
      column: 1,
      path: "",
      message: "duplicate key: this key is already set in the same mapping",
      expected: "each key once",
    });
  });

  it("job errors - an inline secret is refused without being echoed", async () => {
    const text = `targets:\n  - host: 192.0.2.1\n    auth:\n      password: hunter2\n${PACKAGE}`;
    const list = await problems(text);
    assert.deepEqual(only(list), {
      line: 4,
      column: 17,
      path: "targets[0].auth.password",
      message: "secrets are never written in the job file",
      expected: "{ env: NAME } or { file: path }",
    });
    const error = new JobFileError(list);
    assert.ok(!error.format().includes("hunter2") && !error.message.includes("hunter2"));
    assert.equal(error.cause, undefined);
  });

  it("job errors - a secret typed where a variable name goes is not echoed either", async () => {
    const text = `targets:\n  - host: 192.0.2.1\n    auth:\n      password: { env: "hunter 2" }\n${PACKAGE}`;
    assert.deepEqual(only(await problems(text)), {
      line: 4,
      column: 24,
      path: "targets[0].auth.password.env",
      message: "this is not a valid environment variable name",
      expected: "an environment variable name such as ROOT_PASSWORD",
    });
  });

  it("job errors - a secret reference needs exactly one of file and env", async () => {
    const text = `targets:\n  - host: 192.0.2.1\n    auth:\n      password: { env: PW, file: pw.txt }\n${PACKAGE}`;
    assert.deepEqual(only(await problems(text)), {
      line: 4,
      column: 17,
      path: "targets[0].auth.password",
      message: 'needs exactly one of "file" and "env"',
      expected: "{ env: NAME } or { file: path }",
    });
  });

  it("job errors - a missing secret file is reported where defaults name it, once for all targets", async () => {
    const text = `defaults:\n  auth:\n    key: { file: keys/none }\ntargets:\n  - host: 192.0.2.1\n  - host: 192.0.2.2\n${PACKAGE}`;
    const p = only(await problems(text));
    assert.deepEqual([p.line, p.column, p.path], [3, 18, "defaults.auth.key.file"]);
    assert.equal(p.message, `secret file "keys/none" does not exist (looked at ${join(dir, "keys/none")})`);
  });

  it("job errors - a remote target needs a login method", async () => {
    const text = `targets:\n  - host: 192.0.2.1\n${PACKAGE}`;
    assert.deepEqual(only(await problems(text)), {
      line: 2,
      column: 5,
      path: "targets[0]",
      message: 'missing field "auth" (set it here or under defaults)',
      expected: "{ key: ... }, { agent: true } or { password: ... }",
    });
  });

  it("job errors - two login methods at once are refused", async () => {
    const text = `targets:\n  - host: 192.0.2.1\n    auth: { agent: true, password: { env: PW } }\n${PACKAGE}`;
    assert.deepEqual(only(await problems(text)), {
      line: 3,
      column: 11,
      path: "targets[0].auth",
      message: "more than one login method (agent, password)",
      expected: "exactly one of key, agent, password",
    });
  });

  it("job errors - a bad host key fingerprint", async () => {
    const text = `targets:\n  - host: 192.0.2.1\n    auth: { agent: true }\n    hostKey: SHA256:not-a-fingerprint\n${PACKAGE}`;
    assert.deepEqual(only(await problems(text)), {
      line: 4,
      column: 14,
      path: "targets[0].hostKey",
      message: '"SHA256:not-a-fingerprint" is not a valid host key fingerprint',
      expected: "SHA256: followed by 43 base64 characters, as `ssh-keygen -lf` prints it",
    });
  });

  it("job errors - a fingerprint of the wrong length or with a bad last character is refused", async () => {
    for (const fp of [
      "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuF",
      "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFV",
    ]) {
      const text = `targets:\n  - host: 192.0.2.1\n    auth: { agent: true }\n    hostKey: ${fp}\n${PACKAGE}`;
      assert.equal(only(await problems(text)).message, `"${fp}" is not a valid host key fingerprint`);
    }
  });

  it("job errors - a file larger than the limit is refused before parsing", async () => {
    const text = `targets: [{ host: local }]\n${PACKAGE}# ${"x".repeat(1024 * 1024)}\n`;
    assert.deepEqual(only(await problems(text)), {
      line: 1,
      column: 1,
      path: "",
      message: `the job file is ${Buffer.byteLength(text)} bytes, too large`,
      expected: "a job file of at most 1048576 bytes",
    });
  });

  it("job errors - a job file that does not exist", async () => {
    const file = join(dir, "absent.yaml");
    const error = await loadJob(file).catch((e: unknown) => e);
    assert.ok(error instanceof JobFileError);
    assert.equal(error.format(), `${file}:1:1: the job file does not exist (expected a path to a job file)`);
  });

  it("job errors - an empty file, and a document that is not a mapping", async () => {
    assert.equal(only(await problems("# nothing\n")).message, "the job file is empty");
    assert.deepEqual(only(await problems("- host: local\n")), {
      line: 1,
      column: 1,
      path: "",
      message: "wrong type: got a list",
      expected: "a mapping with targets and package",
    });
  });

  it("job errors - an alias bomb is stopped at the first alias", async () => {
    let text = `targets: [{ host: local }]\n${PACKAGE}x:\n  a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\n`;
    for (const [n, prev] of [
      ["b", "a"],
      ["c", "b"],
      ["d", "c"],
    ])
      text += `  ${n}: &${n} [${Array(10).fill(`*${prev}`).join(", ")}]\n`;
    assert.deepEqual(only(await problems(text)), {
      line: 11,
      column: 10,
      path: "",
      message: "the aliases expand too many times",
      expected: "at most 100 alias expansions",
    });
  });

  it("job errors - a local target takes no login fields", async () => {
    const text = `targets:\n  - host: local\n    user: root\n${PACKAGE}`;
    assert.deepEqual(only(await problems(text)), {
      line: 3,
      column: 5,
      path: "targets[0].user",
      message: "a local target (host: local) takes no user",
      expected: "only host, name, tags",
    });
  });

  it("job errors - a windows target logs in with a password only", async () => {
    const text = `targets:\n  - host: 192.0.2.1\n    os: windows\n    auth: { agent: true }\n${PACKAGE}`;
    const p = only(await problems(text));
    assert.deepEqual(
      [p.line, p.column, p.message],
      [4, 11, "windows targets log in with a password (NTLM), not agent"],
    );
  });

  it("job errors - an enum value names its choices", async () => {
    const text = `targets: [{ host: local }]\n${PACKAGE}options:\n  firewall: iptables\n`;
    assert.deepEqual(only(await problems(text)), {
      line: 10,
      column: 13,
      path: "options.firewall",
      message: '"iptables" is not a valid firewall',
      expected: 'one of "auto", "nftables", "netsh", "none"',
    });
  });

  it("job errors - a bad duration is reported once", async () => {
    const text = `targets: [{ host: local }]\n${PACKAGE}      timeout: 10x\n`;
    assert.deepEqual(only(await problems(text)), {
      line: 9,
      column: 16,
      path: "package.components[0].timeout",
      message: '"10x" is not a valid duration',
      expected: "a number of seconds or a duration such as 90s, 10m or 1h30m, up to 7d",
    });
  });

  it("job errors - duplicate component ids and clashing staged names", async () => {
    const text = `targets: [{ host: local }]\n${PACKAGE}    - { id: hello, version: "2", files: [./hello.sh], detect: a, install: b }\n`;
    const list = await problems(text);
    assert.deepEqual(
      list.map((p) => [p.line, p.column, p.message]),
      [
        [9, 13, 'duplicate component id "hello" (first at line 4)'],
        [9, 42, 'another file is also staged as "hello.sh" (line 6)'],
      ],
    );
  });

  it("job errors - every problem is reported, in file order, formatted as a compiler does", async () => {
    const text = `targets:\n  - host: 192.0.2.1\n    port: 0\n    auth: { agent: true }\n    tags: [ok, "no good"]\n${PACKAGE}options: { concurrency: 0 }\n`;
    const list = await problems(text);
    const f = join(dir, "job.yaml");
    assert.equal(
      new JobFileError(list).format(),
      [
        `${f}:3:11: targets[0].port: 0 is not a valid port (expected an integer from 1 to 65535)`,
        `${f}:5:16: targets[0].tags[1]: "no good" is not a valid tag (expected 1 to 64 of A-Z a-z 0-9 . _ -, starting with a letter or digit)`,
        `${f}:13:25: options.concurrency: 0 is not a valid concurrency (expected an integer from 1 to 10000)`,
      ].join("\n"),
    );
  });
});
