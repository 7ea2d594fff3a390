import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { openPipe } from "../../../actors/smb/client/pipe.ts";
import type { TreeIo } from "../../../actors/smb/client/tree-io.ts";
import { readFileStream, writeFile } from "../../../actors/smb/client/file-transfer.ts";
import { removeTree } from "../../../actors/smb/client/file-ops.ts";
import { encodeCreateResponse } from "../../../actors/smb/codec/create.ts";
import { decodeCloseRequest } from "../../../actors/smb/codec/close.ts";
import { Command } from "../../../actors/smb/codec/header.ts";
import {
  decodeIoctlRequest,
  encodeIoctlResponse,
  encodeValidateNegotiateInfoResponse,
} from "../../../actors/smb/codec/ioctl.ts";
import { encodeTreeConnectResponse } from "../../../actors/smb/codec/tree-connect.ts";
import { Budget } from "../../../actors/smb/client/budget.ts";
import { validateNegotiate } from "../../../actors/smb/client/validate-negotiate.ts";
import {
  decodeReadRequest,
  decodeWriteRequest,
  encodeReadResponse,
  encodeWriteResponse,
} from "../../../actors/smb/codec/read-write.ts";
import { NtStatus } from "../../../actors/smb/codec/status.ts";
import { fakeTree } from "./fake-tree.ts";
import { answer, startFakeServer, type FakeRequest, type FakeServer } from "../../support/smb-fake-server.ts";

const servers: FakeServer[] = [];
after(async () => {
  for (const s of servers) await s.stop();
});

const fileId = Buffer.alloc(16, 0x42);
const created = encodeCreateResponse({
  oplockLevel: 0,
  flags: 0,
  createAction: 2,
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
const closed = Buffer.concat([Buffer.from([60, 0]), Buffer.alloc(58)]);

/** A tree on a fake server that answers CREATE and CLOSE, and everything else with `handle`. */
async function tree(
  handle: (req: FakeRequest, server: FakeServer) => void,
  chunk = 65536,
): Promise<{ io: TreeIo; server: FakeServer }> {
  const server = await startFakeServer((req, s) => {
    if (req.header.command === Command.CREATE) s.send(answer(req.header, { credits: 64 }, created));
    else if (req.header.command === Command.CLOSE) s.send(answer(req.header, { credits: 1 }, closed));
    else handle(req, s);
  });
  servers.push(server);
  return { io: (await fakeTree(server, chunk)).io, server };
}

describe("smb client tree operations", () => {
  it("upload - WRITEs are pipelined, several in flight, and the SHA-256 is of what was sent", async () => {
    let outstanding = 0;
    let most = 0;
    const received = new Map<bigint, Buffer>();
    const { io } = await tree((req, s) => {
      if (req.header.command !== Command.WRITE) return;
      const w = decodeWriteRequest(req.message);
      received.set(w.offset, Buffer.from(w.data));
      most = Math.max(most, ++outstanding);
      setTimeout(() => {
        outstanding--;
        s.send(
          answer(req.header, { credits: 2 }, encodeWriteResponse({ count: w.data.length, remaining: 0 })),
        );
      }, 20);
    });
    const data = randomBytes(65536 * 6 + 5);
    const progress: number[] = [];
    const sent = await writeFile(io, "a.bin", data, {
      timeoutMs: 5_000,
      onProgress: (n) => progress.push(n),
    });
    assert.equal(sent.bytes, data.length);
    assert.equal(sent.sha256, createHash("sha256").update(data).digest("hex"));
    assert.ok(most >= 2, `at most ${most} WRITE(s) in flight`);
    const joined = Buffer.concat(
      [...received.entries()].sort((a, b) => Number(a[0] - b[0])).map(([, b]) => b),
    );
    assert.ok(joined.equals(data));
    assert.equal(progress.at(-1), data.length);
  });

  it("upload - a short WRITE fails the upload and the handle is still closed", async () => {
    const { io, server } = await tree((req, s) => {
      if (req.header.command === Command.WRITE)
        s.send(answer(req.header, { credits: 2 }, encodeWriteResponse({ count: 1, remaining: 0 })));
    });
    await assert.rejects(writeFile(io, "a.bin", Buffer.alloc(100), { timeoutMs: 2_000 }), /1 of 100 bytes/);
    await new Promise((r) => setTimeout(r, 50));
    assert.ok(server.requests.some((r) => r.header.command === Command.CLOSE));
  });

  it("download stream - chunks in order to the end; leaving early still closes the handle", async () => {
    const content = randomBytes(65536 * 3 + 100);
    const { io, server } = await tree((req, s) => {
      if (req.header.command !== Command.READ) return;
      const r = decodeReadRequest(req.message);
      const at = Number(r.offset);
      if (at >= content.length) s.send(answer(req.header, { status: NtStatus.END_OF_FILE, credits: 1 }));
      else {
        const data = content.subarray(at, at + r.length);
        s.send(answer(req.header, { credits: 1 }, encodeReadResponse({ data, dataRemaining: 0, flags: 0 })));
      }
    });
    const parts: Buffer[] = [];
    for await (const chunk of readFileStream(io, "a.bin", { timeoutMs: 2_000 })) parts.push(chunk);
    assert.ok(Buffer.concat(parts).equals(content));
    const closes = () => server.requests.filter((r) => r.header.command === Command.CLOSE).length;
    assert.equal(closes(), 1);
    for await (const chunk of readFileStream(io, "a.bin", { timeoutMs: 2_000 })) {
      assert.equal(chunk.length, 65536);
      break;
    }
    assert.equal(closes(), 2);
  });

  it("pipe - an answer over the IOCTL's output comes with BUFFER_OVERFLOW and the rest is READ", async () => {
    const whole = randomBytes(10_000);
    const { io } = await tree((req, s) => {
      if (req.header.command === Command.IOCTL) {
        const max = decodeIoctlRequest(req.message).maxOutputResponse;
        const output = whole.subarray(0, Math.min(max, 4_000));
        const body = encodeIoctlResponse({
          ctlCode: 0x0011c017,
          fileId,
          input: Buffer.alloc(0),
          output,
          flags: 0,
        });
        s.send(answer(req.header, { status: NtStatus.BUFFER_OVERFLOW, credits: 2 }, body));
      } else if (req.header.command === Command.READ) {
        const reads = s.requests.filter((r) => r.header.command === Command.READ).length;
        const data = whole.subarray(4_000 * reads, 4_000 * (reads + 1));
        const status = 4_000 * (reads + 1) < whole.length ? NtStatus.BUFFER_OVERFLOW : 0;
        s.send(
          answer(
            req.header,
            { status, credits: 2 },
            encodeReadResponse({ data, dataRemaining: 0, flags: 0 }),
          ),
        );
      }
    });
    const pipe = await openPipe(io, "srvsvc", { timeoutMs: 2_000 });
    const got = await pipe.transceive(Buffer.from("bind"), { timeoutMs: 2_000, maxOutput: 4_000 });
    assert.ok(got.equals(whole));
    await pipe.close({ timeoutMs: 2_000 });
  });

  it("pipe - a WRITE the server takes short is UPLOAD_FAILED: half a message cannot be used on", async () => {
    const { io } = await tree((req, s) => {
      if (req.header.command === Command.WRITE)
        s.send(answer(req.header, { credits: 2 }, encodeWriteResponse({ count: 3, remaining: 0 })));
    });
    const pipe = await openPipe(io, "svcctl", { timeoutMs: 2_000 });
    await assert.rejects(pipe.write(Buffer.alloc(10), { timeoutMs: 2_000 }), {
      code: "UPLOAD_FAILED",
      message: /took 3 of 10 bytes/,
    });
  });

  it("open - a CREATE answered after its deadline has its handle closed on the server", async () => {
    const server = await startFakeServer((req, s) => {
      if (req.header.command === Command.CREATE)
        setTimeout(() => s.send(answer(req.header, { credits: 8 }, created)), 400);
      else if (req.header.command === Command.CLOSE) s.send(answer(req.header, { credits: 1 }, closed));
    });
    servers.push(server);
    const { io } = await fakeTree(server);
    await assert.rejects(io.open("late.bin", { access: 0x80 }, { timeoutMs: 100 }), { code: "TIMEOUT" });
    const deadline = Date.now() + 3_000;
    const closes = () =>
      server.requests
        .filter((r) => r.header.command === Command.CLOSE)
        .map((r) => decodeCloseRequest(r.message));
    while (closes().length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(
      closes().map((c) => c.fileId),
      [fileId],
    );
  });

  it("pipe - a READ answered with more than its Length is MALFORMED_PACKET", async () => {
    const { io } = await tree((req, s) => {
      if (req.header.command !== Command.READ) return;
      const asked = decodeReadRequest(req.message).length;
      const data = Buffer.alloc(asked + 1);
      s.send(answer(req.header, { credits: 2 }, encodeReadResponse({ data, dataRemaining: 0, flags: 0 })));
    });
    const pipe = await openPipe(io, "svcctl", { timeoutMs: 2_000 });
    await assert.rejects(pipe.read({ timeoutMs: 2_000, maxBytes: 100 }), { code: "MALFORMED_PACKET" });
  });

  it("remove tree - a share's root is never removed, and nothing is sent for it", async () => {
    const { io, server } = await tree(() => undefined);
    const before = server.requests.length;
    await assert.rejects(removeTree(io, "", { timeoutMs: 2_000 }), { code: "PATH_REFUSED" });
    assert.equal(server.requests.length, before);
  });

  for (const [what, dialect, status] of [
    ["matches", 0x0300, 0],
    ["names another dialect", 0x0302, 0],
    ["is refused", 0x0300, NtStatus.ACCESS_DENIED],
  ] as const) {
    it(`validate negotiate - an answer that ${what} ${what === "matches" ? "passes" : "is SMB_INTEGRITY_FAILED"}`, async () => {
      const serverGuid = Buffer.alloc(16, 3);
      const { io } = await tree((req, s) => {
        if (req.header.command === Command.TREE_CONNECT) {
          const body = encodeTreeConnectResponse({
            shareType: 2,
            shareFlags: 0,
            capabilities: 0,
            maximalAccess: 0x1f01ff,
          });
          s.send(answer(req.header, { credits: 4, treeId: 7 }, body));
        } else if (req.header.command === Command.IOCTL) {
          const output = encodeValidateNegotiateInfoResponse({
            capabilities: 0x44,
            guid: serverGuid,
            securityMode: 1,
            dialect,
          });
          const body = encodeIoctlResponse({
            ctlCode: 0x00140204,
            fileId: Buffer.alloc(16, 0xff),
            input: Buffer.alloc(0),
            output,
            flags: 0,
          });
          s.send(answer(req.header, { status, credits: 1 }, body));
        } else if (req.header.command === Command.TREE_DISCONNECT) {
          s.send(answer(req.header, { credits: 1 }, Buffer.from([4, 0, 0, 0])));
        }
      });
      const negotiated = {
        ...io.ctx.negotiated,
        dialect: 0x0300,
        serverGuid,
        serverSecurityMode: 1,
        serverCapabilities: 0x44,
        request: {
          securityMode: 3,
          capabilities: 0x44,
          clientGuid: Buffer.alloc(16, 9),
          dialects: [0x0300, 0x0302],
          negotiateContexts: [],
        },
      };
      const run = validateNegotiate(io.ctx, negotiated, new Budget({ timeoutMs: 2_000 }));
      if (what === "matches") await run;
      else await assert.rejects(run, { code: "SMB_INTEGRITY_FAILED" });
    });
  }
});
