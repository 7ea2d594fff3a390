/**
 * REnumServicesStatusW's response (MS-SCMR 3.1.4.14) and the ENUM_SERVICE_STATUSW records of its
 * lpBuffer (MS-SCMR 2.2.11): a stub assembled by hand with the strings where Windows puts them
 * (from the buffer's end down, in reverse order), truncations, offsets and counts out of range,
 * decode(encode(x)) for random answers, and random bytes giving only MalformedPacketError.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import {
  decodeEnumServiceRecords,
  decodeEnumServicesResponse,
  encodeEnumServiceRecords,
  encodeEnumServicesResponse,
  ENUM_SERVICE_STATUSW_SIZE,
  MAX_ENUM_STRING_UNITS,
  type EnumServiceStatus,
  type EnumServicesResponse,
} from "../../../actors/scmr/enum-services.ts";
import type { ServiceStatus } from "../../../actors/scmr/responses.ts";
import { MalformedPacketError } from "../../../actors/wire/bytes.ts";

const u32 = (v: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(v >>> 0);
  return b;
};

const RUNNING: ServiceStatus = {
  serviceType: 0x10,
  currentState: 4,
  controlsAccepted: 1,
  win32ExitCode: 0,
  serviceSpecificExitCode: 0,
  checkPoint: 0,
  waitHint: 0,
};
const STOPPED: ServiceStatus = { ...RUNNING, serviceType: 0x20, currentState: 1, controlsAccepted: 0 };

const statusBytes = (s: ServiceStatus): Buffer =>
  Buffer.concat(
    [
      s.serviceType,
      s.currentState,
      s.controlsAccepted,
      s.win32ExitCode,
      s.serviceSpecificExitCode,
      s.checkPoint,
      s.waitHint,
    ].map(u32),
  );

/**
 * A 128-byte lpBuffer as Windows fills one: two 36-byte records, then zeros, then the strings
 * packed from the end down: "A1" at 122, "Alpha" at 110, "b" at 106, "Beta" at 96.
 */
function windowsLikeBuffer(): Buffer {
  const buffer = Buffer.alloc(128);
  Buffer.concat([u32(122), u32(110), statusBytes(RUNNING), u32(106), u32(96), statusBytes(STOPPED)]).copy(
    buffer,
    0,
  );
  for (const [at, text] of [
    [122, "A1"],
    [110, "Alpha"],
    [106, "b"],
    [96, "Beta"],
  ] as const) {
    buffer.write(`${text}\0`, at, "utf16le");
  }
  return buffer;
}

/** The stub around an lpBuffer: max_count, the bytes, pcbBytesNeeded, count, resume index, return. */
function stubOf(buffer: Buffer, count: number, tail = { needed: 500, resume: 2, returnValue: 234 }): Buffer {
  return Buffer.concat([
    u32(buffer.length),
    buffer,
    u32(tail.needed),
    u32(count),
    u32(0x00020000),
    u32(tail.resume),
    u32(tail.returnValue),
  ]);
}

const isMalformed = (err: unknown): boolean =>
  err instanceof MalformedPacketError && err.code === "MALFORMED_PACKET";

const dword = fc.nat({ max: 0xffffffff });
const status: fc.Arbitrary<ServiceStatus> = fc.record(
  {
    serviceType: dword,
    currentState: dword,
    controlsAccepted: dword,
    win32ExitCode: dword,
    serviceSpecificExitCode: dword,
    checkPoint: dword,
    waitHint: dword,
  },
  { noNullPrototype: true },
);
const text = fc.string({ unit: "binary", maxLength: 40 }).filter((t) => !t.includes("\0"));
const service: fc.Arbitrary<EnumServiceStatus> = fc.record(
  { name: text, displayName: text, status },
  { noNullPrototype: true },
);

describe("scmr enum services", () => {
  it("scmr enum services - a Windows-like buffer: strings from the end, in reverse order", () => {
    assert.deepEqual(decodeEnumServicesResponse(stubOf(windowsLikeBuffer(), 2)), {
      services: [
        { name: "A1", displayName: "Alpha", status: RUNNING },
        { name: "b", displayName: "Beta", status: STOPPED },
      ],
      bufferSize: 128,
      bytesNeeded: 500,
      resumeIndex: 2,
      returnValue: 234,
    });
  });

  it("scmr enum services - ERROR_MORE_DATA to cbBufSize 0: an empty buffer, no service, a null resume index", () => {
    const stub = Buffer.from("00000000" + "36010000" + "00000000" + "00000000" + "ea000000", "hex");
    assert.deepEqual(decodeEnumServicesResponse(stub, 0), {
      services: [],
      bufferSize: 0,
      bytesNeeded: 310,
      resumeIndex: null,
      returnValue: 234,
    });
  });

  it("scmr enum services - every truncation of a good stub, and a byte more, is MalformedPacketError", () => {
    const good = stubOf(windowsLikeBuffer(), 2);
    for (let n = 0; n < good.length; n++) {
      assert.throws(() => decodeEnumServicesResponse(good.subarray(0, n)), isMalformed, `${n} bytes`);
    }
    assert.throws(() => decodeEnumServicesResponse(Buffer.concat([good, Buffer.alloc(1)])), isMalformed);
  });

  it("scmr enum services - string offsets past the end, inside the records, or without a NUL are refused", () => {
    const cases: [string, (b: Buffer) => void][] = [
      ["name offset at the buffer's end", (b) => b.writeUInt32LE(128, 0)],
      ["name offset far past the end", (b) => b.writeUInt32LE(0xfffffff0, 0)],
      ["display name offset inside the records", (b) => b.writeUInt32LE(40, 4)],
      ["display name offset 0 (a NULL pointer's value)", (b) => b.writeUInt32LE(0, 40)],
      ["last byte, half a unit", (b) => b.writeUInt32LE(127, 36)],
      ["no NUL before the end", (b) => b.write("xyz", 122, "utf16le")],
    ];
    for (const [what, spoil] of cases) {
      const buffer = windowsLikeBuffer();
      spoil(buffer);
      assert.throws(() => decodeEnumServicesResponse(stubOf(buffer, 2)), isMalformed, what);
      assert.throws(() => decodeEnumServiceRecords(buffer, 2), isMalformed, what);
    }
  });

  it("scmr enum services - counts over what the buffer holds are refused before reading", () => {
    const buffer = windowsLikeBuffer();
    assert.throws(() => decodeEnumServicesResponse(stubOf(buffer, 4)), /do not fit in 128 bytes/);
    assert.throws(() => decodeEnumServiceRecords(buffer, 0xffffffff), isMalformed);
    assert.throws(() => decodeEnumServiceRecords(Buffer.alloc(35), 1), isMalformed);
    assert.deepEqual(decodeEnumServiceRecords(Buffer.alloc(0), 0), []);
    // lpBuffer's max_count past the stub, and over the cbBufSize the call sent.
    const huge = Buffer.concat([u32(0x7fffffff), Buffer.alloc(24)]);
    assert.throws(() => decodeEnumServicesResponse(huge), isMalformed);
    assert.throws(() => decodeEnumServicesResponse(stubOf(buffer, 2), 64), /over the cap of 64/);
  });

  it("scmr enum services - a string over the cap is refused, one at the cap taken", () => {
    const at = ENUM_SERVICE_STATUSW_SIZE;
    const build = (units: number): Buffer => {
      const buffer = Buffer.alloc(at + (units + 1) * 2 + 4);
      Buffer.concat([u32(at), u32(at + (units + 1) * 2), statusBytes(RUNNING)]).copy(buffer);
      buffer.write("x".repeat(units), at, "utf16le");
      return buffer;
    };
    const atCap = decodeEnumServiceRecords(build(MAX_ENUM_STRING_UNITS), 1);
    assert.equal(atCap[0]?.name.length, MAX_ENUM_STRING_UNITS);
    assert.equal(atCap[0]?.displayName, "");
    assert.throws(() => decodeEnumServiceRecords(build(MAX_ENUM_STRING_UNITS + 1), 1), /over the cap/);
  });

  it("scmr enum services - the encoder refuses what the decoder could not give back", () => {
    assert.throws(
      () => encodeEnumServiceRecords([{ name: "a\0b", displayName: "", status: RUNNING }]),
      isMalformed,
    );
    assert.throws(
      () => encodeEnumServiceRecords([{ name: "a", displayName: "b", status: RUNNING }], 40),
      isMalformed,
    );
  });

  it("scmr enum services - records round-trip, packed or padded", () => {
    fc.assert(
      fc.property(fc.array(service, { maxLength: 8 }), fc.nat({ max: 64 }), (services, slack) => {
        const packed = encodeEnumServiceRecords(services);
        assert.deepEqual(decodeEnumServiceRecords(packed, services.length), services);
        const padded = encodeEnumServiceRecords(services, packed.length + slack);
        assert.equal(padded.length, packed.length + slack);
        assert.deepEqual(decodeEnumServiceRecords(padded, services.length), services);
      }),
    );
  });

  it("scmr enum services - responses round-trip", () => {
    const response: fc.Arbitrary<EnumServicesResponse> = fc
      .record(
        {
          services: fc.array(service, { maxLength: 6 }),
          slack: fc.nat({ max: 32 }),
          bytesNeeded: dword,
          resumeIndex: fc.option(dword, { nil: null }),
          returnValue: dword,
        },
        { noNullPrototype: true },
      )
      .map(({ slack, ...r }) => ({ ...r, bufferSize: encodeEnumServiceRecords(r.services).length + slack }));
    fc.assert(
      fc.property(response, (r) => {
        assert.deepEqual(decodeEnumServicesResponse(encodeEnumServicesResponse(r)), r);
      }),
    );
  });

  it("scmr enum services - a good stub with bytes overwritten gives a value or MalformedPacketError", () => {
    const good = stubOf(windowsLikeBuffer(), 2);
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat({ max: good.length - 1 }), fc.nat({ max: 255 })), {
          minLength: 1,
          maxLength: 4,
        }),
        (edits) => {
          const stub = Buffer.from(good);
          for (const [at, byte] of edits) stub[at] = byte;
          try {
            decodeEnumServicesResponse(stub);
          } catch (err) {
            assert.ok(err instanceof MalformedPacketError, String(err));
          }
        },
      ),
      { numRuns: 2000 },
    );
  });

  it("scmr enum services - random bytes give a value or MalformedPacketError, nothing else", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.nat({ max: 6 }), (bytes, count) => {
        for (const decode of [
          () => decodeEnumServicesResponse(Buffer.from(bytes)),
          () => decodeEnumServiceRecords(Buffer.from(bytes), count),
        ]) {
          try {
            decode();
          } catch (err) {
            assert.ok(err instanceof MalformedPacketError, String(err));
          }
        }
      }),
      { numRuns: 2000 },
    );
  });
});
