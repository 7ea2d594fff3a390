import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { once } from "node:events";
import { appendFile, mkdtemp, readFile, rm, stat, utimes, writeFile } from "node:fs/promises";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import ssh2 from "ssh2";
import { KnownHostsFile } from "../../actors/ssh/known-hosts-file.ts";
import { checkHostKey, parseKnownHosts } from "../../actors/ssh/known-hosts.ts";

const run = promisify(execFile);
const moduleUrl = new URL("../../actors/ssh/known-hosts-file.ts", import.meta.url).href;
const hostKeyUrl = new URL("../../actors/ssh/host-key.ts", import.meta.url).href;
const repo = fileURLToPath(new URL("../..", import.meta.url));

/**
 * A child process that checks `hosts` new hosts under accept-new, each with the key it is given
 * (base64 on its stdin), once the parent says go: both children then meet each host at once.
 * Resolves with its verdicts, one line per host: `ok added`, `ok known` or `refused <code>`.
 */
function acceptNewChild(path: string, keys: readonly Buffer[]) {
  const child = spawn(
    process.execPath,
    [
      "--input-type=module",
      "-e",
      `import { KnownHostsFile } from ${JSON.stringify(moduleUrl)};
       import { verifyHostKey } from ${JSON.stringify(hostKeyUrl)};
       import { createInterface } from "node:readline";
       const lines = createInterface({ input: process.stdin });
       const it = lines[Symbol.asyncIterator]();
       const keys = JSON.parse((await it.next()).value).map((k) => Buffer.from(k, "base64"));
       const file = new KnownHostsFile({ path: ${JSON.stringify(path)} });
       const policy = { kind: "known-hosts", file, policy: "accept-new" };
       process.stdout.write("ready\\n");
       await it.next();
       const verdicts = await Promise.all(keys.map((key, i) => verifyHostKey(policy, "host-" + i, 22, key)));
       process.stdout.write(verdicts.map((v) => v.ok ? "ok " + (v.added ? "added" : "known") : "refused " + v.error.code).join("\\n") + "\\n");
       lines.close();
       process.exit(0);`,
    ],
    { cwd: repo, stdio: ["pipe", "pipe", "inherit"] },
  );
  let out = "";
  child.stdout.setEncoding("utf8");
  const exited = once(child, "exit");
  const ready = new Promise<void>((resolve, reject) => {
    child.stdout.on("data", (chunk: string) => {
      out += chunk;
      if (out.startsWith("ready\n")) resolve();
    });
    void exited.then(([code]) => reject(new Error(`the child exited (${String(code)}) before it was ready`)));
  });
  child.stdin.write(`${JSON.stringify(keys.map((k) => k.toString("base64")))}\n`);
  return {
    ready,
    go: () => child.stdin.end("go\n"),
    verdicts: async (): Promise<string[]> => {
      const [code] = (await exited) as [number | null];
      assert.equal(code, 0, out);
      return out.slice("ready\n".length).trim().split("\n");
    },
  };
}

/** Two children meet the same new hosts at once; resolves with each one's verdicts. */
async function race(path: string, keysA: readonly Buffer[], keysB: readonly Buffer[]) {
  const [a, b] = [acceptNewChild(path, keysA), acceptNewChild(path, keysB)];
  await Promise.all([a.ready, b.ready]);
  a.go();
  b.go();
  return Promise.all([a.verdicts(), b.verdicts()]);
}

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

  it("known_hosts file - two processes meeting the same 40 new hosts with the same keys record one line each", async () => {
    const path = join(dir, "race-same");
    const keys = Array.from({ length: 40 }, blob);
    const [a, b] = await race(path, keys, keys);
    assert.equal(a.length, 40);
    const verdicts = [...a, ...b];
    assert.equal(verdicts.filter((v) => v === "ok added").length, 40, "each host added by one process");
    assert.equal(verdicts.filter((v) => v === "ok known").length, 40, "the other agrees");
    const parsed = parseKnownHosts(await readFile(path, "utf8"));
    assert.equal(parsed.entries.length, 40);
    for (const [i, key] of keys.entries())
      assert.equal(checkHostKey(parsed.entries, `host-${i}`, key).kind, "known");
    await assert.rejects(stat(`${path}.lock`), { code: "ENOENT" });
  });

  it("known_hosts file - two processes shown different keys for 40 new hosts: one line each, the other is HOST_KEY_MISMATCH", async () => {
    const path = join(dir, "race-different");
    const keysA = Array.from({ length: 40 }, blob);
    const keysB = Array.from({ length: 40 }, blob);
    const [a, b] = await race(path, keysA, keysB);
    const parsed = parseKnownHosts(await readFile(path, "utf8"));
    assert.equal(parsed.entries.length, 40, "exactly one line per host");
    for (let i = 0; i < 40; i++) {
      const pair = [a[i], b[i]].sort();
      assert.deepEqual(pair, ["ok added", "refused HOST_KEY_MISMATCH"], `host-${i}: ${String(pair)}`);
      const winner = a[i] === "ok added" ? keysA[i] : keysB[i];
      assert.equal(checkHostKey(parsed.entries, `host-${i}`, winner as Buffer).kind, "known");
    }
  });

  it("known_hosts file - a lock left by a dead process is taken over; one by a live holder times out naming it", async () => {
    const path = join(dir, "locked");
    const child = spawn(process.execPath, ["-e", ""]);
    const [code] = (await once(child, "exit")) as [number];
    assert.equal(code, 0);
    await writeFile(`${path}.lock`, `${child.pid} ${hostname()} dead\n`);
    const file = new KnownHostsFile({ path, lockTimeoutMs: 5_000 });
    assert.deepEqual(await file.append("a", blob()), { kind: "added" });
    await assert.rejects(stat(`${path}.lock`), { code: "ENOENT" });

    // This very process holds it (alive): the append waits to its deadline.
    await writeFile(`${path}.lock`, `${process.pid} ${hostname()} held\n`);
    const impatient = new KnownHostsFile({ path, lockTimeoutMs: 300 });
    await assert.rejects(
      impatient.append("b", blob()),
      (e: Error & { code?: string }) =>
        e.code === "KNOWN_HOSTS_INVALID" &&
        e.message.includes(`${path}.lock`) &&
        e.message.includes(`pid ${process.pid}`),
    );
    // An abort gives up sooner, with its reason.
    const controller = new AbortController();
    const waiting = file.append("b", blob(), { signal: controller.signal });
    controller.abort(new Error("cancelled by the test"));
    await assert.rejects(waiting, /cancelled by the test/);
    assert.equal(await readFile(`${path}.lock`, "utf8"), `${process.pid} ${hostname()} held\n`, "not ours");

    // Another host's lock, old: stale by age.
    await writeFile(`${path}.lock`, `4242 elsewhere.example held\n`);
    const old = new Date(Date.now() - 60_000);
    await utimes(`${path}.lock`, old, old);
    assert.deepEqual(await file.append("b", blob()), { kind: "added" });
    assert.equal(parseKnownHosts(await readFile(path, "utf8")).entries.length, 2);
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
