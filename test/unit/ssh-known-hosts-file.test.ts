import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { appendFile, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import ssh2 from "ssh2";
import { KnownHostsFile } from "../../actors/ssh/known-hosts-file.ts";
import { checkHostKey, parseKnownHosts } from "../../actors/ssh/known-hosts.ts";

const run = promisify(execFile);
const moduleUrl = new URL("../../actors/ssh/known-hosts-file.ts", import.meta.url).href;

function blob(): Buffer {
  return Buffer.from(ssh2.utils.generateKeyPairSync("ed25519").public.split(" ")[1] ?? "", "base64");
}

describe("known_hosts file", () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "sumac-kh-"));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("known_hosts file - a missing file reads as empty; the first append creates it with mode 0600", async () => {
    const path = join(dir, "sub", "known_hosts");
    const file = new KnownHostsFile({ path });
    assert.deepEqual((await file.read()).entries, []);
    assert.deepEqual(await file.append("web-01", blob()), { kind: "added" });
    assert.equal((await stat(path)).mode & 0o777, 0o600);
    assert.equal((await file.read()).entries.length, 1);
  });

  it("known_hosts file - 200 concurrent appends for 20 names give one line each; a different key is a conflict", async () => {
    const path = join(dir, "concurrent");
    await writeFile(path, "# no newline at the end");
    const file = new KnownHostsFile({ path, hashNewEntries: false });
    const keys = Array.from({ length: 20 }, blob);
    const outcomes = await Promise.all(
      Array.from({ length: 200 }, (_, i) => file.append(`host-${i % 20}`, keys[i % 20] as Buffer)),
    );
    assert.equal(outcomes.filter((o) => o.kind === "added").length, 20);
    assert.equal(outcomes.filter((o) => o.kind === "present").length, 180);
    const text = await readFile(path, "utf8");
    assert.ok(text.startsWith("# no newline at the end\nhost-"));
    const parsed = parseKnownHosts(text);
    assert.deepEqual(parsed.warnings, []);
    assert.equal(parsed.entries.length, 20);
    const conflict = await file.append("host-3", blob());
    assert.equal(conflict.kind, "conflict");
    assert.equal(conflict.kind === "conflict" ? conflict.status.kind : "", "changed");
  });

  it("known_hosts file - a line another process added is seen on the next read (cache follows the file)", async () => {
    const path = join(dir, "external");
    const file = new KnownHostsFile({ path });
    const key = blob();
    assert.equal(checkHostKey((await file.read()).entries, "db-01", key).kind, "unknown");
    await appendFile(path, `db-01 ssh-ed25519 ${key.toString("base64")}\n`);
    assert.equal(checkHostKey((await file.read()).entries, "db-01", key).kind, "known");
    assert.deepEqual(await file.append("db-01", key), { kind: "present" });
  });

  it("known_hosts file - two processes appending at once never interleave lines", async () => {
    const path = join(dir, "two-processes");
    const child = (prefix: string): Promise<unknown> =>
      run(
        process.execPath,
        [
          "--input-type=module",
          "-e",
          `import { KnownHostsFile } from ${JSON.stringify(moduleUrl)};
           import ssh2 from "ssh2";
           const f = new KnownHostsFile({ path: ${JSON.stringify(path)} });
           const key = Buffer.from(ssh2.utils.generateKeyPairSync("ed25519").public.split(" ")[1], "base64");
           await Promise.all(Array.from({ length: 150 }, (_, i) => f.append("${prefix}-" + i, key)));`,
        ],
        { cwd: fileURLToPath(new URL("../..", import.meta.url)), timeout: 60_000 },
      );
    await Promise.all([child("a"), child("b")]);
    const parsed = parseKnownHosts(await readFile(path, "utf8"));
    assert.deepEqual(parsed.warnings, []);
    assert.equal(parsed.entries.length, 300);
  });

  it("known_hosts file - a file over the size limit is refused with KNOWN_HOSTS_INVALID", async () => {
    const path = join(dir, "big");
    await writeFile(path, "#".repeat(2000));
    await assert.rejects(
      new KnownHostsFile({ path, maxBytes: 1000 }).read(),
      (e: Error & { code?: string }) =>
        e.code === "KNOWN_HOSTS_INVALID" && /larger than 1000 bytes/.test(e.message),
    );
    await assert.rejects(new KnownHostsFile({ path: dir }).read(), { code: "KNOWN_HOSTS_INVALID" });
  });
});
