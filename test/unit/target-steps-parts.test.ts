import assert from "node:assert/strict";
import { chmod, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { existsSync } from "node:fs";
import { createHash } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { describe, it } from "node:test";
import { LocalSession } from "../../actors/local/session.ts";
import { LineReader, MAX_WAITING_LINES } from "../../actors/target/posix/line-reader.ts";
import { startAgentCommand, stopAgentCommand } from "../../actors/target/posix/agent-process.ts";

describe("target steps - line reader", () => {
  it("target steps - lines come one at a time, split across chunks", async () => {
    const stream = new PassThrough();
    const reader = new LineReader(stream);
    stream.write('{"a":');
    stream.write('1}\n{"b":2}\n');
    assert.equal(await reader.next("first", 1000), '{"a":1}');
    assert.equal(await reader.next("second", 1000), '{"b":2}');
  });

  it("target steps - a line over the limit, an ended stream and a deadline are errors that say so", async () => {
    const long = new PassThrough();
    const reader = new LineReader(long, 16);
    long.write("x".repeat(40));
    await assert.rejects(reader.next("the key", 1000), /more than 16 bytes/);
    const ended = new PassThrough();
    const early = new LineReader(ended);
    ended.end("partial");
    await assert.rejects(early.next("the listening line", 1000), /ended before the listening line/);
    const silent = new LineReader(new PassThrough());
    await assert.rejects(silent.next("its public key", 50), /no its public key within 50 ms/);
  });

  it("target steps - a target that floods lines before they are read is cut off, not kept; once drained, it is not", async () => {
    const flood = new PassThrough();
    const reader = new LineReader(flood);
    flood.write("\n".repeat(MAX_WAITING_LINES + 1));
    await assert.rejects(reader.next("its public key", 1000), /more than 64 lines before they were read/);
    assert.ok(flood.destroyed, "the stream is closed");
    const chatty = new PassThrough();
    const drained = new LineReader(chatty);
    const seen: string[] = [];
    drained.drain((line) => seen.push(line));
    chatty.write("line\n".repeat(MAX_WAITING_LINES * 2));
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(seen.length, MAX_WAITING_LINES * 2);
    assert.ok(!chatty.destroyed);
  });
});

describe("target steps - local session", () => {
  it("target steps - exec, put with its hash, path refusal, remove", async () => {
    const root = await mkdtemp(join(tmpdir(), "sumac-local-"));
    const runRoot = join(root, "runs");
    const local = new LocalSession(runRoot);
    try {
      const run = await local.createRunDir("r1");
      assert.equal(run, join(runRoot, "r1"));
      assert.equal((await stat(run)).mode & 0o777, 0o700);
      const put = await local.put(Buffer.from("hello\n"), `${run}/f.txt`, { mode: 0o640 });
      assert.equal(put.sha256, "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03");
      assert.equal(await readFile(`${run}/f.txt`, "utf8"), "hello\n");
      await assert.rejects(
        local.put(Buffer.from("x"), `${run}/g.txt`, { mode: 0o600, sha256: "0".repeat(64) }),
        (e: Error & { code?: string }) => e.code === "HASH_MISMATCH",
      );
      await assert.rejects(
        local.put(Buffer.from("x"), "/etc/sumac-test", { mode: 0o600 }),
        (e: Error & { code?: string }) => e.code === "PATH_REFUSED",
      );
      await assert.rejects(
        local.remove(`${runRoot}/../outside`),
        (e: Error & { code?: string }) => e.code === "PATH_REFUSED",
      );
      const r = await local.exec("cat; echo err >&2; exit 3", { timeoutMs: 5000, stdin: "in" });
      assert.deepEqual(r, { exitCode: 3, signal: null, stdout: "in", stderr: "err\n" });
      await assert.rejects(
        local.exec("sleep 5", { timeoutMs: 100 }),
        (e: Error & { code?: string }) => e.code === "TIMEOUT",
      );
      await local.remove(run);
      await assert.rejects(stat(run), /ENOENT/);
      await local.remove(run);
    } finally {
      await local.close();
      await rm(root, { recursive: true, force: true });
    }
  });

  it("target steps - a spawned process keeps a dialogue on stdin and stdout", async () => {
    const local = new LocalSession("/var/tmp/sumac-unit");
    const child = await local.spawn('read line; echo "got $line"', { startTimeoutMs: 5000 });
    child.stdin.write("ping\n");
    const reader = new LineReader(child.stdout);
    assert.equal(await reader.next("the answer", 5000), "got ping");
    assert.deepEqual(await child.exited, { exitCode: 0, signal: null });
  });
});

describe("target steps - agent stop command", () => {
  /** Starts `node script marker` as the start command would exec it; resolves once it runs. */
  async function agentLike(node: string, script: string, marker: string) {
    const child = spawn(node, [script, marker], { stdio: ["ignore", "pipe", "ignore"] });
    await once(child.stdout, "data");
    return child;
  }
  const gone = (child: ChildProcess) =>
    child.exitCode !== null || child.signalCode !== null
      ? Promise.resolve()
      : once(child, "exit").then(() => undefined);

  it("target steps - the stop command stops the run's agent only, by TERM, and says so", async () => {
    const dir = await mkdtemp(join(tmpdir(), "sumac-stop-"));
    const children: ChildProcess[] = [];
    try {
      // Stops on TERM as the agent does (removing a file, as the agent removes its own).
      const script = join(dir, "agent bundle.js");
      await writeFile(
        script,
        'process.on("SIGTERM", () => { require("fs").rmSync(process.argv[2] === "sumac-run=r1:t1" ? __dirname + "/mine" : __dirname + "/other"); process.exit(0); }); console.log("up"); setInterval(() => {}, 1000);',
      );
      await writeFile(join(dir, "mine"), "");
      await writeFile(join(dir, "other"), "");
      const mine = await agentLike(process.execPath, script, "sumac-run=r1:t1");
      // The same bundle for another run (a shared cache): left alone.
      const other = await agentLike(process.execPath, script, "sumac-run=r2:t1");
      // A shell whose own command line holds the same words: left alone.
      const lookalike = spawn("/bin/sh", ["-c", `sleep 30 # ${process.execPath} ${script} sumac-run=r1:t1`]);
      children.push(mine, other, lookalike);
      const pushed = { nodePath: process.execPath, bundlePath: script };
      const run = (marker: string, grace?: number) =>
        spawnSync("/bin/sh", ["-c", stopAgentCommand(pushed, marker, grace)], { encoding: "utf8" });

      const first = run("sumac-run=r1:t1");
      assert.equal(first.status, 0, first.stderr);
      assert.equal(first.stdout, "stopped\n");
      await gone(mine);
      assert.equal(mine.signalCode ?? mine.exitCode, 0, "it ended by its own TERM handler");
      assert.equal(existsSync(join(dir, "mine")), false);
      assert.equal(existsSync(join(dir, "other")), true, "the other run's agent was not stopped");
      assert.equal(other.exitCode, null);
      assert.equal(lookalike.exitCode, null);
      assert.equal(run("sumac-run=r1:t1").stdout, "none\n", "again: nothing to stop");
    } finally {
      for (const c of children) c.kill("SIGKILL");
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("target steps - an agent that ignores TERM is killed after the grace period", async () => {
    const dir = await mkdtemp(join(tmpdir(), "sumac-stop-"));
    const script = join(dir, "stubborn.js");
    await writeFile(
      script,
      'process.on("SIGTERM", () => {}); console.log("up"); setInterval(() => {}, 1000);',
    );
    const child = await agentLike(process.execPath, script, "sumac-run=r1:t1");
    try {
      const out = spawnSync(
        "/bin/sh",
        ["-c", stopAgentCommand({ nodePath: process.execPath, bundlePath: script }, "sumac-run=r1:t1", 0.4)],
        { encoding: "utf8" },
      );
      assert.equal(out.stdout, "killed\n", out.stderr);
      await gone(child);
      assert.equal(child.signalCode, "SIGKILL");
    } finally {
      child.kill("SIGKILL");
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("target steps - agent start command", () => {
  it("target steps - the start command runs the bundle only when its SHA-256 is the one sent", async () => {
    const dir = await mkdtemp(join(tmpdir(), "sumac-start-"));
    try {
      // A stand-in for Node that says what it was asked to run.
      const node = join(dir, "node");
      await writeFile(node, '#!/bin/sh\necho "ran $1 with $2"\n');
      await chmod(node, 0o755);
      const bundlePath = join(dir, "agent bundle.js");
      await writeFile(bundlePath, "the bundle");
      const bundleSha256 = createHash("sha256").update("the bundle").digest("hex");
      const run = (sha: string) =>
        spawnSync(
          "/bin/sh",
          ["-c", startAgentCommand({ nodePath: node, bundlePath, bundleSha256: sha }, "sumac-run=r1:t 1")],
          {
            encoding: "utf8",
          },
        );
      const good = run(bundleSha256.toUpperCase());
      assert.equal(good.status, 0, good.stderr);
      assert.equal(good.stdout, `ran ${bundlePath} with sumac-run=r1:t 1\n`);
      await writeFile(bundlePath, "the bundle, changed on the target");
      const bad = run(bundleSha256);
      assert.equal(bad.status, 97);
      assert.equal(bad.stdout, "");
      assert.equal(bad.stderr, `sumac: ${bundlePath} is not the agent bundle that was sent\n`);
      await rm(bundlePath);
      assert.equal(run(bundleSha256).status, 97, "a missing bundle is refused too");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
