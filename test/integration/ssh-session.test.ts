/**
 * The SSH transport against a real OpenSSH server (a linux-target container): logins by key,
 * password and ssh-agent; commands with deadlines, output caps and sudo (with and without a sudo
 * password); pipelined uploads verified by SHA-256 on the target; removal confined to the run root.
 *
 * Logins cost about 0.5 s each here, so each group shares one session.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFile } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { createServer, type AddressInfo } from "node:net";
import { join } from "node:path";
import { promisify } from "node:util";
import { connectSsh, type SshConnectOptions } from "../../actors/ssh/connect.ts";
import type { SshSession } from "../../actors/ssh/session.ts";
import { containerSkipReason, inCI } from "../support/engine.ts";
import { waitUntil } from "../support/container.ts";
import { startLinuxTarget, type LinuxTarget } from "../support/linux-target.ts";

const run = promisify(execFile);
const skip = await containerSkipReason();
const timeoutMs = 15_000;

/** A loopback port nothing listens on (bound, then closed). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer().listen(0, "127.0.0.1", () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
    server.on("error", reject);
  });
}

function sha256(data: Buffer): string {
  return createHash("sha256").update(data).digest("hex");
}

describe("ssh session - against a linux-target", { skip }, () => {
  let target: LinuxTarget;
  let tmp: string;
  const open: SshSession[] = [];

  /** Connects with the container's host key pinned. */
  async function connect(
    extra: Partial<SshConnectOptions> & Pick<SshConnectOptions, "username" | "auth">,
  ): Promise<SshSession> {
    const session = await connectSsh({
      host: target.host,
      port: target.port,
      hostKey: { kind: "pinned", fingerprints: [target.hostKeyFingerprint] },
      timeoutMs,
      ...extra,
    });
    open.push(session);
    return session;
  }

  before(async () => {
    target = await startLinuxTarget();
    tmp = await mkdtemp(join(tmpdir(), "sumac-ssh-"));
  });
  after(async () => {
    await Promise.allSettled(open.map((s) => s.close()));
    await rm(tmp, { recursive: true, force: true });
    await target?.stop();
  });

  describe("logins", () => {
    it("ssh login - a private key from a file logs in and reports the verified host key", async () => {
      const keyPath = join(tmp, "root.key");
      await writeFile(keyPath, target.users.root.privateKey, { mode: 0o600 });
      const s = await connect({ username: "root", auth: { kind: "key-file", path: keyPath } });
      assert.equal(s.hostKeyFingerprint, target.hostKeyFingerprint);
      const r = await s.exec("id -un", { timeoutMs });
      assert.deepEqual([r.exitCode, r.stdout], [0, "root\n"]);
    });

    it("ssh login - a password logs in", async () => {
      const s = await connect({
        username: "root",
        auth: { kind: "password", password: target.users.root.password },
      });
      assert.equal((await s.exec("echo ok", { timeoutMs })).stdout, "ok\n");
    });

    it("ssh login - a key the account does not accept is AUTH_FAILED, not retryable", async () => {
      // (A wrong password behaves the same, but sshd delays its answer by seconds.)
      await assert.rejects(
        connect({
          username: "root",
          auth: { kind: "key", privateKey: target.users.deploy.privateKey, source: "deploy's key" },
        }),
        (e: Error & { code?: string; retryable?: boolean }) =>
          e.code === "AUTH_FAILED" &&
          e.retryable === false &&
          /refused the login of root with private key deploy's key/.test(e.message),
      );
    });

    it("ssh login - through a real ssh-agent holding the key", async (t) => {
      const missing = await run("ssh-agent", ["-h"]).then(
        () => false,
        (e: NodeJS.ErrnoException) => e.code === "ENOENT",
      );
      if (missing) {
        if (inCI()) assert.fail("ssh-agent is not installed (Debian package openssh-client)");
        t.skip("ssh-agent is not installed (Debian package openssh-client)");
        return;
      }
      const socket = join(tmp, "agent.sock");
      const agent = spawn("ssh-agent", ["-D", "-a", socket], { stdio: "ignore" });
      try {
        await waitUntil(
          "ssh-agent socket",
          async () => {
            await run("ssh-add", ["-l"], { env: { SSH_AUTH_SOCK: socket }, timeout: 5_000 }).catch(
              (e: { code?: number }) => {
                if (e.code !== 1) throw e; // 1: the agent answers and holds no key yet
              },
            );
          },
          10_000,
        );
        const keyPath = join(tmp, "agent.key");
        await writeFile(keyPath, target.users.deploy.privateKey, { mode: 0o600 });
        await run("ssh-add", [keyPath], { env: { SSH_AUTH_SOCK: socket }, timeout: 10_000 });
        await rm(keyPath);
        const s = await connect({
          username: "deploy",
          auth: { kind: "agent" },
          env: { SSH_AUTH_SOCK: socket },
        });
        assert.equal((await s.exec("id -un", { timeoutMs })).stdout, "deploy\n");
      } finally {
        agent.kill();
      }
    });

    it("ssh login - a closed port is unreachable and retryable", async () => {
      // A port that was free a moment ago on loopback: nothing listens there.
      const port = await freePort();
      await assert.rejects(
        connectSsh({
          host: "127.0.0.1",
          port,
          username: "root",
          auth: { kind: "key", privateKey: target.users.root.privateKey },
          hostKey: { kind: "pinned", fingerprints: [target.hostKeyFingerprint] },
          timeoutMs,
        }),
        (e: Error & { code?: string; retryable?: boolean }) =>
          e.code === "UNREACHABLE" &&
          e.retryable === true &&
          e.message.includes(`127.0.0.1:${port}`) &&
          /ECONNREFUSED/.test(e.message),
      );
    });
  });

  describe("commands and become", () => {
    let root: SshSession;
    let deploy: SshSession;
    let operator: SshSession;
    before(async () => {
      [root, deploy, operator] = await Promise.all([
        connect({ username: "root", auth: { kind: "key", privateKey: target.users.root.privateKey } }),
        connect({
          username: "deploy",
          auth: { kind: "key", privateKey: target.users.deploy.privateKey },
          become: {},
        }),
        connect({
          username: "operator",
          auth: { kind: "key", privateKey: target.users.operator.privateKey },
          become: { password: target.users.operator.password },
        }),
      ]);
    });

    it("ssh exec - exit code, stdout, stderr and stdin", async () => {
      const r = await root.exec("cat; echo err >&2; exit 3", { stdin: "in\n", timeoutMs });
      assert.deepEqual(r, { exitCode: 3, signal: null, stdout: "in\n", stderr: "err\n" });
    });

    it("ssh become - deploy (sudo without a password) runs as root", async () => {
      const r = await deploy.exec("id -u; cat", { become: true, stdin: "payload\n", timeoutMs });
      assert.deepEqual([r.exitCode, r.stdout, r.stderr], [0, "0\npayload\n", ""]);
    });

    it("ssh become - operator gives its sudo password on stdin; the command's stdin follows intact", async () => {
      const stdin = randomBytes(100_000).toString("base64");
      const r = await operator.exec("id -u >&2; sha256sum | cut -c1-64", { become: true, stdin, timeoutMs });
      assert.equal(r.exitCode, 0);
      assert.equal(r.stderr, "0\n", "sudo's prompt is not part of the command's stderr");
      assert.equal(r.stdout.trim(), sha256(Buffer.from(stdin)));
    });

    it("ssh become - without become the command runs as the login user", async () => {
      assert.equal((await operator.exec("id -un", { timeoutMs })).stdout, "operator\n");
    });

    it("ssh become - a wrong sudo password is BECOME_FAILED and the command never runs", async () => {
      const wrong = await connect({
        username: "operator",
        auth: { kind: "key", privateKey: target.users.operator.privateKey },
        become: { password: "wrong-password" },
      });
      const flag = `/tmp/sumac-become-${randomBytes(4).toString("hex")}`;
      await assert.rejects(
        wrong.exec(`touch ${flag}`, { become: true, timeoutMs }),
        (e: Error & { code?: string }) =>
          e.code === "BECOME_FAILED" && /did not accept the sudo password/.test(e.message),
      );
      assert.equal((await target.exec(`test -e ${flag}; echo $?`)).stdout.trim(), "1");
    });

    it("ssh become - operator without its sudo password configured is BECOME_FAILED", async () => {
      const noPassword = await connect({
        username: "operator",
        auth: { kind: "key", privateKey: target.users.operator.privateKey },
      });
      await assert.rejects(
        noPassword.exec("true", { become: true, timeoutMs }),
        (e: Error & { code?: string }) =>
          e.code === "BECOME_FAILED" && /password is required/.test(e.message),
      );
    });

    it("ssh become - a sudo shim first on the login's PATH never gets the password; root still runs the command", async () => {
      // What an attacker holding the operator account (not its password) would do: a `sudo` of its
      // own first on PATH, set where the login shell reads it, plus a shell function by that name.
      const got = "/tmp/sumac-shim-got";
      const bashrc = "/home/operator/.bashrc";
      // It asks as sudo would (the prompt given with -p), keeps the line it gets, and fails.
      const shim = Buffer.from(
        `#!/bin/sh\nwhile [ $# -gt 0 ]; do [ "$1" = -p ] && printf '%s' "$2" >&2; shift; done\nhead -n 1 >> ${got}\nexit 1\n`,
      ).toString("base64");
      await target.exec(
        [
          `rm -f ${got}; cp ${bashrc} ${bashrc}.orig`,
          "install -d -o operator -g operator /home/operator/bin",
          `echo ${shim} | base64 -d > /home/operator/bin/sudo`,
          "chown operator:operator /home/operator/bin/sudo && chmod 755 /home/operator/bin/sudo",
          `{ echo 'export PATH=/home/operator/bin:$PATH'; echo 'sudo() { cat >> ${got}; }; export -f sudo'; cat ${bashrc}.orig; } > ${bashrc}`,
          `cp ${bashrc} /home/operator/.profile.sumac-test; chown operator:operator ${bashrc}`,
        ].join(" && "),
      );
      try {
        // The shim is live for the login's commands: a plain `sudo` hands it what it reads.
        const plain = await operator.exec("command -v sudo; sudo -S true", {
          stdin: "bait\n",
          timeoutMs,
        });
        assert.equal(plain.stdout, "/home/operator/bin/sudo\n");
        assert.equal((await target.exec(`cat ${got}`)).stdout, "bait\n");
        await target.exec(`rm -f ${got}`);

        const r = await operator.exec("id -u; echo $PATH", { become: true, timeoutMs });
        assert.equal(r.exitCode, 0, r.stderr);
        assert.equal(r.stdout, "0\n/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n");
        const proc = await operator.spawn("id -u", { startTimeoutMs: timeoutMs, become: true });
        proc.stdin.end();
        let out = "";
        proc.stdout.on("data", (c: Buffer) => (out += c.toString()));
        await proc.exited;
        assert.equal(out, "0\n");
        assert.equal(
          (await target.exec(`test -e ${got}; echo $?`)).stdout,
          "1\n",
          "the shim never ran: no password reached it",
        );
      } finally {
        await target.exec(
          `mv ${bashrc}.orig ${bashrc}; rm -rf /home/operator/bin /home/operator/.profile.sumac-test ${got}`,
        );
      }
    });

    it("ssh become - become.sudoPath is used as given; a wrong one is BECOME_FAILED, a relative one CONFIG_INVALID", async () => {
      const base = {
        username: "operator",
        auth: { kind: "key" as const, privateKey: target.users.operator.privateKey },
      };
      const named = await connect({
        ...base,
        become: { password: target.users.operator.password, sudoPath: "/usr/bin/sudo" },
      });
      assert.equal((await named.exec("id -u", { become: true, timeoutMs })).stdout, "0\n");
      const missing = await connect({
        ...base,
        become: { password: target.users.operator.password, sudoPath: "/opt/none/sudo" },
      });
      await assert.rejects(missing.exec("id -u", { become: true, timeoutMs }), { code: "BECOME_FAILED" });
      await assert.rejects(
        connect({ ...base, become: { sudoPath: "sudo" } }),
        (e: Error & { code?: string }) => e.code === "CONFIG_INVALID" && /sudo path "sudo"/.test(e.message),
      );
    });

    it("ssh exec - the deadline stops the remote command (and its children), also through sudo", async () => {
      for (const [session, become] of [
        [root, false],
        [operator, true],
      ] as const) {
        const tag = randomBytes(6).toString("hex");
        await assert.rejects(
          session.exec(`sh -c 'sleep 300; echo ${tag}' & wait`, { timeoutMs: 1_500, become }),
          (e: Error & { code?: string }) =>
            e.code === "TIMEOUT" && /did not finish within 1500 ms/.test(e.message),
        );
        await waitUntil(
          `no process with ${tag} left on the target`,
          async () => {
            const ps = await target.exec(`ps -eo args | grep -F ${tag} | grep -v grep || true`);
            assert.equal(ps.stdout, "");
          },
          15_000,
        );
      }
    });

    it("ssh exec - aborting stops the remote command and rejects with the reason", async () => {
      const tag = randomBytes(6).toString("hex");
      const controller = new AbortController();
      const p = deploy.exec(`sleep 301 # ${tag}`, { timeoutMs, become: true, signal: controller.signal });
      await waitUntil(
        "the command runs",
        async () => {
          assert.match(
            (await target.exec(`ps -eo args | grep -F ${tag} | grep -v grep || true`)).stdout,
            /sleep 301/,
          );
        },
        10_000,
      );
      controller.abort(new Error("cancelled by the test"));
      await assert.rejects(p, /cancelled by the test/);
      await waitUntil(
        `no process with ${tag} left`,
        async () => {
          assert.equal((await target.exec(`ps -eo args | grep -F ${tag} | grep -v grep || true`)).stdout, "");
        },
        15_000,
      );
    });

    it("ssh exec - output past the cap stops the command with OUTPUT_TOO_LARGE", async () => {
      await assert.rejects(
        root.exec("head -c 300000 /dev/zero; sleep 100", { timeoutMs, maxOutputBytes: 100_000 }),
        (e: Error & { code?: string }) =>
          e.code === "OUTPUT_TOO_LARGE" && /more than 100000 bytes on stdout/.test(e.message),
      );
      const r = await root.exec("head -c 100000 /dev/zero", { timeoutMs, maxOutputBytes: 100_000 });
      assert.equal(r.stdout.length, 100_000, "exactly the cap is allowed");
    });

    it("ssh exec - more commands at once than the server's channel limit all run", async () => {
      const results = await Promise.all(
        Array.from({ length: 25 }, (_, i) => root.exec(`sleep 0.2; echo ${i}`, { timeoutMs })),
      );
      assert.deepEqual(
        results.map((r) => r.stdout),
        results.map((_, i) => `${i}\n`),
      );
    });

    it("ssh spawn - a long-running process keeps its stdin and stdout for a dialogue, as root through sudo", async () => {
      const proc = await operator.spawn(`id -u; while read -r line; do echo "got $line"; done`, {
        become: true,
        startTimeoutMs: timeoutMs,
      });
      const lines: string[] = [];
      proc.stdout.setEncoding("utf8");
      const two = new Promise<void>((resolve) => {
        let buf = "";
        proc.stdout.on("data", (d: string) => {
          buf += d;
          if (buf.split("\n").length > 2) {
            lines.push(...buf.trim().split("\n"));
            resolve();
          }
        });
      });
      proc.stdin.write("hello\n");
      await two;
      assert.deepEqual(lines, ["0", "got hello"]);
      proc.stdin.end();
      assert.deepEqual(await proc.exited, { exitCode: 0, signal: null });
    });
  });

  describe("files", () => {
    let deploy: SshSession;
    let hooked: SshSession;
    let corrupt = false;
    const data = randomBytes(1024 * 1024);
    before(async () => {
      [deploy, hooked] = await Promise.all([
        connect({
          username: "deploy",
          auth: { kind: "key", privateKey: target.users.deploy.privateKey },
          become: {},
        }),
        connect({
          username: "root",
          auth: { kind: "key", privateKey: target.users.root.privateKey },
          runRoot: "/var/tmp/sumac-hooked",
          hooks: {
            beforeVerify: async (path) => {
              if (corrupt)
                await target.exec(`printf x | dd of=${path} bs=1 seek=1000 conv=notrunc 2>/dev/null`);
            },
          },
        }),
      ]);
    });

    it("ssh files - with become, root makes the run directory its own and the login an upload spool", async () => {
      const dir = await deploy.createRunDir("run-1");
      assert.equal(dir, "/var/tmp/sumac/run-1");
      const st = await target.exec(
        "stat -c '%U %a' /var/tmp/sumac /var/tmp/sumac/run-1 /var/tmp/sumac/.upload-run-1",
      );
      assert.equal(st.stdout, "root 755\nroot 700\ndeploy 700\n");
      assert.equal(
        await deploy.createRunDir("run-1"),
        dir,
        "creating it again is no error (steps are idempotent)",
      );
    });

    it("ssh files - subdirectories come with the run directory, root's with become, else the login's", async () => {
      const dir = await deploy.createRunDir("run-sub", { subdirs: ["staging", "more"] });
      const st = await target.exec(`stat -c '%n %U %a' ${dir} ${dir}/staging ${dir}/more`);
      assert.equal(st.stdout, `${dir} root 700\n${dir}/staging root 700\n${dir}/more root 700\n`);
      const rootDir = await hooked.createRunDir("run-sub", { subdirs: ["staging"] });
      const rst = await target.exec(`stat -c '%U %a' ${rootDir}/staging`);
      assert.equal(rst.stdout, "root 700\n");
      // Without become the script asks `id -u` itself (test/unit/ssh-run-dir.test.ts checks that no
      // command of its own runs); the uid the session holds is the login's.
      assert.equal(await hooked.uid(), 0);
      await target.exec(`rm -rf ${dir}/more && ln -s /etc ${dir}/more`);
      await assert.rejects(
        deploy.createRunDir("run-sub", { subdirs: ["more"] }),
        (e: Error & { code?: string }) =>
          e.code === "PATH_REFUSED" && /more exists and is not root's directory/.test(e.message),
      );
      await assert.rejects(
        deploy.createRunDir("run-sub", { subdirs: ["../escape"] }),
        /not a safe directory name/,
      );
    });

    it("ssh files - an upload left to a later check: with become still copied and checked by root, else its mode set over SFTP", async () => {
      const dir = await deploy.createRunDir("run-unchecked");
      const put = await deploy.put(data, `${dir}/late.bin`, { mode: 0o640, checkOnTarget: false });
      assert.deepEqual(put, { bytes: data.length, sha256: sha256(data) });
      const seen = await target.exec(`stat -c '%a %U %s' ${dir}/late.bin && sha256sum ${dir}/late.bin`);
      assert.equal(seen.stdout, `640 root 1048576\n${sha256(data)}  ${dir}/late.bin\n`);
      // The hook that corrupts before the target's check never runs: nothing checks on the target.
      const hdir = await hooked.createRunDir("run-unchecked");
      corrupt = true;
      try {
        await hooked.put(data, `${hdir}/late.bin`, { mode: 0o644, checkOnTarget: false });
      } finally {
        corrupt = false;
      }
      await assert.rejects(
        hooked.put(data, `${hdir}/late.bin`, { mode: 0o644, checkOnTarget: false, sha256: "1".repeat(64) }),
        (e: Error & { code?: string }) => e.code === "HASH_MISMATCH",
        "the hash of what was sent is still compared with the one expected",
      );
    });

    it("ssh files - 1 MiB from a Buffer and from a file, verified by SHA-256 on the target, mode set", async () => {
      const dir = await deploy.createRunDir("run-2");
      const localFile = join(tmp, "component.bin");
      await writeFile(localFile, data);
      const [a, b] = await Promise.all([
        deploy.put(data, `${dir}/from-buffer.bin`, { mode: 0o640, sha256: sha256(data) }),
        deploy.put(localFile, `${dir}/from-file.bin`, { mode: 0o755 }),
      ]);
      assert.deepEqual(a, { bytes: data.length, sha256: sha256(data) });
      assert.deepEqual(b, a);
      const seen = await target.exec(
        `cd ${dir} && stat -c '%a %U %s' from-buffer.bin from-file.bin && sha256sum from-file.bin`,
      );
      assert.equal(seen.stdout, `640 root 1048576\n755 root 1048576\n${sha256(data)}  from-file.bin\n`);
    });

    it("ssh files - root runs its own copy of what the login user uploaded", async () => {
      const dir = await deploy.createRunDir("run-3");
      await deploy.put(Buffer.from("#!/bin/sh\nid -u\n"), `${dir}/agent.sh`, { mode: 0o700 });
      const r = await deploy.exec(`${dir}/agent.sh`, { become: true, timeoutMs });
      assert.deepEqual([r.exitCode, r.stdout], [0, "0\n"]);
    });

    it("ssh files - a file changed on the target before the check is HASH_MISMATCH", async () => {
      const dir = await hooked.createRunDir("run-4");
      corrupt = true;
      try {
        await assert.rejects(
          hooked.put(data, `${dir}/bundle.js`, { mode: 0o644 }),
          (e: Error & { code?: string }) =>
            e.code === "HASH_MISMATCH" && e.message.includes(`but ${sha256(data)} was sent (1048576 bytes)`),
        );
      } finally {
        corrupt = false;
      }
      await hooked.put(data, `${dir}/bundle.js`, { mode: 0o644 });
    });

    it("ssh files - content that does not have the expected SHA-256 is HASH_MISMATCH", async () => {
      const dir = await hooked.createRunDir("run-5");
      await assert.rejects(
        hooked.put(data, `${dir}/c.bin`, { mode: 0o644, sha256: "0".repeat(64) }),
        (e: Error & { code?: string }) =>
          e.code === "HASH_MISMATCH" && e.message.includes(`expected ${"0".repeat(64)}`),
      );
    });

    it("ssh files - paths outside the run root are refused and left alone", async () => {
      for (const path of [
        "/etc/hostname",
        "/var/tmp/sumac",
        "/var/tmp/sumac/",
        "/var/tmp/sumac/../x",
        "/var/tmp/sumacx/y",
        "relative/x",
      ]) {
        await assert.rejects(
          deploy.remove(path, { become: true }),
          (e: Error & { code?: string }) =>
            e.code === "PATH_REFUSED" && e.message.includes("not inside the run root /var/tmp/sumac"),
          path,
        );
      }
      await assert.rejects(deploy.put(data, "/tmp/x.bin", { mode: 0o644 }), { code: "PATH_REFUSED" });
      const dir = await deploy.createRunDir("run-6");
      await target.exec(`ln -s /etc ${dir}/etc-link`);
      await assert.rejects(
        deploy.remove(`${dir}/etc-link/hostname`, { become: true }),
        (e: Error & { code?: string }) =>
          e.code === "PATH_REFUSED" && /resolves outside \/var\/tmp\/sumac/.test(e.message),
      );
      assert.equal((await target.exec("test -f /etc/hostname; echo $?")).stdout, "0\n");
    });

    it("ssh files - remove takes a run directory away (as root with become); a missing path is no error", async () => {
      const dir = await deploy.createRunDir("run-7");
      await deploy.put(data, `${dir}/a.bin`, { mode: 0o644 });
      await deploy.exec(`mkdir ${dir}/logs && touch ${dir}/logs/root-owned.log`, { become: true, timeoutMs });
      await deploy.remove(dir, { become: true });
      assert.equal((await target.exec(`test -e ${dir}; echo $?`)).stdout, "1\n");
      await deploy.remove(dir, { become: true });
    });

    it("ssh files - with a sudo password: a file the login swaps after its upload never reaches root's copy", async () => {
      const operator = await connect({
        username: "operator",
        auth: { kind: "key", privateKey: target.users.operator.privateKey },
        become: { password: target.users.operator.password },
        hooks: {
          // Between the upload and root's copy, as the login user: the file is replaced.
          beforeVerify: async (path) => {
            const swap = await target.exec(
              `runuser -u operator -- sh -c 'printf "#!/bin/sh\\necho swapped\\n" > ${path}'`,
            );
            assert.equal(swap.exitCode, 0, swap.stderr);
          },
        },
      });
      const dir = await operator.createRunDir("run-swap", { subdirs: ["staging"] });
      const script = Buffer.from("#!/bin/sh\necho genuine; id -u\n");
      await assert.rejects(
        operator.put(script, `${dir}/staging/install.sh`, { mode: 0o755, checkOnTarget: false }),
        (e: Error & { code?: string }) =>
          e.code === "HASH_MISMATCH" && e.message.includes(`but ${sha256(script)} was sent`),
      );
      assert.equal(
        (await target.exec(`test -e ${dir}/staging/install.sh; echo $?`)).stdout,
        "1\n",
        "nothing in place",
      );
      assert.equal((await target.exec(`ls -A /var/tmp/sumac/.upload-run-swap`)).stdout, "", "upload removed");

      const honest = await connect({
        username: "operator",
        auth: { kind: "key", privateKey: target.users.operator.privateKey },
        become: { password: target.users.operator.password },
      });
      await honest.createRunDir("run-swap", { subdirs: ["staging"] });
      await honest.put(script, `${dir}/staging/install.sh`, { mode: 0o755, checkOnTarget: false });
      const st = await target.exec(`stat -c '%U %a' ${dir} ${dir}/staging ${dir}/staging/install.sh`);
      assert.equal(st.stdout, "root 700\nroot 700\nroot 755\n");
      // After the check the login can neither write it, nor reach it, nor rename anything around it.
      for (const attempt of [
        `printf evil > ${dir}/staging/install.sh`,
        `mv ${dir} /var/tmp/sumac/moved`,
        `ls ${dir}`,
      ]) {
        const r = await target.exec(`runuser -u operator -- sh -c '${attempt}' 2>&1`);
        assert.notEqual(r.exitCode, 0, attempt);
      }
      const r = await honest.exec(`${dir}/staging/install.sh`, { become: true, timeoutMs });
      assert.deepEqual([r.exitCode, r.stdout], [0, "genuine\n0\n"]);
      await honest.remove(dir, { become: true });
      await honest.remove("/var/tmp/sumac/.upload-run-swap", { become: true });
    });

    it("ssh files - with become, a run root the login user owns is refused: root's files must lie in root's directories", async () => {
      const own = await connect({
        username: "operator",
        auth: { kind: "key", privateKey: target.users.operator.privateKey },
        become: { password: target.users.operator.password },
        runRoot: "/var/tmp/sumac-operator",
      });
      await target.exec("install -d -m 0755 -o operator /var/tmp/sumac-operator");
      await assert.rejects(
        own.createRunDir("run-own"),
        (e: Error & { code?: string }) =>
          e.code === "PATH_REFUSED" &&
          /\/var\/tmp\/sumac-operator belongs to uid \d+, not root/.test(e.message),
      );
      assert.equal((await target.exec("test -e /var/tmp/sumac-operator/run-own; echo $?")).stdout, "1\n");
    });

    it("ssh files - a run root writable by others is refused", async () => {
      await target.exec("mkdir -p /var/tmp/sumac-hooked && chmod 0777 /var/tmp/sumac-hooked");
      await assert.rejects(
        hooked.createRunDir("run-8"),
        (e: Error & { code?: string }) =>
          e.code === "PATH_REFUSED" && /writable by group or others \(mode 777\)/.test(e.message),
      );
      assert.equal((await target.exec("test -e /var/tmp/sumac-hooked/run-8; echo $?")).stdout, "1\n");
    });
  });
});
