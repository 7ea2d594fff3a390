/**
 * The SMB client on an encrypted 3.1.1 session (AES-128-GCM, SMB2_SESSION_FLAG_ENCRYPT_DATA)
 * against a server that tampers with its sealed answers, answers in clear, seals for another
 * session, or claims a 1 GiB OriginalMessageSize.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Command } from "../../../actors/smb/codec/header.ts";
import { flipBit, frame } from "../../support/smb-hostile-server.ts";
import { at, connect, DEADLINE_MS, rejectsWithin, serve } from "./hostile-harness.ts";

const TREE = { timeoutMs: DEADLINE_MS };
/** OriginalMessageSize in a transform header (MS-SMB2 2.2.41): after ProtocolId, Signature, Nonce. */
const ORIGINAL_SIZE_OFFSET = 4 + 16 + 16;

describe("smb client against a server that breaks encryption", () => {
  it("hostile encryption - a well-behaved encrypted session moves a file both ways", async () => {
    const server = await serve({ encrypt: true });
    const client = await connect(server);
    assert.equal(client.encrypting, true);
    const tree = await client.treeConnect("ADMIN$", TREE);
    await tree.writeFile("e.bin", Buffer.from("sealed both ways"), TREE);
    assert.deepEqual(
      await tree.readFile("e.bin", { ...TREE, maxBytes: 100 }),
      Buffer.from("sealed both ways"),
    );
    assert.ok(server.requests.some((r) => r.header.command === Command.WRITE));
    await client.close();
  });

  it("hostile encryption - one bit flipped in a sealed answer's ciphertext is SMB_INTEGRITY_FAILED", async () => {
    const server = await serve({
      encrypt: true,
      misbehave: at(Command.TREE_CONNECT, ({ valid, seal, sealed }) => {
        assert.ok(sealed, "the request came in clear");
        const sealedAnswer = seal(valid);
        return { kind: "raw", bytes: frame(flipBit(sealedAnswer, sealedAnswer.length - 3, 5)) };
      }),
    });
    const client = await connect(server);
    await rejectsWithin(() => client.treeConnect("ADMIN$", TREE), "SMB_INTEGRITY_FAILED");
    await client.close();
  });

  it("hostile encryption - an answer in clear on an encrypted session is SMB_INTEGRITY_FAILED", async () => {
    const server = await serve({
      encrypt: true,
      misbehave: at(Command.TREE_CONNECT, ({ valid }) => ({ kind: "message", message: valid, clear: true })),
    });
    const client = await connect(server);
    await rejectsWithin(() => client.treeConnect("ADMIN$", TREE), "SMB_INTEGRITY_FAILED");
    await client.close();
  });

  it("hostile encryption - an answer sealed for another session is SMB_INTEGRITY_FAILED", async () => {
    const server = await serve({
      encrypt: true,
      misbehave: at(Command.TREE_CONNECT, ({ valid, seal }) => ({
        kind: "raw",
        bytes: frame(seal(valid, 0x99n)),
      })),
    });
    const client = await connect(server);
    await rejectsWithin(() => client.treeConnect("ADMIN$", TREE), "SMB_INTEGRITY_FAILED");
    await client.close();
  });

  it("hostile encryption - a transform header claiming 1 GiB is refused before decrypting", async () => {
    const server = await serve({
      encrypt: true,
      misbehave: at(Command.TREE_CONNECT, ({ valid, seal }) => {
        const sealedAnswer = seal(valid);
        sealedAnswer.writeUInt32LE(1 << 30, ORIGINAL_SIZE_OFFSET);
        return { kind: "raw", bytes: frame(sealedAnswer) };
      }),
    });
    const client = await connect(server);
    const before = process.memoryUsage().arrayBuffers;
    await rejectsWithin(() => client.treeConnect("ADMIN$", TREE), "MALFORMED_PACKET");
    assert.ok(
      process.memoryUsage().arrayBuffers - before < 4 * 1024 * 1024,
      "ArrayBuffers grew by 4 MiB or more",
    );
    await client.close();
  });

  it("hostile encryption - a sealed frame shorter than an SMB2 header is refused typed", async () => {
    const server = await serve({
      encrypt: true,
      misbehave: at(Command.TREE_CONNECT, ({ valid, seal }) => ({
        kind: "raw",
        bytes: frame(seal(valid.subarray(0, 20))),
      })),
    });
    const client = await connect(server);
    await rejectsWithin(() => client.treeConnect("ADMIN$", TREE), "MALFORMED_PACKET");
    await client.close();
  });
});
