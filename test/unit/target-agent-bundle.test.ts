/**
 * The run's agent bundle cache (actors/target/agent-bundle.ts): a bundle is reused while the files
 * it was made from are unchanged and it still has its hash, and built again otherwise.
 */
import assert from "node:assert/strict";
import { copyFile, mkdir, mkdtemp, readFile, rm, stat, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { after, before, describe, it } from "node:test";
import { cachedBuild } from "../../actors/target/agent-bundle.ts";

describe("target agent bundle cache", () => {
  let dir: string;
  let entry: string;
  let dep: string;
  let out: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "sumac-bundle-cache-"));
    entry = join(dir, "entry.ts");
    dep = join(dir, "dep.ts");
    out = join(dir, "out");
    await writeFile(entry, 'import { word } from "./dep.ts";\nconsole.log(word);\n');
    await writeFile(dep, 'export const word: string = "first";\n');
    // Older than the build: a file changed while esbuild runs keeps the manifest from being written.
    const past = new Date(Date.now() - 60_000);
    await utimes(entry, past, past);
    await utimes(dep, past, past);
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it("target agent bundle - reused while its inputs are unchanged, rebuilt when one changes", async () => {
    const first = await cachedBuild(out, entry);
    assert.ok(first.inputs?.includes(dep), String(first.inputs));
    const manifest = JSON.parse(await readFile(join(out, "manifest.json"), "utf8")) as { path: string };
    assert.equal(manifest.path, first.path);
    const writtenAt = (await stat(first.path)).mtimeMs;

    const again = await cachedBuild(out, entry);
    assert.deepEqual([again.path, again.sha256, again.bytes], [first.path, first.sha256, first.bytes]);
    assert.equal((await stat(first.path)).mtimeMs, writtenAt, "not written again: no build ran");

    await writeFile(dep, 'export const word: string = "second";\n');
    const past = new Date(Date.now() - 30_000);
    await utimes(dep, past, past);
    const changed = await cachedBuild(out, entry);
    assert.notEqual(changed.sha256, first.sha256);
    assert.match(await readFile(changed.path, "utf8"), /second/);
  });

  it("target agent bundle - a bundle changed on disk or a damaged manifest means a new build", async () => {
    const built = await cachedBuild(out, entry);
    await writeFile(built.path, "tampered");
    const rebuilt = await cachedBuild(out, entry);
    assert.equal(rebuilt.sha256, built.sha256);
    assert.notEqual(await readFile(rebuilt.path, "utf8"), "tampered");

    await writeFile(join(out, "manifest.json"), "{ not json");
    const fromScratch = await cachedBuild(out, entry);
    assert.equal(fromScratch.sha256, built.sha256);
    assert.equal(
      (JSON.parse(await readFile(join(out, "manifest.json"), "utf8")) as { sha256: string }).sha256,
      built.sha256,
      "the manifest is written again",
    );
  });

  it("target agent bundle - a manifest naming a file outside its directory, or under another name, is not followed", async () => {
    const built = await cachedBuild(out, entry);
    const manifestPath = join(out, "manifest.json");
    const manifest = JSON.parse(await readFile(manifestPath, "utf8")) as { path: string };
    const elsewhere = join(dir, "elsewhere");
    await mkdir(elsewhere, { recursive: true });
    for (const path of [join(elsewhere, basename(built.path)), join(out, "agent.js")]) {
      await copyFile(built.path, path);
      await writeFile(manifestPath, JSON.stringify({ ...manifest, path }));
      const taken = await cachedBuild(out, entry);
      assert.equal(taken.path, built.path, `not ${path}`);
      assert.equal(taken.sha256, built.sha256);
      assert.equal(
        (JSON.parse(await readFile(manifestPath, "utf8")) as { path: string }).path,
        built.path,
        "a new build wrote its own manifest",
      );
    }
  });
});
