import assert from "node:assert/strict";
import { chmod, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { describe, it } from "node:test";
import { LocalSession } from "../../actors/local/session.ts";
import { LineReader } from "../../actors/target/line-reader.ts";
import { startAgentCommand } from "../../actors/target/exchange-steps.ts";

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
        (e: Error & { code?: string }) => e.code === "hash-mismatch",
      );
      await assert.rejects(
        local.put(Buffer.from("x"), "/etc/sumac-test", { mode: 0o600 }),
        (e: Error & { code?: string }) => e.code === "path-refused",
      );
      await assert.rejects(
        local.remove(`${runRoot}/../outside`),
        (e: Error & { code?: string }) => e.code === "path-refused",
      );
      const r = await local.exec("cat; echo err >&2; exit 3", { timeoutMs: 5000, stdin: "in" });
      assert.deepEqual(r, { exitCode: 3, signal: null, stdout: "in", stderr: "err\n" });
      await assert.rejects(
        local.exec("sleep 5", { timeoutMs: 100 }),
        (e: Error & { code?: string }) => e.code === "timeout",
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

describe("target steps - agent start command", () => {
  it("target steps - the start command runs the bundle only when its SHA-256 is the one sent", async () => {
    const dir = await mkdtemp(join(tmpdir(), "sumac-start-"));
    try {
      // A stand-in for Node that says what it was asked to run.
      const node = join(dir, "node");
      await writeFile(node, '#!/bin/sh\necho "ran $1"\n');
      await chmod(node, 0o755);
      const bundlePath = join(dir, "agent bundle.js");
      await writeFile(bundlePath, "the bundle");
      const bundleSha256 = createHash("sha256").update("the bundle").digest("hex");
      const run = (sha: string) =>
        spawnSync("/bin/sh", ["-c", startAgentCommand({ nodePath: node, bundlePath, bundleSha256: sha })], {
          encoding: "utf8",
        });
      const good = run(bundleSha256.toUpperCase());
      assert.equal(good.status, 0, good.stderr);
      assert.equal(good.stdout, `ran ${bundlePath}\n`);
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
