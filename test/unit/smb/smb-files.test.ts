import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import type { Readable } from "node:stream";
import { checkWindowsRunRoot, smbFileChannel, type SmbShareFiles } from "../../../actors/smb/files.ts";
import type { Acl, SecurityDescriptor } from "../../../actors/smb/codec/security-descriptor.ts";

/** An in-memory share: files and directories by share-relative path (with `\`). */
class MemoryShare implements SmbShareFiles {
  readonly files = new Map<string, Buffer>();
  readonly dirs = new Set<string>();
  readonly calls: string[] = [];
  /** Makes the next writeFile fail after writing half of its input. */
  failNextWrite = false;
  /** Makes reads return this instead of the file (a disk that changed what it was given). */
  corruptRead?: Buffer;

  async writeFile(path: string, source: Buffer | Readable) {
    this.calls.push(`write ${path}`);
    const chunks: Buffer[] = [];
    if (Buffer.isBuffer(source)) chunks.push(source);
    else for await (const c of source) chunks.push(c as Buffer);
    const all = Buffer.concat(chunks);
    if (this.failNextWrite) {
      this.failNextWrite = false;
      this.files.set(path, all.subarray(0, all.length >> 1));
      throw Object.assign(new Error("connection lost"), { code: "CONNECTION_LOST" });
    }
    this.files.set(path, all);
    return { bytes: all.length, sha256: createHash("sha256").update(all).digest("hex") };
  }
  readFile(path: string, options: { maxBytes: number }) {
    this.calls.push(`read ${path}`);
    const f = this.corruptRead ?? this.files.get(path);
    if (f === undefined) return Promise.reject(new Error(`no ${path}`));
    return Promise.resolve(f.subarray(0, options.maxBytes + 1));
  }
  stat(path: string) {
    if (this.dirs.has(path)) return Promise.resolve({ size: 0n, directory: true });
    const f = this.files.get(path);
    return Promise.resolve(f === undefined ? undefined : { size: BigInt(f.length), directory: false });
  }
  mkdirp(path: string) {
    this.calls.push(`mkdirp ${path}`);
    const parts = path.split("\\");
    for (let i = 1; i <= parts.length; i++) this.dirs.add(parts.slice(0, i).join("\\"));
    return Promise.resolve();
  }
  /** DACLs set, by path; every object is the Administrators group's (an administrator's default). */
  readonly dacls = new Map<string, { dacl: Acl; protected: boolean }>();
  mkdir(path: string) {
    this.calls.push(`mkdir ${path}`);
    const created = !this.dirs.has(path);
    this.dirs.add(path);
    return Promise.resolve({ created, reparsePoint: false });
  }
  list(path: string) {
    const names = [...this.dirs, ...this.files.keys()]
      .filter((p) => p.startsWith(`${path}\\`) && !p.slice(path.length + 1).includes("\\"))
      .map((p) => ({ name: p.slice(path.length + 1), reparsePoint: false }));
    return Promise.resolve(names);
  }
  getSecurity(path: string): Promise<SecurityDescriptor> {
    const set = this.dacls.get(path);
    return Promise.resolve({
      control: set?.protected === true ? 0x1000 : 0,
      owner: "S-1-5-32-544",
      dacl: set?.dacl ?? { revision: 2, aces: [] },
    });
  }
  setDacl(path: string, dacl: Acl, options: { protected: boolean }) {
    this.calls.push(`setDacl ${path}`);
    this.dacls.set(path, { dacl, protected: options.protected });
    return Promise.resolve();
  }
  remove(path: string) {
    this.calls.push(`remove ${path}`);
    this.files.delete(path);
    return Promise.resolve();
  }
  removeTree(path: string) {
    this.calls.push(`removeTree ${path}`);
    for (const k of [...this.files.keys()]) if (k.startsWith(`${path}\\`)) this.files.delete(k);
    for (const d of [...this.dirs]) if (d === path || d.startsWith(`${path}\\`)) this.dirs.delete(d);
    return Promise.resolve();
  }
  rename(from: string, to: string) {
    this.calls.push(`rename ${from} ${to}`);
    const f = this.files.get(from);
    if (f === undefined) return Promise.reject(new Error(`no ${from}`));
    this.files.delete(from);
    this.files.set(to, f);
    return Promise.resolve();
  }
}

function channel(share = new MemoryShare(), runRoot?: string) {
  const opened: string[] = [];
  const files = smbFileChannel({
    openShare: (name) => {
      opened.push(name);
      return Promise.resolve(share);
    },
    close: () => Promise.resolve(),
    ...(runRoot === undefined ? {} : { runRoot }),
  });
  return { files, share, opened };
}

const sha = (b: Buffer): string => createHash("sha256").update(b).digest("hex");

test("smb files - the run directory and its subdirectories go under ADMIN$\\Temp\\sumac", async () => {
  const { files, share, opened } = channel();
  assert.equal(files.runRoot, "/ADMIN$/Temp/sumac");
  const dir = await files.createRunDir("run-1", { subdirs: ["logs", "staging"] });
  assert.equal(dir, "/ADMIN$/Temp/sumac/run-1");
  assert.deepEqual(opened, ["ADMIN$"]);
  for (const d of ["Temp\\sumac\\run-1", "Temp\\sumac\\run-1\\logs", "Temp\\sumac\\run-1\\staging"])
    assert.ok(share.dirs.has(d), d);
});

test("smb files - paths outside the run root and unsafe run names are refused", async () => {
  const { files } = channel();
  for (const p of [
    "/ADMIN$/Temp/other/x",
    "/ADMIN$/Temp/sumac/../x",
    "/C$/Temp/sumac/x",
    "/ADMIN$/Temp/sumac",
  ])
    await assert.rejects(files.put(Buffer.from("x"), p, { mode: 0o600 }), { code: "PATH_REFUSED" }, p);
  await assert.rejects(files.createRunDir("../x"), { code: "PATH_REFUSED" });
  await assert.rejects(files.remove("/ADMIN$/Windows"), { code: "PATH_REFUSED" });
});

test("smb files - a run root is /SHARE/directory, backslashes accepted", () => {
  assert.equal(checkWindowsRunRoot("\\C$\\sumac\\runs"), "/C$/sumac/runs");
  for (const bad of ["/ADMIN$", "ADMIN$/Temp", "/ADMIN$/../x", "/ADMIN$/a\u0001"])
    assert.throws(() => checkWindowsRunRoot(bad), { code: "PATH_REFUSED" }, bad);
});

test("smb files - an upload goes to a .part name and is renamed into place, unread by default", async () => {
  const { files, share } = channel();
  const data = Buffer.from("agent bundle");
  const r = await files.put(data, "/ADMIN$/Temp/sumac/run-1/agent.js", { mode: 0o755, sha256: sha(data) });
  assert.deepEqual(r, { bytes: data.length, sha256: sha(data) });
  assert.deepEqual(share.calls, [
    "write Temp\\sumac\\run-1\\agent.js.part",
    "rename Temp\\sumac\\run-1\\agent.js.part Temp\\sumac\\run-1\\agent.js",
  ]);
  assert.deepEqual(share.files.get("Temp\\sumac\\run-1\\agent.js"), data);
  assert.equal(share.files.has("Temp\\sumac\\run-1\\agent.js.part"), false);
});

test("smb files - checkOnTarget reads the file back and a changed file is a HASH_MISMATCH", async () => {
  const { files, share } = channel();
  const data = Buffer.from("component");
  await files.put(data, "/ADMIN$/Temp/sumac/r/c.bin", { mode: 0o600, checkOnTarget: true });
  assert.ok(share.calls.includes("read Temp\\sumac\\r\\c.bin"));
  share.corruptRead = Buffer.from("componenT");
  await assert.rejects(files.put(data, "/ADMIN$/Temp/sumac/r/c.bin", { mode: 0o600, checkOnTarget: true }), {
    code: "HASH_MISMATCH",
  });
});

test("smb files - content with another SHA-256 than expected is refused and its .part removed", async () => {
  const { files, share } = channel();
  await assert.rejects(
    files.put(Buffer.from("a"), "/ADMIN$/Temp/sumac/r/f", { mode: 0o600, sha256: sha(Buffer.from("b")) }),
    { code: "HASH_MISMATCH" },
  );
  assert.equal(share.files.size, 0);
});

test("smb files - a failed upload leaves nothing once retried", async () => {
  const { files, share } = channel();
  const data = Buffer.alloc(1000, 7);
  share.failNextWrite = true;
  // The channel's own clean-up is best effort: make it fail, as on a connection that is gone.
  const remove = share.remove.bind(share);
  share.remove = () => Promise.reject(new Error("gone"));
  await assert.rejects(files.put(data, "/ADMIN$/Temp/sumac/r/big", { mode: 0o600 }), {
    code: "CONNECTION_LOST",
  });
  assert.equal(share.files.get("Temp\\sumac\\r\\big.part")?.length, 500);
  share.remove = remove;
  await files.put(data, "/ADMIN$/Temp/sumac/r/big", { mode: 0o600 });
  assert.deepEqual([...share.files.keys()], ["Temp\\sumac\\r\\big"]);
});

test("smb files - remove takes a file, a tree, or nothing", async () => {
  const { files, share } = channel();
  await files.createRunDir("r", { subdirs: ["logs"] });
  await files.put(Buffer.from("x"), "/ADMIN$/Temp/sumac/r/logs/a.log", { mode: 0o600 });
  await files.put(Buffer.from("y"), "/ADMIN$/Temp/sumac/r/b", { mode: 0o600 });
  await files.remove("/ADMIN$/Temp/sumac/r/b");
  assert.equal(share.files.has("Temp\\sumac\\r\\b"), false);
  await files.remove("/ADMIN$/Temp/sumac/r/missing");
  await files.remove("/ADMIN$/Temp/sumac/r");
  assert.equal(share.files.size, 0);
  assert.equal(share.dirs.has("Temp\\sumac\\r"), false);
  assert.ok(share.calls.includes("removeTree Temp\\sumac\\r"));
});

test("smb files - a share that fails to open is opened again on the next call", async () => {
  let n = 0;
  const share = new MemoryShare();
  const files = smbFileChannel({
    openShare: () =>
      n++ === 0
        ? Promise.reject(Object.assign(new Error("no"), { code: "UNREACHABLE" }))
        : Promise.resolve(share),
    close: () => Promise.resolve(),
  });
  await assert.rejects(files.mkdir("/ADMIN$/Temp/sumac/r"), { code: "UNREACHABLE" });
  await files.mkdir("/ADMIN$/Temp/sumac/r");
  assert.equal(n, 2);
});
