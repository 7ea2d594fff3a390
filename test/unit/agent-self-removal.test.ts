/**
 * The agent's self-removal (agent/server/self-removal.ts) when a listed file cannot be removed, as
 * on Windows a running node.exe cannot: said, the rest still removed, never thrown.
 */
import assert from "node:assert/strict";
import { access, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import type { AgentLog, LogLevel } from "../../agent/server/agent-log.ts";
import { removeAgentFiles } from "../../agent/server/self-removal.ts";

function recordingLog(dir: string): AgentLog & { lines: string[] } {
  const lines: string[] = [];
  return {
    lines,
    path: join(dir, "log", "t1.log"),
    dir: join(dir, "log"),
    dropped: { lines: 0, bytes: 0 },
    write: (level: LogLevel, message: string) => void lines.push(`${level} ${message}`),
    output: (message: string) => void lines.push(`output ${message}`),
    reject: (message: string) => void lines.push(`reject ${message}`),
  };
}

describe("agent self-removal", () => {
  const roots: string[] = [];
  after(async () => {
    for (const root of roots) await rm(root, { recursive: true, force: true });
  });

  it("agent self-removal - a file that cannot be removed is reported, the others still go, and nothing throws", async () => {
    const root = await mkdtemp(join(tmpdir(), "sumac-removal-"));
    roots.push(root);
    await writeFile(join(root, "agent.js"), "x");
    await writeFile(join(root, "plain-file"), "x");
    await mkdir(join(root, "staging"));
    const log = recordingLog(root);
    // Under a regular file: rm fails with ENOTDIR, as a file in use fails with EBUSY on Windows.
    const stuck = join(root, "plain-file", "node.exe");
    const removed = await removeAgentFiles([join(root, "agent.js"), stuck, join(root, "staging")], log);
    assert.equal(removed, false);
    await assert.rejects(access(join(root, "agent.js")), { code: "ENOENT" });
    await assert.rejects(access(join(root, "staging")), { code: "ENOENT" });
    assert.equal(log.lines.filter((l) => l.startsWith("error removal: could not remove")).length, 1);
    assert.match(log.lines.join("\n"), new RegExp(`could not remove ${stuck}: ENOTDIR`));
  });
});
