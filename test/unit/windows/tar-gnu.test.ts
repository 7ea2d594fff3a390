import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { TarType } from "../../../actors/target/windows/tar-header.ts";
import { archive, inPieces, readAll } from "./tar-helpers.ts";

const run = promisify(execFile);

describe("tar and GNU tar", () => {
  let dir: string;
  let gnuTar: string | undefined;
  const files = new Map<string, Buffer>();

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "sumac-tar-test-"));
    const version = await run("tar", ["--version"]).then(
      (r) => r.stdout,
      () => "",
    );
    gnuTar = version.includes("GNU tar") ? version.split("\n")[0] : undefined;
    // 189 bytes: a GNU long name, a pax path, or ustar's prefix and name.
    const dirName = "long-directory-name-".repeat(3);
    const long = `${dirName}/${dirName}/${"and-a-long-file-name-".repeat(3)}.bin`;
    for (const [name, size] of [
      ["small.txt", 12],
      ["bin/node.exe", 200_001],
      [long, 513],
      ["empty", 0],
    ] as const) {
      const data = randomBytes(size);
      files.set(name, data);
      await mkdir(join(dir, "src", name, ".."), { recursive: true });
      await writeFile(join(dir, "src", name), data);
    }
    await symlink("small.txt", join(dir, "src", "link"));
  });

  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  for (const format of ["gnu", "pax", "ustar"] as const) {
    it(`tar - an archive GNU tar writes in ${format} format is read as GNU tar wrote it`, async (t) => {
      if (gnuTar === undefined) return t.skip("no GNU tar on PATH");
      const out = join(dir, `${format}.tar`);
      const args = ["-C", join(dir, "src"), `--format=${format}`, "-cf", out, "."];
      await run("tar", args);
      const read = await readAll(inPieces(await readFile(out), [10_000]));
      t.diagnostic(`${gnuTar}, ${format}: ${read.length} entries`);
      const regular = new Map(read.filter((e) => e.type === TarType.FILE).map((e) => [e.name, e.data]));
      assert.deepEqual(regular, files);
      const link = read.find((e) => e.name === "link");
      assert.equal(link?.type, TarType.SYMLINK);
      assert.equal(link?.linkName, "small.txt");
      assert.ok(read.some((e) => e.name === "." && e.type === TarType.DIRECTORY));
      assert.ok(read.some((e) => e.name === "bin" && e.type === TarType.DIRECTORY));
    });
  }

  it("tar - GNU tar reads what tarArchive writes, names over 100 bytes included", async (t) => {
    if (gnuTar === undefined) return t.skip("no GNU tar on PATH");
    const long = `${"d".repeat(120)}/${"f".repeat(90)}`;
    const data = randomBytes(3333);
    const out = join(dir, "ours.tar");
    await writeFile(
      out,
      await archive([
        { name: long, size: data.length, data, mtime: 86_400 },
        { name: "node.exe", size: 5, data: Buffer.from("MZ..."), mode: 0o644 },
      ]),
    );
    const listing = await run("tar", ["--numeric-owner", "--full-time", "-tvf", out], { env: { TZ: "UTC" } });
    assert.match(listing.stdout, new RegExp(`-rw-r--r-- 0/0 +3333 1970-01-02 00:00:00 ${long}\n`));
    assert.match(listing.stdout, /-rw-r--r-- 0\/0 +5 1970-01-01 00:00:00 node.exe\n/);
    const extracted = join(dir, "extracted");
    await mkdir(extracted);
    await run("tar", ["-C", extracted, "-xf", out]);
    const back = await readFile(join(extracted, long));
    assert.equal(
      createHash("sha256").update(back).digest("hex"),
      createHash("sha256").update(data).digest("hex"),
    );
  });
});
