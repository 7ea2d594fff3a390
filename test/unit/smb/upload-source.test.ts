import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { execFileSync } from "node:child_process";
import { createReadStream, createWriteStream } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { finished } from "node:stream/promises";
import { WRITE_DATA_OFFSET } from "../../../actors/smb/codec/read-write.ts";
import { fillWrites, MessagePool, type UploadSource } from "../../../actors/smb/client/upload-source.ts";

/** The data of every WRITE the source gives, copied out, each buffer given back as the upload does. */
async function collect(
  source: UploadSource,
  size: number,
): Promise<{ data: Buffer; lengths: number[]; buffers: number }> {
  const pool = new MessagePool(size);
  const parts: Buffer[] = [];
  const lengths: number[] = [];
  const buffers = new Set<Buffer>();
  for await (const w of fillWrites(source, pool)) {
    assert.equal(w.message.length, WRITE_DATA_OFFSET + w.length);
    parts.push(Buffer.from(w.message.subarray(WRITE_DATA_OFFSET)));
    lengths.push(w.length);
    buffers.add(w.buffer);
    pool.give(w.buffer);
  }
  return { data: Buffer.concat(parts), lengths, buffers: buffers.size };
}

describe("smb upload source - WRITE messages filled in place", () => {
  const data = randomBytes(10_000);

  it("smb upload source - a buffer, an iterable of odd pieces and a file give the same WRITEs", async () => {
    const dir = await mkdtemp(join(tmpdir(), "sumac-upload-"));
    try {
      const path = join(dir, "f.bin");
      await writeFile(path, data);
      const pieces = [
        data.subarray(0, 1),
        data.subarray(1, 4097),
        data.subarray(4097, 9000),
        data.subarray(9000),
      ];
      for (const source of [
        data,
        Readable.from(pieces),
        createReadStream(path),
        createReadStream(path, { highWaterMark: 7 }),
      ]) {
        const got = await collect(source, 4096);
        assert.ok(got.data.equals(data));
        assert.deepEqual(got.lengths, [4096, 4096, 1808]);
        assert.equal(got.buffers, 1, "one buffer, reused once given back");
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("smb upload source - empty sources give no WRITE; an exact multiple no short one", async () => {
    const dir = await mkdtemp(join(tmpdir(), "sumac-upload-"));
    try {
      const empty = join(dir, "empty");
      await writeFile(empty, "");
      for (const source of [Buffer.alloc(0), Readable.from([]), createReadStream(empty)])
        assert.deepEqual((await collect(source, 4096)).lengths, []);
      assert.deepEqual((await collect(data.subarray(0, 8192), 4096)).lengths, [4096, 4096]);
      assert.deepEqual((await collect(Readable.from([data.subarray(0, 8192)]), 4096)).lengths, [4096, 4096]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("smb upload source - a FIFO is read through its stream, as it comes", async () => {
    const dir = await mkdtemp(join(tmpdir(), "sumac-upload-"));
    try {
      const fifo = join(dir, "fifo");
      execFileSync("mkfifo", [fifo]);
      const feeding = (async () => {
        const out = createWriteStream(fifo);
        for (const piece of [data.subarray(0, 5000), data.subarray(5000)]) {
          out.write(piece);
          await new Promise((r) => setTimeout(r, 20));
        }
        out.end();
        await finished(out);
      })();
      const got = await collect(createReadStream(fifo), 4096);
      await feeding;
      assert.ok(got.data.equals(data));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("smb upload source - a file stream already read from is read as a stream, from where it is", async () => {
    const dir = await mkdtemp(join(tmpdir(), "sumac-upload-"));
    try {
      const path = join(dir, "f.bin");
      await writeFile(path, data);
      const got = await collect(createReadStream(path, { start: 100 }), 4096);
      assert.ok(got.data.equals(data.subarray(100)));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
