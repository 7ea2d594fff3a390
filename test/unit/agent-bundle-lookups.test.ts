/**
 * The agent bundle looks nothing up in the directories above it on a target: no `require` of a
 * module that is not Node's own (Node would search `node_modules` in every parent directory, where
 * a local user could plant one: `/var/tmp/node_modules`, `C:\Windows\Temp\node_modules`), and a
 * `.cjs` name, so that a `package.json` of type module above it changes nothing.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { after, before, describe, it } from "node:test";
import { buildAgent, modulesRequiredAtRuntime } from "../../agent/build.ts";

const RUN = "20250101-000000-000-abcdef";

/** Runs `node <script> <args>` in `cwd` until it exits (at most 20 s); its exit code and output. */
function runNode(script: string, args: string[], cwd: string): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [script, ...args], { cwd, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (out += d.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

describe("agent bundle lookups", () => {
  let tmp: string;
  let bundle: string;
  before(async () => {
    tmp = await mkdtemp(join(tmpdir(), "sumac-lookups-"));
    bundle = (await buildAgent({ outDir: join(tmp, "dist") })).path;
  });
  after(() => rm(tmp, { recursive: true, force: true }));

  it("agent bundle lookups - the bundle requires Node's own modules only, and is a .cjs", async () => {
    assert.deepEqual(modulesRequiredAtRuntime(await readFile(bundle, "utf8")), []);
    assert.match(basename(bundle), /^sumac-agent-[0-9a-f]{16}\.cjs$/);
    // The check itself finds a module that would be searched for.
    assert.deepEqual(
      modulesRequiredAtRuntime('x=require("supports-color");require("node:fs");require("fs")'),
      ["supports-color"],
    );
  });

  it("agent bundle lookups - a node_modules planted above the run directory is not loaded", async () => {
    const runDir = join(tmp, "a", "temp", "sumac", RUN);
    await mkdir(runDir, { recursive: true });
    await copyFile(bundle, join(runDir, "agent.cjs"));
    const planted = join(tmp, "a", "temp", "node_modules", "supports-color");
    await mkdir(planted, { recursive: true });
    await writeFile(
      join(planted, "index.js"),
      `require("fs").writeFileSync(${JSON.stringify(join(tmp, "a", "RAN"))}, "ran"); module.exports = {};`,
    );
    await writeFile(join(runDir, "agent-stop"), "");
    await runNode(join(runDir, "agent.cjs"), [`sumac-run=${RUN}:t1`, "--dialogue=files"], runDir);
    await assert.rejects(readFile(join(tmp, "a", "RAN")), { code: "ENOENT" });
  });

  it("agent bundle lookups - a package.json of type module above it does not stop the agent", async () => {
    const runDir = join(tmp, "b", "temp", "sumac", RUN);
    await mkdir(runDir, { recursive: true });
    await copyFile(bundle, join(runDir, "agent.cjs"));
    await writeFile(join(tmp, "b", "temp", "package.json"), '{"type":"module"}');
    // No configuration: the agent starts, says why it cannot go on, and exits.
    const { code, out } = await runNode(
      join(runDir, "agent.cjs"),
      [`sumac-run=${RUN}:t1`, "--dialogue=files"],
      runDir,
    );
    assert.doesNotMatch(out, /require is not defined in ES module scope/);
    assert.equal(code, 1, out);
    assert.ok((await readdir(runDir)).includes("agent-out.jsonl"), "the agent wrote its failed line");
  });
});
