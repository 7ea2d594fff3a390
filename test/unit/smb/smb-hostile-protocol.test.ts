/**
 * The SMB client against a server whose messages decode but break the exchange: authentication
 * rounds out of NTLM's order, a short WRITE, an encrypted answer before any key, endless interim
 * answers, duplicates and strays, a compound that points past its frame.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Command, HeaderFlag } from "../../../actors/smb/codec/header.ts";
import { NtStatus } from "../../../actors/smb/codec/status.ts";
import { encodeSessionSetupResponse } from "../../../actors/smb/codec/session-setup.ts";
import {
  decodeReadRequest,
  encodeReadResponse,
  encodeWriteResponse,
} from "../../../actors/smb/codec/read-write.ts";
import { FileInfoClass } from "../../../actors/smb/codec/file-info.ts";
import {
  encodeDirectoryEntries,
  encodeQueryDirectoryResponse,
} from "../../../actors/smb/codec/query-directory.ts";
import { encodeIoctlResponse } from "../../../actors/smb/codec/ioctl.ts";
import { frame } from "../../support/smb-hostile-server.ts";
import { at, connect, DEADLINE_MS, rejectsWithin, serve } from "./hostile-harness.ts";

const TREE = { timeoutMs: DEADLINE_MS };

describe("smb client against an authentication out of order", () => {
  it("hostile auth - MORE_PROCESSING_REQUIRED on every round is SMB_NEGOTIATION_FAILED", async () => {
    // The first answer carries the CHALLENGE; every later one repeats it.
    let challenge: Buffer | undefined;
    const server = await serve({
      misbehave: ({ request, valid, answer }) => {
        if (request.header.command !== Command.SESSION_SETUP) return undefined;
        if (challenge === undefined) {
          challenge = valid;
          return undefined;
        }
        return {
          kind: "message",
          message: answer(NtStatus.MORE_PROCESSING_REQUIRED, challenge.subarray(64)),
        };
      },
    });
    await rejectsWithin(() => connect(server), "SMB_NEGOTIATION_FAILED");
  });

  it("hostile auth - SUCCESS before any CHALLENGE is SMB_NEGOTIATION_FAILED", async () => {
    const server = await serve({
      misbehave: at(Command.SESSION_SETUP, ({ answer }) => ({
        kind: "message",
        message: answer(0, encodeSessionSetupResponse({ sessionFlags: 0, securityBuffer: Buffer.alloc(0) })),
      })),
    });
    await rejectsWithin(() => connect(server), "SMB_NEGOTIATION_FAILED");
  });
});

describe("smb client against answers that decode but do not fit", () => {
  it("hostile answers - a WRITE answer acknowledging fewer bytes than sent is UPLOAD_FAILED", async () => {
    const server = await serve({
      misbehave: at(Command.WRITE, ({ request, answer }) => ({
        kind: "message",
        message: answer(0, encodeWriteResponse({ count: 1, remaining: 0 }), {
          treeId: request.header.treeId ?? 0,
        }),
      })),
    });
    const client = await connect(server);
    const tree = await client.treeConnect("ADMIN$", TREE);
    await rejectsWithin(() => tree.writeFile("short.bin", Buffer.alloc(500, 3), TREE), "UPLOAD_FAILED");
    await client.close();
  });

  it("hostile answers - a short READ in the middle of a file is read on, not left as a hole", async () => {
    // 3 MiB read in 1 MiB READs; the first answer carries 10 bytes only (MS-SMB2 2.2.20 lets
    // DataLength be under Length). The client must not return zeros where the rest of it was.
    const content = Buffer.alloc(3 * 1024 * 1024);
    for (let i = 0; i < content.length; i++) content[i] = (i * 7 + (i >> 12)) & 0xff;
    const server = await serve({
      files: { "big.bin": content },
      misbehave: at(Command.READ, ({ request, answer }) => {
        const asked = decodeReadRequest(request.message);
        const at0 = Number(asked.offset);
        const data = content.subarray(at0, at0 + 10);
        return {
          kind: "message",
          message: answer(0, encodeReadResponse({ data, dataRemaining: 0, flags: 0 })),
        };
      }),
    });
    const client = await connect(server);
    const tree = await client.treeConnect("ADMIN$", TREE);
    const outcome: unknown = await tree
      .readFile("big.bin", { timeoutMs: 10_000, maxBytes: 8 * 1024 * 1024 })
      .catch((e: unknown) => e);
    assert.ok(Buffer.isBuffer(outcome), `rejected: ${String(outcome)}`);
    assert.equal(outcome.length, content.length, "a short file returned for a whole one");
    assert.ok(outcome.equals(content), "the content differs from the file's");
    await client.close();
  });

  it("hostile answers - END_OF_FILE in the middle of a file ends it there, with no hole after", async () => {
    const MiB = 1024 * 1024;
    const content = Buffer.alloc(3 * MiB, 0x5a);
    const server = await serve({
      files: { "big.bin": content },
      misbehave: ({ request, answer }) =>
        request.header.command === Command.READ && decodeReadRequest(request.message).offset === BigInt(MiB)
          ? { kind: "message", message: answer(NtStatus.END_OF_FILE) }
          : undefined,
    });
    const client = await connect(server);
    const tree = await client.treeConnect("ADMIN$", TREE);
    const back = await tree.readFile("big.bin", { timeoutMs: 10_000, maxBytes: 8 * MiB });
    assert.equal(back.length, MiB);
    assert.ok(back.equals(content.subarray(0, MiB)));
    await client.close();
  });

  it("hostile answers - a directory listing that never ends is OUTPUT_TOO_LARGE at the client's cap", async () => {
    // The same 1000 entries in answer to every QUERY_DIRECTORY, never STATUS_NO_MORE_FILES.
    const entries = Array.from({ length: 1000 }, (_, i) => ({
      fileIndex: 0,
      creationTime: 0n,
      lastAccessTime: 0n,
      lastWriteTime: 0n,
      changeTime: 0n,
      endOfFile: 1n,
      allocationSize: 0n,
      fileAttributes: 0x80,
      fileName: `f${i}`,
      eaSize: 0,
      shortName: "",
      fileId: 0n,
    }));
    const output = encodeDirectoryEntries(entries, FileInfoClass.FileDirectoryInformation);
    const server = await serve({
      files: { dir: Buffer.alloc(0) },
      misbehave: at(
        Command.QUERY_DIRECTORY,
        ({ answer }) => ({ kind: "message", message: answer(0, encodeQueryDirectoryResponse({ output })) }),
        true,
      ),
    });
    const client = await connect(server);
    const tree = await client.treeConnect("ADMIN$", TREE);
    const { error } = await rejectsWithin(
      () => tree.list("dir", { timeoutMs: 20_000 }),
      "OUTPUT_TOO_LARGE",
      20_000,
    );
    assert.match(error.message, /entries/);
    await client.close();
  });

  it("hostile answers - a pipe answer that overflows for ever is OUTPUT_TOO_LARGE at the client's cap", async () => {
    // FSCTL_PIPE_TRANSCEIVE answered STATUS_BUFFER_OVERFLOW, then every READ too (MS-SMB2 3.3.5.15.8).
    const chunk = Buffer.alloc(64 * 1024, 0x42);
    const server = await serve({
      files: { svcctl: Buffer.alloc(0) },
      misbehave: ({ request, answer }) => {
        const command = request.header.command;
        if (command === Command.IOCTL) {
          const body = encodeIoctlResponse({
            ctlCode: 0x0011c017,
            fileId: request.message.subarray(64 + 8, 64 + 24),
            input: Buffer.alloc(0),
            output: chunk.subarray(0, 4096),
            flags: 0,
          });
          return { kind: "message", message: answer(NtStatus.BUFFER_OVERFLOW, body) };
        }
        if (command === Command.READ) {
          const body = encodeReadResponse({ data: chunk, dataRemaining: 0, flags: 0 });
          return { kind: "message", message: answer(NtStatus.BUFFER_OVERFLOW, body) };
        }
        return undefined;
      },
    });
    const client = await connect(server);
    const ipc = await client.treeConnect("IPC$", TREE);
    const pipe = await ipc.openPipe("svcctl", TREE);
    await rejectsWithin(
      () => pipe.transceive(Buffer.from("bind"), { timeoutMs: 20_000 }),
      "OUTPUT_TOO_LARGE",
      20_000,
    );
    await client.close();
  });

  it("hostile answers - an encrypted frame before any session key is SMB_INTEGRITY_FAILED", async () => {
    const server = await serve({
      misbehave: at(Command.NEGOTIATE, ({ valid }) => ({
        kind: "message",
        // A TRANSFORM_HEADER's ProtocolId (MS-SMB2 2.2.41) in front of the answer.
        message: Buffer.concat([Buffer.from([0xfd, 0x53, 0x4d, 0x42]), Buffer.alloc(48), valid]),
      })),
    });
    await rejectsWithin(() => connect(server), "SMB_INTEGRITY_FAILED");
  });

  it("hostile answers - a compound whose NextCommand points past the frame is MALFORMED_PACKET", async () => {
    const server = await serve({
      misbehave: at(Command.NEGOTIATE, ({ valid }) => {
        const message = Buffer.from(valid);
        message.writeUInt32LE(0x1000, 20);
        return { kind: "message", message };
      }),
    });
    await rejectsWithin(() => connect(server), "MALFORMED_PACKET");
  });

  it("hostile answers - interim answers every 100 ms do not stretch the deadline", async () => {
    let timer: NodeJS.Timeout | undefined;
    const server = await serve({
      misbehave: at(Command.TREE_CONNECT, ({ answer }) => {
        const interim = answer(NtStatus.PENDING, undefined, {
          flags: HeaderFlag.SERVER_TO_REDIR | HeaderFlag.ASYNC_COMMAND,
          asyncId: 5n,
        });
        timer = setInterval(() => server.send(frame(interim)), 100);
        return { kind: "message", message: interim };
      }),
    });
    const client = await connect(server);
    try {
      await rejectsWithin(() => client.treeConnect("ADMIN$", { timeoutMs: 700 }), "TIMEOUT", 700);
    } finally {
      clearInterval(timer);
    }
    await client.close();
  });

  it("hostile answers - a duplicate answer and one to a MessageId never sent are ignored", async () => {
    const server = await serve({
      misbehave: at(Command.TREE_CONNECT, ({ valid }) => {
        const stray = Buffer.from(valid);
        stray.writeBigUInt64LE(0x7fff_0000n, 24);
        return { kind: "raw", bytes: Buffer.concat([frame(stray), frame(valid), frame(valid)]) };
      }),
    });
    const client = await connect(server);
    const tree = await client.treeConnect("ADMIN$", TREE);
    const written = await tree.writeFile("dup.bin", Buffer.from("after the duplicate"), TREE);
    assert.equal(written.bytes, 19);
    assert.deepEqual(server.files.get("dup.bin"), Buffer.from("after the duplicate"));
    await client.close();
  });
});
