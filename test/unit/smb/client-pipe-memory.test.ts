import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { SmbConnection } from "../../../actors/smb/client/connection.ts";
import type { Negotiated } from "../../../actors/smb/client/negotiate.ts";
import { openPipe } from "../../../actors/smb/client/pipe.ts";
import type { Session } from "../../../actors/smb/client/session.ts";
import { TreeIo } from "../../../actors/smb/client/tree-io.ts";
import { encodeCreateResponse } from "../../../actors/smb/codec/create.ts";
import { Command } from "../../../actors/smb/codec/header.ts";
import { encodeIoctlResponse } from "../../../actors/smb/codec/ioctl.ts";
import { encodeReadResponse } from "../../../actors/smb/codec/read-write.ts";
import { NtStatus } from "../../../actors/smb/codec/status.ts";
import { answer, startFakeServer, type FakeServer } from "../../support/smb-fake-server.ts";

setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;

const servers: FakeServer[] = [];
after(async () => {
  for (const s of servers) await s.stop();
});

const MiB = 1024 * 1024;
const fileId = Buffer.alloc(16, 0x42);
const created = encodeCreateResponse({
  oplockLevel: 0,
  flags: 0,
  createAction: 1,
  creationTime: 0n,
  lastAccessTime: 0n,
  lastWriteTime: 0n,
  changeTime: 0n,
  allocationSize: 0n,
  endOfFile: 0n,
  fileAttributes: 0x80,
  fileId,
  createContexts: Buffer.alloc(0),
});

describe("smb client pipe answers from a hostile server", () => {
  it("pipe - an answer read one byte per padded READ keeps the bytes, not the frames", async () => {
    const READS = 600;
    const PADDING = 60_000; // trailing bytes a READ answer may carry (under the codec's 64 KiB)
    let reads = 0;
    let held = 0;
    let baseline = 0;
    const server = await startFakeServer((req, s) => {
      const h = req.header;
      if (h.command === Command.CREATE) s.send(answer(h, { credits: 64 }, created));
      else if (h.command === Command.IOCTL) {
        gc();
        baseline = process.memoryUsage().arrayBuffers;
        const body = encodeIoctlResponse({
          ctlCode: 0x0011c017,
          fileId,
          input: Buffer.alloc(0),
          output: Buffer.from("x"),
          flags: 0,
        });
        s.send(answer(h, { status: NtStatus.BUFFER_OVERFLOW, credits: 2 }, body));
      } else if (h.command === Command.READ) {
        reads++;
        if (reads === READS) {
          gc();
          held = process.memoryUsage().arrayBuffers - baseline;
        }
        const read = encodeReadResponse({ data: Buffer.from("y"), dataRemaining: 0, flags: 0 });
        const status = reads < READS ? NtStatus.BUFFER_OVERFLOW : 0;
        s.send(answer(h, { status, credits: 2 }, Buffer.concat([read, Buffer.alloc(PADDING)])));
      }
    });
    servers.push(server);
    const conn = await SmbConnection.open({ host: "127.0.0.1", port: server.port, timeoutMs: 2_000 });
    conn.negotiated({ multiCredit: true, maxPayload: 1 << 20 });
    const negotiated = {
      dialect: 0x0311,
      multiCredit: true,
      maxReadSize: 65536,
      maxWriteSize: 65536,
      maxTransactSize: 65536,
    } as Negotiated;
    const io = new TreeIo(
      { conn, host: "127.0.0.1", negotiated, session: { encryptAll: false } as Session },
      "IPC$",
      1,
      false,
    );
    const pipe = await openPipe(io, "svcctl", { timeoutMs: 2_000 });
    const got = await pipe.transceive(Buffer.from("bind"), { timeoutMs: 20_000 });
    assert.equal(got.length, 1 + READS);
    assert.ok(
      held < 8 * MiB,
      `${(held / MiB).toFixed(1)} MiB held for a ${got.length}-byte answer (${READS} frames of ${PADDING} bytes)`,
    );
    conn.destroy();
  });
});
