/**
 * The local transport (`host: local`) with real child processes and files in a temporary
 * directory: the RemoteShell and FileChannel contracts of actors/remote.ts (exit statuses,
 * stdin, deadlines that stop the whole process group, aborts, output caps, become through
 * `sudo -n` or not at all as root) and the run root's path rules.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { chmod, mkdir, mkdtemp, readFile, rm, stat, symlink, writeFile, readdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LocalSession, localRoots } from "../../actors/local/session.ts";

let tmp: string;
let root: string;
let local: LocalSession;
/** A sudo stand-in: refuses (like `sudo -n` needing a password) or runs the command as is. */
let refusingSudo: string;
let permissiveSudo: string;

before(async () => {
  tmp = await mkdtemp(join(tmpdir(), "sumac-local-"));
  root = join(tmp, "root");
  local = new LocalSession(root);
  refusingSudo = join(tmp, "sudo-refuses");
  await writeFile(refusingSudo, "#!/bin/sh\necho 'sudo: a password is required' >&2\nexit 1\n");
  permissiveSudo = join(tmp, "sudo-allows");
  await writeFile(
    permissiveSudo,
    '#!/bin/sh\n[ "$1" = -n ] && [ "$2" = -- ] || exit 9\nshift 2\nexec "$@"\n',
  );
  await chmod(refusingSudo, 0o755);
  await chmod(permissiveSudo, 0o755);
});
after(async () => {
  await local.close();
  await rm(tmp, { recursive: true, force: true });
});

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe("local transport - shell", () => {
  it("local transport - exec gives exit status, stdout, stderr and feeds stdin", async () => {
    const r = await local.exec("read x; echo out-$x; echo err >&2; exit 3", {
      stdin: "in\n",
      timeoutMs: 10_000,
    });
    assert.deepEqual(r, { exitCode: 3, signal: null, stdout: "out-in\n", stderr: "err\n" });
  });

  it("local transport - a deadline stops the command and what it started", async () => {
    const pidFile = join(tmp, "grandchild.pid");
    await assert.rejects(
      local.exec(`sleep 60 & echo $! > ${pidFile}; wait`, { timeoutMs: 300 }),
      (e: Error & { code?: string; retryable?: boolean }) => e.code === "TIMEOUT" && e.retryable === true,
    );
    const pid = Number(await readFile(pidFile, "utf8"));
    // TERM went to the process group: the background sleep ends too (waited for, not timed).
    for (let i = 0; i < 100 && alive(pid); i++) await new Promise((r) => setTimeout(r, 50));
    assert.equal(alive(pid), false, "the background sleep survived the deadline");
  });

  it("local transport - an abort rejects with the signal's reason", async () => {
    const controller = new AbortController();
    const running = local.exec("sleep 60", { timeoutMs: 60_000, signal: controller.signal });
    const reason = new Error("stopped by the test");
    setTimeout(() => controller.abort(reason), 100);
    await assert.rejects(running, (e) => e === reason);
    await assert.rejects(
      local.exec("true", { timeoutMs: 1_000, signal: controller.signal }),
      (e) => e === reason,
    );
  });

  it("local transport - output past the cap stops the command", async () => {
    await assert.rejects(local.exec("yes", { timeoutMs: 10_000, maxOutputBytes: 64 * 1024 }), {
      code: "OUTPUT_TOO_LARGE",
    });
  });

  it("local transport - become as root runs the command as it is", async () => {
    const asRoot = new LocalSession(root, { isRoot: true, sudo: refusingSudo });
    const r = await asRoot.exec("echo fine", { timeoutMs: 10_000, become: true });
    assert.equal(r.stdout, "fine\n");
  });

  it("local transport - become as a user goes through sudo -n and keeps sudo's words apart", async () => {
    const user = new LocalSession(root, { isRoot: false, sudo: permissiveSudo });
    const r = await user.exec("echo out; echo err >&2; exit 4", { timeoutMs: 10_000, become: true });
    assert.deepEqual(r, { exitCode: 4, signal: null, stdout: "out\n", stderr: "err\n" });
    const p = await user.spawn("read x; echo got-$x; echo e >&2", { startTimeoutMs: 10_000, become: true });
    p.stdin.end("line\n");
    const chunks: Buffer[] = [];
    const errs: Buffer[] = [];
    p.stdout.on("data", (c: Buffer) => chunks.push(c));
    p.stderr.on("data", (c: Buffer) => errs.push(c));
    assert.deepEqual(await p.exited, { exitCode: 0, signal: null });
    assert.equal(Buffer.concat(chunks).toString(), "got-line\n");
    assert.equal(Buffer.concat(errs).toString(), "e\n");
  });

  it("local transport - sudo refusing is BECOME_FAILED with sudo's reason", async () => {
    const user = new LocalSession(root, { isRoot: false, sudo: refusingSudo });
    await assert.rejects(
      user.exec("echo never", { timeoutMs: 10_000, become: true }),
      (e: Error & { code?: string }) => {
        assert.equal(e.code, "BECOME_FAILED");
        assert.match(e.message, /a password is required/);
        return true;
      },
    );
    await assert.rejects(user.spawn("echo never", { startTimeoutMs: 10_000, become: true }), {
      code: "BECOME_FAILED",
    });
    const missing = new LocalSession(root, { isRoot: false, sudo: join(tmp, "no-sudo-here") });
    await assert.rejects(missing.exec("true", { timeoutMs: 10_000, become: true }), {
      code: "BECOME_FAILED",
    });
  });

  it("local transport - a closed session runs nothing and stopped its processes", async () => {
    const s = new LocalSession(root);
    const p = await s.spawn("sleep 60", { startTimeoutMs: 10_000 });
    await s.close();
    assert.deepEqual(await p.exited, { exitCode: null, signal: "TERM" });
    await assert.rejects(s.exec("true", { timeoutMs: 1_000 }), { code: "COMMAND_FAILED" });
  });
});

describe("local transport - files", () => {
  const sha = (b: Buffer | string) => createHash("sha256").update(b).digest("hex");

  it("local transport - the run directory is made private, and again without error", async () => {
    const dir = await local.createRunDir("run-1");
    assert.equal(dir, join(root, "run-1"));
    assert.equal((await stat(dir)).mode & 0o777, 0o700);
    assert.equal((await stat(root)).mode & 0o777, 0o755);
    assert.equal(await local.createRunDir("run-1"), dir);
    await assert.rejects(local.createRunDir("../escape"), { code: "PATH_REFUSED" });
    await assert.rejects(local.createRunDir(".hidden"), { code: "PATH_REFUSED" });
  });

  it("local transport - an unsafe run root is refused", async () => {
    const open = join(tmp, "open-root");
    await mkdir(open, { mode: 0o777 });
    await chmod(open, 0o777);
    await assert.rejects(new LocalSession(open).createRunDir("r"), { code: "PATH_REFUSED" });
    const link = join(tmp, "link-root");
    await symlink(root, link);
    await assert.rejects(new LocalSession(link).createRunDir("r"), { code: "PATH_REFUSED" });
    assert.throws(() => new LocalSession("relative/root"), { code: "PATH_REFUSED" });
    assert.throws(() => new LocalSession("/"), { code: "PATH_REFUSED" });
  });

  it("local transport - put writes the mode asked and checks the hash", async () => {
    const dir = await local.createRunDir("run-put");
    const content = Buffer.from("agent bundle\n");
    const r = await local.put(content, `${dir}/agent.js`, { mode: 0o644, sha256: sha(content) });
    assert.deepEqual(r, { bytes: content.byteLength, sha256: sha(content) });
    assert.equal((await stat(`${dir}/agent.js`)).mode & 0o777, 0o644);
    const source = join(tmp, "source.bin");
    await writeFile(source, Buffer.alloc(300_000, 7));
    await local.put(source, `${dir}/big.bin`, { mode: 0o600 });
    assert.deepEqual(await readFile(`${dir}/big.bin`), await readFile(source));
  });

  it("local transport - a wrong hash leaves no file behind", async () => {
    const dir = await local.createRunDir("run-hash");
    await assert.rejects(local.put(Buffer.from("x"), `${dir}/f`, { mode: 0o600, sha256: "0".repeat(64) }), {
      code: "HASH_MISMATCH",
    });
    assert.deepEqual(await readdir(dir), []);
    await assert.rejects(local.put(join(tmp, "absent"), `${dir}/g`, { mode: 0o600 }), {
      code: "UPLOAD_FAILED",
    });
    assert.deepEqual(await readdir(dir), []);
  });

  it("local transport - paths outside the run root are refused before anything is touched", async () => {
    const outside = join(tmp, "outside");
    await writeFile(outside, "keep");
    await assert.rejects(local.put(Buffer.from("x"), outside, { mode: 0o600 }), { code: "PATH_REFUSED" });
    await assert.rejects(local.remove(outside), { code: "PATH_REFUSED" });
    await assert.rejects(local.remove(`${root}/../outside`), { code: "PATH_REFUSED" });
    await assert.rejects(local.mkdir(root), { code: "PATH_REFUSED" });
    assert.equal(await readFile(outside, "utf8"), "keep");
  });

  it("local transport - remove is idempotent and will not follow a link out of the root", async () => {
    const dir = await local.createRunDir("run-rm");
    await local.mkdir(`${dir}/staging/deep`);
    await local.remove(dir);
    await local.remove(dir);
    await assert.rejects(stat(dir), { code: "ENOENT" });
    const victim = join(tmp, "victim");
    await mkdir(victim);
    await writeFile(join(victim, "file"), "keep");
    await symlink(victim, join(root, "escape"));
    await assert.rejects(local.remove(`${root}/escape/file`), { code: "PATH_REFUSED" });
    assert.equal(await readFile(join(victim, "file"), "utf8"), "keep");
  });

  it("local transport - remove with become as a user goes through sudo", async () => {
    const user = new LocalSession(root, { isRoot: false, sudo: permissiveSudo });
    const dir = await user.createRunDir("run-become");
    await user.put(Buffer.from("x"), `${dir}/f`, { mode: 0o600 });
    await user.remove(dir, { become: true });
    await assert.rejects(stat(dir), { code: "ENOENT" });
    const refused = new LocalSession(root, { isRoot: false, sudo: refusingSudo });
    const again = await refused.createRunDir("run-become");
    await assert.rejects(refused.remove(again, { become: true }), { code: "BECOME_FAILED" });
  });
});

describe("local transport - roots", () => {
  it("local transport - root uses the system's directories, a user their state directory", () => {
    assert.deepEqual(localRoots({}, true), { runRoot: "/var/tmp/sumac", logRoot: "/var/log/sumac" });
    assert.deepEqual(localRoots({ XDG_STATE_HOME: "/home/u/.state", HOME: "/home/u" }, false), {
      runRoot: "/home/u/.state/sumac/targets",
      logRoot: "/home/u/.state/sumac/target-logs",
    });
    assert.deepEqual(localRoots({ HOME: "/home/u" }, false), {
      runRoot: "/home/u/.local/state/sumac/targets",
      logRoot: "/home/u/.local/state/sumac/target-logs",
    });
  });
});
