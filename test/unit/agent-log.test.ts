import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { lifecycleReserve, openAgentLog, outputShare } from "../../agent/server/agent-log.ts";

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

  it("agent log - 10,000 refusals are summarised and leave the lifecycle lines written after them", async () => {
    const max = 64 * 1024;
    let clock = Date.parse("2026-01-01T00:00:00Z");
    const log = openAgentLog({ dir, targetId: "refused", maxBytes: max, now: () => new Date(clock) });
    for (let i = 0; i < 10_000; i++) {
      // 10,000 refusals over 100 s: ten intervals of 10 s.
      clock += 10;
      log.reject(`rejected TLS_CLIENT from 203.0.113.7:${40000 + (i % 20000)}: ${"z".repeat(300)}`);
    }
    log.write("info", "install app: exit 0 in 5 ms");
    log.write("info", "firewall: rule removed");
    log.write("info", "stopped: Shutdown; the log stays at here");
    const text = await readFile(log.path, "utf8");
    const lines = text.trimEnd().split("\n");
    const refusals = lines.filter((l) => l.includes("rejected TLS_CLIENT"));
    const summaries = lines.filter((l) =>
      /\d[\d,]* more refusals not written in the last \d+ s \(last: rejected TLS_CLIENT/.test(l),
    );
    // 5 as they come and one summary per interval, not 10,000 lines.
    assert.ok(summaries.length >= 9 && summaries.length <= 11, `${summaries.length} summaries`);
    // Each summary's line names the last refusal too: the rest are written as they came, 5 per
    // interval (one interval more than there are summaries, the last one unsummarised).
    const written = refusals.length - summaries.length;
    assert.ok(written <= 5 * (summaries.length + 1), `${written} refusals written as they came`);
    const counted = summaries.reduce(
      (n, l) => n + Number(/(\d[\d,]*) more/.exec(l)![1]!.replace(/,/g, "")),
      0,
    );
    assert.equal(counted + refusals.length - summaries.length, 10_000);
    assert.deepEqual(
      lines.slice(-3).map((l) => l.replace(/^\S+ /, "")),
      [
        "info install app: exit 0 in 5 ms",
        "info firewall: rule removed",
        "info stopped: Shutdown; the log stays at here",
      ],
    );
  });

  it("agent log - refusals never take the reserve of the agent's own lines, even at one interval each", async () => {
    const max = 64 * 1024;
    const log = openAgentLog({ dir, targetId: "reserve", maxBytes: max, rejectionBurst: 10_000 });
    for (let i = 0; i < 10_000; i++)
      log.reject(`rejected UNKNOWN_WORKSTATION from 10.0.0.9:${i}: ${"w".repeat(200)}`);
    for (let i = 0; i < 10_000; i++) log.output(`install app stdout: ${"x".repeat(100)}`);
    const before = (await stat(log.path)).size;
    assert.ok(before <= max - lifecycleReserve(max) + 1024, `${before} bytes before the lifecycle lines`);
    log.write("info", "install app: started");
    log.write("info", "install app: exit 0 in 5 ms");
    log.write("info", "stopping: Shutdown");
    log.write("info", "stopped: Shutdown");
    const text = await readFile(log.path, "utf8");
    assert.equal(text.match(/refusals cut here at \d+ bytes \(log cap 65536\)/g)?.length, 1);
    assert.match(
      text,
      /install app: started\n.*install app: exit 0 in 5 ms\n.*stopping: Shutdown\n.*stopped: Shutdown\n$/,
    );
    assert.doesNotMatch(text, /log full/);
    assert.ok((await stat(log.path)).size <= max);
  });
});
