/**
 * Property: whatever bytes a server answers NEGOTIATE with, the connect rejects with one of the
 * client's typed errors, never another exception, and never hangs. The server closes after its
 * answer, so a client that waits for more would show as a TIMEOUT, which is not allowed here.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { Command } from "../../../actors/smb/codec/header.ts";
import { frame, type HostileReply, type HostileTurn } from "../../support/smb-hostile-server.ts";
import { connect, MARGIN_MS, serve } from "./hostile-harness.ts";

/** Each run's deadline: short, so that 200 runs stay quick even if some hang. */
const RUN_DEADLINE_MS = 1_500;

/** What the connect may fail with when the bytes happen to decode partly or wholly. */
const ALLOWED = new Set(["MALFORMED_PACKET", "CONNECTION_LOST", "SMB_NEGOTIATION_FAILED"]);

/** How the random bytes become an answer: each reaches a different layer of the client. */
type Shape =
  /** Straight onto the socket: the deframer's case. */
  | { readonly kind: "raw"; readonly bytes: Uint8Array }
  /** One frame of random bytes: the header decoder's. */
  | { readonly kind: "framed"; readonly bytes: Uint8Array }
  /** The valid header and a random body: the NEGOTIATE response decoder's. */
  | { readonly kind: "body"; readonly bytes: Uint8Array }
  /** The valid answer with a few bytes of its body replaced: the checks after decoding. */
  | { readonly kind: "mutated"; readonly edits: readonly (readonly [number, number])[] };

const shape: fc.Arbitrary<Shape> = fc.oneof(
  fc.record({ kind: fc.constant("raw" as const), bytes: fc.uint8Array({ maxLength: 300 }) }),
  fc.record({ kind: fc.constant("framed" as const), bytes: fc.uint8Array({ minLength: 1, maxLength: 300 }) }),
  fc.record({ kind: fc.constant("body" as const), bytes: fc.uint8Array({ maxLength: 300 }) }),
  fc.record({
    kind: fc.constant("mutated" as const),
    edits: fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 6 }),
  }),
);

function reply(s: Shape, { valid }: HostileTurn): HostileReply {
  switch (s.kind) {
    case "raw":
      return { kind: "raw", bytes: Buffer.from(s.bytes), close: true };
    case "framed":
      return { kind: "raw", bytes: frame(Buffer.from(s.bytes)), close: true };
    case "body":
      return {
        kind: "message",
        message: Buffer.concat([valid.subarray(0, 64), Buffer.from(s.bytes)]),
        close: true,
      };
    case "mutated": {
      const message = Buffer.from(valid);
      const body = message.length - 64;
      for (const [at, value] of s.edits) message[64 + (at % body)] = value;
      return { kind: "message", message, close: true };
    }
  }
}

describe("smb client against random NEGOTIATE answers", () => {
  it("hostile property - random bytes as the NEGOTIATE answer reject with a typed error, never hang", async () => {
    const server = await serve();
    await fc.assert(
      fc.asyncProperty(shape, async (s) => {
        let answered = false;
        server.misbehave = (turn) => {
          if (turn.request.header.command !== Command.NEGOTIATE || answered) return { kind: "close" };
          answered = true;
          return reply(s, turn);
        };
        const start = performance.now();
        const outcome = await connect(server, RUN_DEADLINE_MS).then(
          async (client) => {
            await client.close();
            return undefined;
          },
          (e: unknown) => e,
        );
        const elapsed = performance.now() - start;
        assert.ok(outcome instanceof Error, "the connect succeeded on a server that closes after NEGOTIATE");
        const code = (outcome as Error & { code?: unknown }).code;
        assert.ok(typeof code === "string" && ALLOWED.has(code), `${outcome.name}: ${outcome.message}`);
        assert.ok(elapsed < RUN_DEADLINE_MS + MARGIN_MS, `took ${Math.round(elapsed)} ms`);
      }),
      { numRuns: 200 },
    );
  });
});
