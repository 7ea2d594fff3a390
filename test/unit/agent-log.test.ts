import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { openAgentLog, outputShare } from "../../agent/server/agent-log.ts";

let dir: string;
before(async () => (dir = await mkdtemp(join(tmpdir(), "sumac-agent-log-"))));
after(() => rm(dir, { recursive: true, force: true }));

describe("agent log", () => {
  it("agent log - output past its share is counted, not written, with one marker; the agent's own lines still go in", async () => {
    const max = 64 * 1024;
    const log = openAgentLog({ dir, targetId: "flood", maxBytes: max });
    for (let i = 0; i < 10_000; i++) log.output(`install app stdout: ${"x".repeat(100)} ${i}`);
    log.write("info", "install app: exit 0 in 5 ms");
    const text = await readFile(log.path, "utf8");
    assert.ok((await stat(log.path)).size <= outputShare(max) + 1024, `${(await stat(log.path)).size} bytes`);
    assert.equal(text.match(/output cut here at \d+ bytes \(log cap 65536\)/g)?.length, 1);
    assert.match(text, /install app: exit 0 in 5 ms\n$/);
    assert.ok(log.dropped.lines > 9000, `${log.dropped.lines} lines dropped`);
    assert.ok(log.dropped.bytes > log.dropped.lines * 100);
  });

  it("agent log - the file never passes its cap: one last line says it is full", async () => {
    const max = 16 * 1024;
    const log = openAgentLog({ dir, targetId: "chatty", maxBytes: max });
    for (let i = 0; i < 1000; i++) log.write("warn", `rejected something ${"y".repeat(200)}`);
    const text = await readFile(log.path, "utf8");
    assert.ok((await stat(log.path)).size <= max, `${(await stat(log.path)).size} bytes`);
    assert.equal(text.match(/log full at \d+ bytes \(cap 16384\): later lines are not written/g)?.length, 1);
  });

  it("agent log - an agent started again appends to the same file, which counts toward the cap", async () => {
    const max = 32 * 1024;
    const first = openAgentLog({ dir, targetId: "again", maxBytes: max });
    for (let i = 0; i < 1000; i++) first.output(`line ${"z".repeat(100)}`);
    const second = openAgentLog({ dir, targetId: "again", maxBytes: max });
    for (let i = 0; i < 1000; i++) second.output(`line ${"z".repeat(100)}`);
    assert.ok((await stat(first.path)).size <= max);
    assert.ok(second.dropped.lines >= 999, `${second.dropped.lines}`);
  });

  it("agent log - control characters of a command's output are escaped in the file", async () => {
    const log = openAgentLog({ dir, targetId: "escapes" });
    log.output("install app stdout: \x1b]52;c;aGk=\x07\u009b1A\u202e");
    assert.match(await readFile(log.path, "utf8"), /stdout: \\x1b\]52;c;aGk=\\x07\\u009b1A\\u202e\n/);
  });
});
