/** base/files.ts: a small file read through one checked handle, with a cap. */
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type FileRefusal, readCheckedFile } from "../../base/files.ts";

class Refused extends Error {
  readonly refusal: FileRefusal;
  constructor(refusal: FileRefusal) {
    super(refusal.reason);
    this.refusal = refusal;
  }
}
const refuse = (refusal: FileRefusal) => new Refused(refusal);

describe("checked file reads", () => {
  let dir: string;
  before(async () => (dir = await mkdtemp(join(tmpdir(), "sumac-files-"))));
  after(() => rm(dir, { recursive: true, force: true }));

  it("checked file reads - a file within the cap is read whole; one byte over is refused", async () => {
    await writeFile(join(dir, "ok"), "x".repeat(100));
    assert.equal((await readCheckedFile(join(dir, "ok"), { maxBytes: 100, refuse })).length, 100);
    await writeFile(join(dir, "big"), "x".repeat(101));
    await assert.rejects(readCheckedFile(join(dir, "big"), { maxBytes: 100, refuse }), (e: Refused) => {
      assert.deepEqual(e.refusal, { reason: "too-large", maxBytes: 100 });
      return true;
    });
  });

  it("checked file reads - a FIFO in a secret's place is refused at once, not waited on", async () => {
    execFileSync("mkfifo", [join(dir, "fifo")]);
    await assert.rejects(readCheckedFile(join(dir, "fifo"), { maxBytes: 100, refuse }), {
      message: "not-file",
    });
  });

  it("checked file reads - a missing file is unreadable with its code; check sees the open file", async () => {
    await assert.rejects(readCheckedFile(join(dir, "none"), { maxBytes: 100, refuse }), (e: Refused) => {
      assert.equal(e.refusal.reason, "unreadable");
      assert.equal(e.refusal.reason === "unreadable" && e.refusal.code, "ENOENT");
      return true;
    });
    await writeFile(join(dir, "loose"), "s", { mode: 0o644 });
    await assert.rejects(
      readCheckedFile(join(dir, "loose"), {
        maxBytes: 100,
        refuse,
        check: (st) => {
          if ((st.mode & 0o077) !== 0) throw new Error(`mode ${(st.mode & 0o777).toString(8)}`);
        },
      }),
      { message: "mode 644" },
    );
  });
});
