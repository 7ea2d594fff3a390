/**
 * The SMB client against a server that breaks signing, grants no credits, never answers, or
 * answers STATUS_PENDING and then nothing (test/support/smb-hostile-server.ts). Each call rejects
 * with its typed error within its deadline, and a request given up is cancelled on the wire.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Command, HeaderFlag, SIGNATURE_OFFSET } from "../../../actors/smb/codec/header.ts";
import { Dialect } from "../../../actors/smb/codec/negotiate.ts";
import { NtStatus } from "../../../actors/smb/codec/status.ts";
import { flipBit, type HostileTurn } from "../../support/smb-hostile-server.ts";
import {
  at,
  closedWithin,
  connect,
  DEADLINE_MS,
  isCancel,
  MARGIN_MS,
  rejectsWithin,
  seen,
  serve,
} from "./hostile-harness.ts";

const TREE = { timeoutMs: DEADLINE_MS };

/** The answer with its SIGNED flag cleared and its signature zeroed. */
function unsigned({ valid }: HostileTurn): Buffer {
  const message = Buffer.from(valid);
  message.writeUInt32LE((message.readUInt32LE(16) & ~HeaderFlag.SIGNED) >>> 0, 16);
  message.fill(0, SIGNATURE_OFFSET, SIGNATURE_OFFSET + 16);
  return message;
}

describe("smb client against bad signatures", () => {
  for (const dialect of [Dialect.SMB_2_1, Dialect.SMB_3_1_1] as const) {
    const d = `0x${dialect.toString(16)}`;

    it(`hostile signing - one bit flipped in a signed answer's signature is SMB_INTEGRITY_FAILED (${d})`, async () => {
      const server = await serve({
        dialect,
        misbehave: at(Command.TREE_CONNECT, ({ valid }) => {
          assert.notEqual(valid.readUInt32LE(16) & HeaderFlag.SIGNED, 0, "the valid answer is signed");
          return { kind: "message", message: flipBit(valid, SIGNATURE_OFFSET + 7, 3) };
        }),
      });
      const client = await connect(server);
      await rejectsWithin(() => client.treeConnect("ADMIN$", TREE), "SMB_INTEGRITY_FAILED");
      await client.close();
    });

    it(`hostile signing - one bit flipped in a signed answer's body is SMB_INTEGRITY_FAILED (${d})`, async () => {
      const server = await serve({
        dialect,
        misbehave: at(Command.TREE_CONNECT, ({ valid }) => ({
          kind: "message",
          message: flipBit(valid, valid.length - 1, 0),
        })),
      });
      const client = await connect(server);
      await rejectsWithin(() => client.treeConnect("ADMIN$", TREE), "SMB_INTEGRITY_FAILED");
      await client.close();
    });

    it(`hostile signing - an unsigned answer while signing is on is SMB_INTEGRITY_FAILED (${d})`, async () => {
      const server = await serve({
        dialect,
        misbehave: at(Command.TREE_CONNECT, (turn) => ({ kind: "message", message: unsigned(turn) })),
      });
      const client = await connect(server);
      assert.equal(client.signing, true);
      await rejectsWithin(() => client.treeConnect("ADMIN$", TREE), "SMB_INTEGRITY_FAILED");
      await client.close();
    });

    it(`hostile signing - a final SESSION_SETUP answer with a flipped signature fails the connect (${d})`, async () => {
      const server = await serve({
        dialect,
        misbehave: ({ request, valid }) =>
          request.header.command === Command.SESSION_SETUP &&
          (valid.readUInt32LE(16) & HeaderFlag.SIGNED) !== 0
            ? { kind: "message", message: flipBit(valid, SIGNATURE_OFFSET, 0) }
            : undefined,
      });
      await rejectsWithin(() => connect(server), "SMB_INTEGRITY_FAILED");
    });

    it(`hostile signing - an unsigned final SESSION_SETUP answer fails the connect (${d})`, async () => {
      const server = await serve({
        dialect,
        misbehave: (turn) =>
          turn.request.header.command === Command.SESSION_SETUP &&
          (turn.valid.readUInt32LE(16) & HeaderFlag.SIGNED) !== 0
            ? { kind: "message", message: unsigned(turn) }
            : undefined,
      });
      await rejectsWithin(() => connect(server), "SMB_INTEGRITY_FAILED");
    });
  }

  it("hostile signing - a WRITE answer re-signed with a wrong key is SMB_INTEGRITY_FAILED", async () => {
    // A valid-looking signature (right length, SIGNED set) that is not the session's.
    const server = await serve({
      misbehave: at(Command.WRITE, ({ valid }) => {
        const message = Buffer.from(valid);
        message.fill(0xa5, SIGNATURE_OFFSET, SIGNATURE_OFFSET + 16);
        return { kind: "message", message };
      }),
    });
    const client = await connect(server);
    const tree = await client.treeConnect("ADMIN$", TREE);
    await rejectsWithin(() => tree.writeFile("w.bin", Buffer.alloc(1000, 1), TREE), "SMB_INTEGRITY_FAILED");
    await client.close();
  });
});

describe("smb client against a server that grants no credits", () => {
  it("hostile credits - CreditResponse 0 on every answer fails the connect with SMB_NO_CREDITS, not a hang", async () => {
    const server = await serve({ credits: () => 0 });
    const { elapsedMs } = await rejectsWithin(() => connect(server), "SMB_NO_CREDITS");
    assert.ok(
      elapsedMs < DEADLINE_MS,
      `took ${Math.round(elapsedMs)} ms: it waited for credits that could not come`,
    );
    assert.ok(await closedWithin(server), "the client kept the connection open");
  });

  it("hostile credits - credits stopping after TREE_CONNECT fail the next call with SMB_NO_CREDITS", async () => {
    // One credit per answer (what each request spent) until the tree, none from then on.
    const server = await serve({ credits: (r) => (r.header.command >= Command.TREE_CONNECT ? 0 : 1) });
    const client = await connect(server);
    const tree = await client.treeConnect("ADMIN$", TREE);
    const { elapsedMs } = await rejectsWithin(
      () => tree.writeFile("c.bin", Buffer.from("c"), TREE),
      "SMB_NO_CREDITS",
    );
    assert.ok(elapsedMs < DEADLINE_MS, `took ${Math.round(elapsedMs)} ms`);
    await client.close();
  });
});

describe("smb client against a server that does not answer", () => {
  it("hostile silence - no NEGOTIATE answer: TIMEOUT at the deadline, and the socket closed", async () => {
    const server = await serve({ misbehave: () => ({ kind: "silence" }) });
    const deadline = 800;
    const { elapsedMs } = await rejectsWithin(() => connect(server, deadline), "TIMEOUT", deadline);
    assert.ok(elapsedMs >= deadline - 50, `timed out after ${Math.round(elapsedMs)} ms, before its deadline`);
    assert.ok(await closedWithin(server), "the socket stayed open after the timeout");
  });

  it("hostile silence - no second SESSION_SETUP answer: TIMEOUT at the deadline, and the socket closed", async () => {
    let rounds = 0;
    const server = await serve({
      misbehave: ({ request }) =>
        request.header.command === Command.SESSION_SETUP && ++rounds === 2 ? { kind: "silence" } : undefined,
    });
    await rejectsWithin(() => connect(server, 800), "TIMEOUT", 800);
    assert.ok(await closedWithin(server), "the socket stayed open after the timeout");
  });

  it("hostile silence - no TREE_CONNECT answer: TIMEOUT at the call's deadline, and a CANCEL for it", async () => {
    const server = await serve({ misbehave: at(Command.TREE_CONNECT, () => ({ kind: "silence" })) });
    const client = await connect(server);
    await rejectsWithin(() => client.treeConnect("ADMIN$", { timeoutMs: 500 }), "TIMEOUT", 500);
    const asked = server.requests.find((r) => r.header.command === Command.TREE_CONNECT);
    const cancel = await seen(server, isCancel);
    assert.ok(asked && cancel, "no CANCEL reached the server");
    assert.equal(cancel.header.messageId, asked.header.messageId);
    await client.close();
  });
});

describe("smb client against STATUS_PENDING and then nothing", () => {
  const ASYNC_ID = 0x7700_0000_0042n;
  /** An interim answer (MS-SMB2 3.3.4.2): STATUS_PENDING, ASYNC_COMMAND and an AsyncId. */
  const pending = (): ReturnType<typeof at> =>
    at(Command.CREATE, ({ answer }) => ({
      kind: "message",
      message: answer(NtStatus.PENDING, undefined, {
        flags: HeaderFlag.SERVER_TO_REDIR | HeaderFlag.ASYNC_COMMAND,
        asyncId: ASYNC_ID,
      }),
    }));

  it("hostile pending - the deadline holds after an interim answer, and the client sends an async CANCEL", async () => {
    const server = await serve({ misbehave: pending() });
    const client = await connect(server);
    const tree = await client.treeConnect("ADMIN$", TREE);
    await rejectsWithin(() => tree.writeFile("p.bin", Buffer.from("p"), { timeoutMs: 600 }), "TIMEOUT", 600);
    const create = server.requests.find((r) => r.header.command === Command.CREATE);
    const cancel = await seen(server, isCancel);
    assert.ok(create && cancel, "no CANCEL reached the server");
    assert.notEqual(cancel.header.flags & HeaderFlag.ASYNC_COMMAND, 0, "the CANCEL is not async");
    assert.equal(cancel.header.asyncId, ASYNC_ID);
    assert.equal(cancel.header.messageId, create.header.messageId);
    await client.close();
  });

  it("hostile pending - an abort after an interim answer rejects with its reason at once and sends CANCEL", async () => {
    const server = await serve({ misbehave: pending() });
    const client = await connect(server);
    const tree = await client.treeConnect("ADMIN$", TREE);
    const controller = new AbortController();
    const reason = new Error("stopped by the test");
    setTimeout(() => controller.abort(reason), 200);
    const started = performance.now();
    const error = await tree
      .writeFile("p.bin", Buffer.from("p"), { timeoutMs: 10_000, signal: controller.signal })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    const elapsedMs = performance.now() - started;
    assert.equal(error, reason, "rejected with something else than the abort's reason");
    assert.ok(elapsedMs < 200 + MARGIN_MS, `rejected ${Math.round(elapsedMs)} ms after the call`);
    const cancel = await seen(server, isCancel);
    assert.ok(cancel, "no CANCEL reached the server");
    assert.equal(cancel.header.asyncId, ASYNC_ID);
    await client.close();
  });
});
