/**
 * The SMB client against a server that sends broken frames and messages (test/support/
 * smb-hostile-server.ts): truncated frames, lengths past the end of a message, oversized lengths,
 * garbage after a valid frame. Each call rejects with its typed error within its deadline.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Command } from "../../../actors/smb/codec/header.ts";
import { Dialect } from "../../../actors/smb/codec/negotiate.ts";
import { frame } from "../../support/smb-hostile-server.ts";
import { at, closedWithin, connect, DEADLINE_MS, rejectsWithin, serve } from "./hostile-harness.ts";

const MiB = 1024 * 1024;

/** A frame header (MS-SMB2 2.2.1, RFC 1002 4.3.1) announcing `length` bytes. */
function prefix(length: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(length);
  return b;
}

/** A copy of `message` with the 16 or 32 bits at `at` set to `value`. */
function poke(message: Buffer, offset: number, value: number, bits: 16 | 32 = 32): Buffer {
  const out = Buffer.from(message);
  if (bits === 16) out.writeUInt16LE(value, offset);
  else out.writeUInt32LE(value >>> 0, offset);
  return out;
}

// Offsets in a whole message (64-byte header, then the body: MS-SMB2 2.2.4, 2.2.20).
const NEG_CONTEXT_COUNT = 64 + 6;
const NEG_SECURITY_OFFSET = 64 + 56;
const NEG_SECURITY_LENGTH = 64 + 58;
const NEG_CONTEXT_OFFSET = 64 + 60;
const READ_DATA_OFFSET = 64 + 2;
const READ_DATA_LENGTH = 64 + 4;

/**
 * The memory cap of this file's oversized and truncated cases, in bytes of ArrayBuffer growth
 * over the samples: 8 MiB. The client accepts frames of 128 KiB before NEGOTIATE and at most
 * 8 MiB + 64 KiB after, and refuses longer ones from their 4-byte header; a client that believed
 * a 16 MiB - 1 header, or a 1 GiB DataLength, would allocate at least 16 MiB and cross it. RSS is
 * looser (the heap and code grow with the tests themselves): 32 MiB.
 */
const ARRAY_BUFFER_CAP = 8 * MiB;
const RSS_CAP = 32 * MiB;

/** Samples memoryUsage() every 2 ms, and whenever `sample()` is called, keeping the peaks. */
function memorySampler(): { sample(): void; stop(): { arrayBuffers: number; rss: number } } {
  const base = process.memoryUsage();
  let peakArrayBuffers = 0;
  let peakRss = 0;
  const sample = (): void => {
    const m = process.memoryUsage();
    peakArrayBuffers = Math.max(peakArrayBuffers, m.arrayBuffers - base.arrayBuffers);
    peakRss = Math.max(peakRss, m.rss - base.rss);
  };
  const timer = setInterval(sample, 2);
  return {
    sample,
    stop: () => {
      clearInterval(timer);
      sample();
      return { arrayBuffers: peakArrayBuffers, rss: peakRss };
    },
  };
}

describe("smb client against oversized and truncated frames", () => {
  const memory = memorySampler();

  it("hostile frames - a frame header of 16 MiB - 1 is refused before anything is allocated for it", async () => {
    // The header, then 1 MiB of its body, and the socket left open: a client that allocated the
    // frame would hold 16 MiB and wait for the rest until its deadline.
    const server = await serve({
      misbehave: at(Command.NEGOTIATE, () => ({
        kind: "raw",
        bytes: Buffer.concat([prefix(16 * MiB - 1), Buffer.alloc(MiB)]),
      })),
    });
    const before = process.memoryUsage().arrayBuffers;
    const { elapsedMs } = await rejectsWithin(() => connect(server), "MALFORMED_PACKET");
    const grown = process.memoryUsage().arrayBuffers - before;
    memory.sample();
    assert.ok(elapsedMs < DEADLINE_MS, `refused after ${Math.round(elapsedMs)} ms, not at once`);
    assert.ok(grown < 4 * MiB, `ArrayBuffers grew by ${(grown / MiB).toFixed(1)} MiB`);
    assert.ok(await closedWithin(server), "the client kept the connection open");
  });

  it("hostile frames - a frame header that promises more than is sent, then a close, is CONNECTION_LOST", async () => {
    const server = await serve({
      misbehave: at(Command.NEGOTIATE, ({ valid }) => ({
        kind: "raw",
        bytes: Buffer.concat([prefix(100 * 1024), valid]),
        close: true,
      })),
    });
    await rejectsWithin(() => connect(server), "CONNECTION_LOST");
    memory.sample();
  });

  it("hostile frames - a truncated answer after the session is up is CONNECTION_LOST for the call", async () => {
    const server = await serve({
      misbehave: at(Command.TREE_CONNECT, ({ valid }) => ({
        kind: "raw",
        bytes: frame(valid).subarray(0, 40),
        close: true,
      })),
    });
    const client = await connect(server);
    await rejectsWithin(() => client.treeConnect("ADMIN$", { timeoutMs: DEADLINE_MS }), "CONNECTION_LOST");
    await client.close();
    memory.sample();
  });

  it("hostile frames - a close in the middle of an upload is CONNECTION_LOST, and so is every call after it", async () => {
    const server = await serve({
      maxSize: 64 * 1024,
      misbehave: at(Command.WRITE, () => ({ kind: "close" })),
    });
    const client = await connect(server);
    const tree = await client.treeConnect("ADMIN$", { timeoutMs: DEADLINE_MS });
    await rejectsWithin(
      () => tree.writeFile("up.bin", Buffer.alloc(512 * 1024, 9), { timeoutMs: DEADLINE_MS }),
      "CONNECTION_LOST",
    );
    const { elapsedMs } = await rejectsWithin(
      () => tree.stat("up.bin", { timeoutMs: DEADLINE_MS }),
      "CONNECTION_LOST",
    );
    assert.ok(elapsedMs < DEADLINE_MS, `a call on a lost connection took ${Math.round(elapsedMs)} ms`);
    await client.close();
    memory.sample();
  });

  it("hostile frames - a frame shorter than the SMB2 header is MALFORMED_PACKET", async () => {
    const server = await serve({
      misbehave: at(Command.NEGOTIATE, ({ valid }) => ({ kind: "message", message: valid.subarray(0, 40) })),
    });
    await rejectsWithin(() => connect(server), "MALFORMED_PACKET");
    assert.ok(await closedWithin(server), "the client kept the connection open");
    memory.sample();
  });

  it("hostile frames - a READ answer whose DataLength claims 1 GiB is MALFORMED_PACKET", async () => {
    const server = await serve({
      files: { "a.bin": Buffer.alloc(100, 7) },
      misbehave: at(Command.READ, ({ valid, resign }) => ({
        kind: "message",
        message: resign(poke(valid, READ_DATA_LENGTH, 1 << 30)),
      })),
    });
    const client = await connect(server);
    const tree = await client.treeConnect("ADMIN$", { timeoutMs: DEADLINE_MS });
    await rejectsWithin(
      () => tree.readFile("a.bin", { timeoutMs: DEADLINE_MS, maxBytes: 4096 }),
      "MALFORMED_PACKET",
    );
    await client.close();
    memory.sample();
  });

  it("hostile frames - memory stays under the cap over the oversized and truncated cases", (t) => {
    const peak = memory.stop();
    t.diagnostic(
      `peak growth: ArrayBuffers ${(peak.arrayBuffers / MiB).toFixed(2)} MiB, RSS ${(peak.rss / MiB).toFixed(2)} MiB`,
    );
    assert.ok(
      peak.arrayBuffers < ARRAY_BUFFER_CAP,
      `ArrayBuffers peaked ${(peak.arrayBuffers / MiB).toFixed(1)} MiB up`,
    );
    assert.ok(peak.rss < RSS_CAP, `RSS peaked ${(peak.rss / MiB).toFixed(1)} MiB up`);
  });
});

describe("smb client against lengths past the end of a message", () => {
  it("hostile lengths - a READ answer whose DataLength runs past the end is MALFORMED_PACKET", async () => {
    const server = await serve({
      files: { "a.bin": Buffer.alloc(100, 7) },
      misbehave: at(Command.READ, ({ valid, resign }) => ({
        kind: "message",
        message: resign(poke(valid, READ_DATA_LENGTH, valid.readUInt32LE(READ_DATA_LENGTH) + 1)),
      })),
    });
    const client = await connect(server);
    const tree = await client.treeConnect("ADMIN$", { timeoutMs: DEADLINE_MS });
    await rejectsWithin(
      () => tree.readFile("a.bin", { timeoutMs: DEADLINE_MS, maxBytes: 4096 }),
      "MALFORMED_PACKET",
    );
    await client.close();
  });

  it("hostile lengths - a READ answer whose DataOffset lies past the end is MALFORMED_PACKET", async () => {
    const server = await serve({
      files: { "a.bin": Buffer.alloc(100, 7) },
      misbehave: at(Command.READ, ({ valid, resign }) => {
        const message = Buffer.from(valid);
        message[READ_DATA_OFFSET] = 0xf0;
        return { kind: "message", message: resign(message) };
      }),
    });
    const client = await connect(server);
    const tree = await client.treeConnect("ADMIN$", { timeoutMs: DEADLINE_MS });
    await rejectsWithin(
      () => tree.readFile("a.bin", { timeoutMs: DEADLINE_MS, maxBytes: 4096 }),
      "MALFORMED_PACKET",
    );
    await client.close();
  });

  for (const dialect of [Dialect.SMB_2_1, Dialect.SMB_3_1_1] as const) {
    it(`hostile lengths - a NEGOTIATE answer's security buffer past the end is MALFORMED_PACKET (0x${dialect.toString(16)})`, async () => {
      const server = await serve({
        dialect,
        misbehave: at(Command.NEGOTIATE, ({ valid }) => ({
          kind: "message",
          message: poke(poke(valid, NEG_SECURITY_OFFSET, 128, 16), NEG_SECURITY_LENGTH, 0xff00, 16),
        })),
      });
      await rejectsWithin(() => connect(server), "MALFORMED_PACKET");
    });
  }

  it("hostile lengths - a NEGOTIATE answer counting more contexts than it holds is MALFORMED_PACKET", async () => {
    const server = await serve({
      misbehave: at(Command.NEGOTIATE, ({ valid }) => ({
        kind: "message",
        message: poke(valid, NEG_CONTEXT_COUNT, 16, 16),
      })),
    });
    await rejectsWithin(() => connect(server), "MALFORMED_PACKET");
  });

  it("hostile lengths - a negotiate context whose DataLength runs past the end is MALFORMED_PACKET", async () => {
    const server = await serve({
      misbehave: at(Command.NEGOTIATE, ({ valid }) => {
        const first = valid.readUInt32LE(NEG_CONTEXT_OFFSET);
        return { kind: "message", message: poke(valid, first + 2, 0x4000, 16) };
      }),
    });
    await rejectsWithin(() => connect(server), "MALFORMED_PACKET");
  });

  it("hostile lengths - a NEGOTIATE ContextOffset past the end is MALFORMED_PACKET", async () => {
    const server = await serve({
      misbehave: at(Command.NEGOTIATE, ({ valid }) => ({
        kind: "message",
        message: poke(valid, NEG_CONTEXT_OFFSET, 0x10000),
      })),
    });
    await rejectsWithin(() => connect(server), "MALFORMED_PACKET");
  });
});

describe("smb client against garbage after a valid frame", () => {
  it("hostile garbage - bytes after a valid NEGOTIATE answer fail the connect with MALFORMED_PACKET", async () => {
    const server = await serve({
      misbehave: at(Command.NEGOTIATE, ({ valid }) => ({
        kind: "raw",
        bytes: Buffer.concat([frame(valid), Buffer.from("GARBAGE!GARBAGE!")]),
      })),
    });
    await rejectsWithin(() => connect(server), "MALFORMED_PACKET");
    assert.ok(await closedWithin(server), "the client kept the connection open");
  });

  it("hostile garbage - a short frame after a valid answer fails the next call with MALFORMED_PACKET", async () => {
    const server = await serve({
      misbehave: at(Command.TREE_CONNECT, ({ valid }) => ({
        kind: "raw",
        bytes: Buffer.concat([frame(valid), prefix(8), Buffer.alloc(8, 0xee)]),
      })),
    });
    const client = await connect(server);
    // The valid answer came first: the tree may connect; what follows the garbage may not.
    const tree = await client.treeConnect("ADMIN$", { timeoutMs: DEADLINE_MS });
    await rejectsWithin(
      () => tree.writeFile("x.txt", Buffer.from("x"), { timeoutMs: DEADLINE_MS }),
      "MALFORMED_PACKET",
    );
    assert.ok(await closedWithin(server), "the client kept the connection open");
    await client.close();
  });
});
