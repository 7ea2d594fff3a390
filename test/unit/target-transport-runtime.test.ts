/**
 * Finding Node on a target and the runtime pushed where there is none: version parsing,
 * `uname -sm` against this Node's platform, the probe run by a real /bin/sh over fake Node
 * binaries, and the compressed runtime made once and then reused from the workstation's cache.
 */
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { inCI } from "../support/engine.ts";
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { chmod, mkdir, mkdtemp, readFile, rm, stat, symlink, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import {
  compressRuntime,
  parseNodeVersion,
  parseProbe,
  platformOfUname,
  probeCommand,
  runtimeFits,
  runtimeOnce,
} from "../../actors/target/posix/runtime.ts";

describe("target transport runtime - node versions", () => {
  it("target transport runtime - reads node --version output", () => {
    assert.deepEqual(parseNodeVersion("v18.19.0\n"), { major: 18, minor: 19, patch: 0 });
    assert.deepEqual(parseNodeVersion("v24.11.1"), { major: 24, minor: 11, patch: 1 });
    assert.deepEqual(parseNodeVersion("v20.0.0-nightly2023"), { major: 20, minor: 0, patch: 0 });
  });

  it("target transport runtime - refuses what is not a version", () => {
    for (const text of ["", "18.19.0", "vX.1.2", "v18", "node v18.1.0", "v18.1.0 extra"])
      assert.equal(parseNodeVersion(text), undefined, text);
  });
});

describe("target transport runtime - platforms", () => {
  it("target transport runtime - maps uname -sm to Node's platform and arch", () => {
    assert.deepEqual(platformOfUname("Linux x86_64"), { platform: "linux", arch: "x64" });
    assert.deepEqual(platformOfUname("Linux aarch64\n"), { platform: "linux", arch: "arm64" });
    assert.deepEqual(platformOfUname("Darwin arm64"), { platform: "darwin", arch: "arm64" });
    assert.deepEqual(platformOfUname("FreeBSD amd64"), { platform: "freebsd", arch: "x64" });
    assert.equal(platformOfUname("Linux mips"), undefined);
    assert.equal(platformOfUname("SunOS i86pc"), undefined);
    assert.equal(platformOfUname(""), undefined);
  });

  it("target transport runtime - a runtime fits only the same OS and architecture", () => {
    assert.equal(runtimeFits("Linux x86_64", "linux", "x64"), true);
    assert.equal(runtimeFits("Linux aarch64", "linux", "x64"), false);
    assert.equal(runtimeFits("Darwin x86_64", "linux", "x64"), false);
    assert.equal(runtimeFits("garbage", "linux", "x64"), false);
  });
});

describe("target transport runtime - probe", () => {
  let tmp: string;
  before(async () => {
    tmp = await mkdtemp(join(tmpdir(), "sumac-probe-"));
  });
  after(() => rm(tmp, { recursive: true, force: true }));

  async function fakeNode(name: string, version: string): Promise<string> {
    const path = join(tmp, name);
    await writeFile(path, `#!/bin/sh\necho ${version}\n`);
    await chmod(path, 0o755);
    return path;
  }

  it("target transport runtime - parses found nodes, uname, gzip and cache hits", () => {
    const facts = parseProbe(
      [
        "node v12.22.12 /usr/bin/nodejs",
        "node none /opt/broken",
        "node v20.11.0 /usr/local/bin/node",
        "node v22.1.0 /usr/bin/node",
        "uname Linux x86_64",
        "gzip yes",
        "cached /var/tmp/sumac/cache/abc/agent.js",
      ].join("\n"),
    );
    assert.deepEqual(facts.node, { path: "/usr/local/bin/node", version: "v20.11.0" });
    assert.deepEqual(facts.rejected, ["/usr/bin/nodejs (v12.22.12)", "/opt/broken (no version)"]);
    assert.equal(facts.uname, "Linux x86_64");
    assert.equal(facts.gzip, true);
    assert.deepEqual([...facts.cached], ["/var/tmp/sumac/cache/abc/agent.js"]);
  });

  it("target transport runtime - the probe skips old nodes and checks cached files by SHA-256", async () => {
    const old = await fakeNode("old-node", "v16.20.2");
    const good = await fakeNode("good node", "v18.20.4");
    const hit = join(tmp, "hit.js");
    const miss = join(tmp, "miss.js");
    await writeFile(hit, "one");
    await writeFile(miss, "two");
    const sha = createHash("sha256").update("one").digest("hex");
    const out = execFileSync(
      "/bin/sh",
      [
        "-c",
        probeCommand(
          [old, good],
          [
            [hit, sha],
            [miss, sha],
            [join(tmp, "absent"), sha],
          ],
        ),
      ],
      { encoding: "utf8", env: { PATH: "/usr/bin:/bin" } },
    );
    const facts = parseProbe(out);
    assert.deepEqual(facts.node, { path: good, version: "v18.20.4" });
    assert.ok(facts.rejected.includes(`${old} (v16.20.2)`), out);
    assert.match(facts.uname, /^Linux /);
    assert.deepEqual([...facts.cached], [hit]);
  });
  it("target transport runtime - the probe reports the address the target sees this host at", () => {
    const env = (extra: Record<string, string>) => ({ PATH: "/usr/bin:/bin", ...extra });
    const probe = (extra: Record<string, string>) =>
      parseProbe(execFileSync("/bin/sh", ["-c", probeCommand()], { encoding: "utf8", env: env(extra) }));
    assert.equal(probe({ SSH_CLIENT: "203.0.113.9 51234 22" }).seenAs, "203.0.113.9");
    assert.equal(probe({ SSH_CLIENT: "2001:db8::7 51234 22" }).seenAs, "2001:db8::7");
    assert.equal(probe({}).seenAs, undefined, "not over SSH (local mode)");
    assert.equal(parseProbe("ssh_client ::ffff:10.1.2.3\n").seenAs, "10.1.2.3");
    assert.equal(parseProbe("ssh_client not-an-address\n").seenAs, undefined);
    assert.equal(parseProbe("ssh_client 10.0.0.1 10.0.0.2\n").seenAs, undefined);
  });

  it("target transport runtime - the probe asks each binary once and none after the first recent one", async () => {
    // Each fake node notes every time it is asked for its version.
    const calls = join(tmp, "calls.log");
    const counted = async (name: string, version: string): Promise<string> => {
      const path = join(tmp, name);
      await writeFile(path, `#!/bin/sh\necho ${name} >> '${calls}'\necho ${version}\n`);
      await chmod(path, 0o755);
      return path;
    };
    const old = await counted("counted-old", "v16.20.2");
    const good = await counted("counted-good", "v22.1.0");
    const later = await counted("counted-later", "v24.0.0");
    const alias = join(tmp, "good-alias");
    await symlink(good, alias);
    const out = execFileSync("/bin/sh", ["-c", probeCommand([old, old, alias, good, later])], {
      encoding: "utf8",
      env: { PATH: "/usr/bin:/bin" },
    });
    const facts = parseProbe(out);
    assert.deepEqual(facts.node, { path: alias, version: "v22.1.0" });
    assert.deepEqual(facts.rejected, [`${old} (v16.20.2)`]);
    assert.deepEqual((await readFile(calls, "utf8")).trim().split("\n"), ["counted-old", "counted-good"]);
    assert.equal(facts.gzip, true, out);
  });

  it("target transport runtime - run as root, only a Node that root owns, in directories no one else can write, is taken", async (t) => {
    if (process.getuid?.() !== 0) {
      // CI runs as root (.ci/run installs packages); elsewhere a user may run the suite.
      if (inCI()) assert.fail("needs files owned by root: CI runs the tests as root");
      return t.skip("needs files owned by root");
    }
    const open = join(tmp, "group-writable");
    const closed = join(tmp, "roots");
    for (const [dir, mode] of [
      [open, 0o775],
      [closed, 0o755],
    ] as const) {
      await mkdir(dir, { recursive: true });
      await chmod(dir, mode);
      await writeFile(join(dir, "node"), "#!/bin/sh\necho v22.1.0\n");
      await chmod(join(dir, "node"), 0o755);
    }
    // The temporary directory itself must not be writable by others either (sticky /tmp is fine).
    await chmod(tmp, 0o700);
    const probe = (nodes: string[]) =>
      parseProbe(
        execFileSync("/bin/sh", ["-c", probeCommand(nodes, [], true)], {
          encoding: "utf8",
          env: { PATH: "/usr/bin:/bin" },
        }),
      );
    const facts = probe([join(open, "node"), join(closed, "node")]);
    assert.deepEqual(facts.node, { path: join(closed, "node"), version: "v22.1.0" });
    assert.deepEqual(facts.rejected, [`${join(open, "node")} (not root's own)`]);
    // Found through a link, it is given as the binary itself (a link could be repointed later).
    await symlink(join(closed, "node"), join(open, "node-link"));
    assert.deepEqual(probe([join(open, "node-link")]).node, {
      path: join(closed, "node"),
      version: "v22.1.0",
    });
    await chmod(join(closed, "node"), 0o775);
    assert.notEqual(probe([join(closed, "node")]).node?.path, join(closed, "node"), "a group-writable file");
  });
});

describe("target transport runtime - compressed runtime", () => {
  let tmp: string;
  let binary: string;
  before(async () => {
    tmp = await mkdtemp(join(tmpdir(), "sumac-runtime-"));
    binary = join(tmp, "fake-node");
    await writeFile(binary, Buffer.alloc(256 * 1024, "node binary "));
  });
  after(() => rm(tmp, { recursive: true, force: true }));

  it("target transport runtime - gzips the binary once and names it by its hash", async () => {
    const cache = join(tmp, "cache");
    const first = await compressRuntime(cache, binary);
    const content = await readFile(binary);
    assert.equal(first.sha256, createHash("sha256").update(content).digest("hex"));
    assert.equal(first.gzPath, join(cache, `${first.sha256}.gz`));
    assert.deepEqual(gunzipSync(await readFile(first.gzPath)), content);
    assert.equal(first.bytes, content.byteLength);
    assert.equal(first.platform, process.platform);
    const before = await stat(first.gzPath);
    const again = await compressRuntime(cache, binary);
    assert.deepEqual(again, first);
    const after = await stat(first.gzPath);
    assert.equal(after.ino, before.ino);
    assert.equal(after.mtimeMs, before.mtimeMs);
  });

  it("target transport runtime - the binary's hash is remembered while the file is unchanged", async () => {
    const cache = join(tmp, "cache-memo");
    const first = await compressRuntime(cache, binary);
    const memoPath = join(cache, "binary.json");
    const memo = JSON.parse(await readFile(memoPath, "utf8")) as { path: string; sha256: string };
    assert.deepEqual([memo.path, memo.sha256], [binary, first.sha256]);
    assert.equal((await stat(memoPath)).mode & 0o777, 0o600);
    // A remembered hash is taken as it is: proof that the binary was not read again.
    const planted = "ab".repeat(32);
    await writeFile(memoPath, JSON.stringify({ ...memo, sha256: planted }));
    assert.equal((await compressRuntime(cache, binary)).sha256, planted);
    // Any change to the file (here its times) and it is hashed again.
    const later = new Date(Date.now() + 5_000);
    await utimes(binary, later, later);
    assert.equal((await compressRuntime(cache, binary)).sha256, first.sha256);
    // A damaged memo is no worse than none.
    await writeFile(memoPath, "{ not json");
    assert.equal((await compressRuntime(cache, binary)).sha256, first.sha256);
  });

  it("target transport runtime - a damaged cached file is made again", async () => {
    const cache = join(tmp, "cache2");
    const first = await compressRuntime(cache, binary);
    await writeFile(first.gzPath, "damaged");
    const again = await compressRuntime(cache, binary);
    assert.deepEqual(gunzipSync(await readFile(again.gzPath)), await readFile(binary));
  });

  it("target transport runtime - runtimeOnce compresses once per run, retries after a failure", async () => {
    const cache = join(tmp, "cache3");
    const later = join(tmp, "later-node");
    const once = runtimeOnce(cache, later);
    await assert.rejects(once(), { code: "ENOENT" });
    await writeFile(later, "a runtime that appeared");
    const [a, b] = await Promise.all([once(), once()]);
    assert.equal(a, b);
  });
});
