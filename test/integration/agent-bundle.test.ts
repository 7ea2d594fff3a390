/**
 * The agent bundler against its key risk: `soap` 1.x declares Node >= 20.19, the targets run
 * Debian 12's Node 18. A probe entry (soap server and client over TLS 1.3 with ECDSA P-256
 * certificates from agent/client/credentials.ts) is bundled, then run here and in a linux-target-node
 * container, copied there over SFTP as the push channel would.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { execFile } from "node:child_process";
import { isBuiltin } from "node:module";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { buildAgent, type BuiltAgent } from "../../agent/build.ts";
import { containerSkipReason } from "../support/engine.ts";
import { startLinuxTarget, type LinuxTarget } from "../support/linux-target.ts";
import { sftpPut, sshLogin } from "../support/ssh.ts";

const run = promisify(execFile);
const probeEntry = fileURLToPath(new URL("../fixtures/agent-probe.ts", import.meta.url));

/** Uploads `local` to `remote` over SFTP as root, pinning the container's host key. */
async function upload(target: LinuxTarget, local: string, remote: string): Promise<void> {
  const ssh = await sshLogin(target);
  try {
    await sftpPut(ssh, local, remote);
  } finally {
    ssh.end();
  }
}

describe("agent bundle", () => {
  let outDir: string;
  let built: BuiltAgent;

  before(async () => {
    outDir = await mkdtemp(join(tmpdir(), "sumac-agent-bundle-"));
    built = await buildAgent({ entry: probeEntry, outDir, soapClient: true });
  });
  after(() => rm(outDir, { recursive: true, force: true }));

  it("agent bundle - is one file named by the first 16 hex digits of its SHA-256", async () => {
    assert.deepEqual(await readdir(outDir), [basename(built.path)]);
    const bytes = await readFile(built.path);
    const sha256 = createHash("sha256").update(bytes).digest("hex");
    assert.equal(built.sha256, sha256);
    assert.equal(built.bytes, bytes.byteLength);
    assert.equal(basename(built.path), `sumac-agent-${sha256.slice(0, 16)}.cjs`);
    // Self-contained: it requires Node's built-ins and only optional packages, which `debug` tries
    // inside try/catch (supports-color: colours on a terminal).
    const text = bytes.toString("utf8");
    const required = [...text.matchAll(/require\("([^"]+)"\)/g)].map((m) => m[1] ?? "");
    const optional = ["supports-color"];
    assert.deepEqual(
      required.filter((name) => !isBuiltin(name) && !optional.includes(name)),
      [],
    );
    assert.ok(!text.includes("import.meta"));
  });

  it("agent bundle - the same entry builds to the same name", async () => {
    const again = await buildAgent({ entry: probeEntry, outDir, soapClient: true });
    assert.equal(again.path, built.path);
    assert.equal(again.sha256, built.sha256);
  });

  it("agent bundle - the probe answers a SOAP call over TLS 1.3 on this machine's Node", async () => {
    const { stdout } = await run(process.execPath, [built.path], { timeout: 30_000 });
    assert.match(stdout, /^OK .*"tls":"TLSv1\.3 /m);
  });

  it("agent bundle - by default soap's client transport is left out, and using it says so", async () => {
    const dir = await mkdtemp(join(tmpdir(), "sumac-agent-bundle-server-"));
    try {
      const server = await buildAgent({ entry: probeEntry, outDir: dir });
      assert.ok(
        built.bytes - server.bytes > 300 * 1024,
        `${built.bytes} bytes with the client transport, ${server.bytes} without`,
      );
      const text = await readFile(server.path, "utf8");
      assert.ok(!text.includes("application/vnd.openxmlformats"), "mime-db is not in the bundle");
      // The probe also calls itself as a SOAP client: that is where the bundle without it fails.
      const failed = await run(process.execPath, [server.path], { timeout: 30_000 }).then(
        () => assert.fail("the probe's client call should fail without axios"),
        (error: { stdout?: string }) => error.stdout ?? "",
      );
      assert.match(failed, /^FAIL .*axios is left out of the agent bundle \(agent\/build\.ts\)/m);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  describe("agent bundle - on a target", async () => {
    const skip = await containerSkipReason();
    let target: LinuxTarget | undefined;

    before(async () => {
      if (skip === undefined) target = await startLinuxTarget({ withNode: true });
    });
    after(() => target?.stop());

    it(
      "agent bundle - the probe answers a SOAP call over TLS 1.3 under Debian's Node 18",
      { skip },
      async () => {
        assert.ok(target);
        const remote = `/tmp/${basename(built.path)}`;
        await upload(target, built.path, remote);
        const version = await target.exec("node --version");
        assert.match(version.stdout, /^v18\./);
        const outcome = await target.exec(`node ${remote}`, 60_000);
        assert.equal(outcome.exitCode, 0, `${outcome.stdout}\n${outcome.stderr}`);
        assert.match(outcome.stdout, /^OK .*"tls":"TLSv1\.3 .*"node":"v18\./m);
      },
    );
  });
});
