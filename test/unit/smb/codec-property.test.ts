/**
 * Properties of every SMB2 message codec, requests and responses: decoding what was encoded gives
 * the value back, and no input (random bytes after a valid header and StructureSize, or a valid
 * message truncated, bit-flipped or with a random field overwritten) makes a decoder throw
 * anything but MalformedPacketError.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { MalformedPacketError } from "../../../actors/wire/bytes.ts";
import { encodeHeader, HeaderFlag } from "../../../actors/smb/codec/header.ts";
import {
  decodeErrorContexts,
  decodeErrorResponse,
  encodeErrorContexts,
  encodeErrorResponse,
} from "../../../actors/smb/codec/error.ts";
import { decodeDirectoryEntries, encodeDirectoryEntries } from "../../../actors/smb/codec/query-directory.ts";
import { codecs, type CodecPair } from "./codecs.ts";
import { bytes, directoryEntries, errorContexts, errorResponse, messages } from "./arbitraries.ts";

const runs = { numRuns: 300 };

function header(command: number, response: boolean): Buffer {
  return encodeHeader({
    creditCharge: 1,
    status: 0,
    command,
    credits: 1,
    flags: response ? HeaderFlag.SERVER_TO_REDIR : 0,
    nextCommand: 0,
    messageId: 7n,
    treeId: 1,
    sessionId: 9n,
    signature: Buffer.alloc(16),
  });
}

/** Runs `decode`, and fails on any exception but MalformedPacketError. */
function decodesOrRefuses(decode: (m: Buffer) => unknown, message: Buffer): void {
  try {
    decode(message);
  } catch (err) {
    if (!(err instanceof MalformedPacketError)) {
      assert.fail(`threw ${String(err)} on ${message.toString("hex")}`);
    }
  }
}

/** A valid message changed at random: cut short, a byte flipped, or a 16/32-bit field overwritten. */
const mutation = fc.oneof(
  fc.record({ kind: fc.constant("truncate" as const), at: fc.nat() }),
  fc.record({ kind: fc.constant("flip" as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({
    kind: fc.constant("field" as const),
    at: fc.nat(),
    value: fc.oneof(
      fc.integer({ min: 0, max: 0xffffffff }),
      fc.constantFrom(0, 1, 0x40, 0x48, 0xffff, 0xffffffff),
    ),
    width: fc.constantFrom(2, 4),
  }),
  fc.record({ kind: fc.constant("extend" as const), extra: bytes(64, 1) }),
);

type Mutation = typeof mutation extends fc.Arbitrary<infer T> ? T : never;

function mutate(message: Buffer, m: Mutation): Buffer {
  const copy = Buffer.from(message);
  // Mutations land in the body: the header is the header codec's concern.
  const bodyAt = (n: number, width = 1): number => 64 + (n % Math.max(1, copy.length - 64 - width + 1));
  switch (m.kind) {
    case "truncate":
      return copy.subarray(0, m.at % (copy.length + 1));
    case "flip": {
      const at = bodyAt(m.at);
      copy[at] = (copy[at] ?? 0) ^ (1 << m.bit);
      return copy;
    }
    case "field": {
      if (copy.length - 64 < m.width) return copy;
      const at = bodyAt(m.at, m.width);
      if (m.width === 2) copy.writeUInt16LE(m.value & 0xffff, at);
      else copy.writeUInt32LE(m.value >>> 0, at);
      return copy;
    }
    case "extend":
      return Buffer.concat([copy, m.extra]);
  }
}

function properties(name: string, pair: CodecPair, arb: fc.Arbitrary<object>, head: Buffer): void {
  const message = (v: object): Buffer => Buffer.concat([head, pair.encode(v as never)]);

  it(`${name} - decoding what was encoded gives the value back`, () => {
    fc.assert(
      fc.property(arb, (v) => {
        assert.deepStrictEqual(pair.decode(message(v)), v);
      }),
      runs,
    );
  });

  it(`${name} - a mutated or truncated message decodes or is refused as malformed`, () => {
    fc.assert(
      fc.property(arb, fc.array(mutation, { minLength: 1, maxLength: 3 }), (v, ms) => {
        let m = message(v);
        for (const one of ms) m = mutate(m, one);
        decodesOrRefuses(pair.decode, m);
      }),
      runs,
    );
  });

  it(`${name} - random bytes after the header decode or are refused as malformed`, () => {
    const structureSize = pair.encode(fc.sample(arb, 1)[0] as never).readUInt16LE(0);
    const sized = bytes(200).map((b) => {
      const s = Buffer.from([structureSize & 0xff, structureSize >> 8]);
      return Buffer.concat([head, s, b]);
    });
    fc.assert(
      fc.property(fc.oneof(sized, bytes(300)), (m) => decodesOrRefuses(pair.decode, m)),
      runs,
    );
  });
}

describe("smb codec properties", () => {
  for (const [command, codec] of codecs) {
    const arbs = messages.get(command);
    assert.ok(arbs, `an arbitrary for command ${command}`);
    properties(codec.request.name, codec.request, arbs.request, header(command, false));
    if (codec.response) {
      assert.ok(arbs.response, `an arbitrary for the response of command ${command}`);
      properties(codec.response.name, codec.response, arbs.response, header(command, true));
    }
  }

  properties(
    "error response",
    {
      name: "error response",
      decode: decodeErrorResponse,
      encode: encodeErrorResponse,
    },
    errorResponse,
    header(5, true),
  );

  it("directory entries - decoding what was encoded gives the entries back", () => {
    fc.assert(
      fc.property(directoryEntries, ({ infoClass, entries }) => {
        assert.deepStrictEqual(
          decodeDirectoryEntries(encodeDirectoryEntries(entries, infoClass), infoClass),
          entries,
        );
      }),
      runs,
    );
  });

  it("directory entries - random or mutated chains decode or are refused as malformed", () => {
    fc.assert(
      fc.property(
        directoryEntries,
        bytes(400),
        fc.nat(),
        fc.integer({ min: 0, max: 0xffffffff }),
        (d, noise, at, value) => {
          const valid = encodeDirectoryEntries(d.entries, d.infoClass);
          if (valid.length >= 4) valid.writeUInt32LE(value, (at % (valid.length - 3)) & ~3);
          decodesOrRefuses((b) => decodeDirectoryEntries(b, d.infoClass), valid);
          decodesOrRefuses((b) => decodeDirectoryEntries(b, d.infoClass), noise);
        },
      ),
      runs,
    );
  });

  it("error contexts - decoding what was encoded gives the contexts back; random data is refused cleanly", () => {
    fc.assert(
      fc.property(errorContexts, bytes(100), fc.integer({ min: 0, max: 255 }), (contexts, noise, count) => {
        assert.deepStrictEqual(decodeErrorContexts(encodeErrorContexts(contexts), contexts.length), contexts);
        decodesOrRefuses((b) => decodeErrorContexts(b, count), noise);
      }),
      runs,
    );
  });
});
