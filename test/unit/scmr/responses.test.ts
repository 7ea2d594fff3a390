/**
 * svcctl response stubs: decode(encode(x)) deep-equals x for every response kind, hand vectors
 * of two answers, random bytes give only MalformedPacketError, and expectSuccess turns a non-zero
 * return value into a typed ScmError.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { MalformedPacketError } from "../../../actors/wire/bytes.ts";
import {
  decodeCreateServiceResponse,
  decodeHandleResponse,
  decodeReturnOnlyResponse,
  decodeStatusResponse,
  encodeCreateServiceResponse,
  encodeHandleResponse,
  encodeReturnOnlyResponse,
  encodeStatusResponse,
  expectSuccess,
  type ServiceStatus,
} from "../../../actors/scmr/responses.ts";
import { ScmError, Win32Error } from "../../../actors/scmr/win32-errors.ts";

const dword = fc.nat({ max: 0xffffffff });
const handle = fc.uint8Array({ minLength: 20, maxLength: 20 }).map((b) => Buffer.from(b));
const status: fc.Arbitrary<ServiceStatus> = fc
  .tuple(dword, dword, dword, dword, dword, dword, dword)
  .map(
    ([
      serviceType,
      currentState,
      controlsAccepted,
      win32ExitCode,
      serviceSpecificExitCode,
      checkPoint,
      waitHint,
    ]) => ({
      serviceType,
      currentState,
      controlsAccepted,
      win32ExitCode,
      serviceSpecificExitCode,
      checkPoint,
      waitHint,
    }),
  );

const decoders = [
  decodeCreateServiceResponse,
  (b: Buffer) => decodeHandleResponse(b),
  (b: Buffer) => decodeStatusResponse(b),
  (b: Buffer) => decodeReturnOnlyResponse(b),
];

describe("scmr responses", () => {
  it("scmr responses - handle responses round-trip", () => {
    fc.assert(
      fc.property(handle, dword, (h, returnValue) => {
        const r = { handle: h, returnValue };
        assert.deepEqual(decodeHandleResponse(encodeHandleResponse(r)), r);
      }),
    );
  });

  it("scmr responses - RCreateServiceW responses round-trip, with and without a tag", () => {
    fc.assert(
      fc.property(fc.option(dword, { nil: null }), handle, dword, (tagId, h, returnValue) => {
        const r = { tagId, handle: h, returnValue };
        assert.deepEqual(decodeCreateServiceResponse(encodeCreateServiceResponse(r)), r);
      }),
    );
  });

  it("scmr responses - status and return-only responses round-trip", () => {
    fc.assert(
      fc.property(status, dword, (s, returnValue) => {
        const r = { status: s, returnValue };
        assert.deepEqual(decodeStatusResponse(encodeStatusResponse(r)), r);
        assert.deepEqual(decodeReturnOnlyResponse(encodeReturnOnlyResponse({ returnValue })), {
          returnValue,
        });
      }),
    );
  });

  it("scmr responses - RCreateServiceW answer assembled by hand: NULL tag, handle, ERROR_SERVICE_EXISTS", () => {
    const h = Buffer.alloc(20, 0);
    const stub = Buffer.from(`00000000${h.toString("hex")}31040000`, "hex");
    assert.deepEqual(decodeCreateServiceResponse(stub), { tagId: null, handle: h, returnValue: 1073 });
  });

  it("scmr responses - RQueryServiceStatus answer assembled by hand: RUNNING, own process", () => {
    const stub = Buffer.from(
      "10000000" + "04000000" + "01000000" + "00000000" + "00000000" + "00000000" + "00000000" + "00000000",
      "hex",
    );
    assert.deepEqual(decodeStatusResponse(stub), {
      status: {
        serviceType: 0x10,
        currentState: 4,
        controlsAccepted: 1,
        win32ExitCode: 0,
        serviceSpecificExitCode: 0,
        checkPoint: 0,
        waitHint: 0,
      },
      returnValue: 0,
    });
  });

  it("scmr responses - truncated and over-long stubs are MalformedPacketError", () => {
    const good = encodeHandleResponse({ handle: Buffer.alloc(20, 7), returnValue: 0 });
    assert.throws(() => decodeHandleResponse(good.subarray(0, 23)), MalformedPacketError);
    assert.throws(() => decodeHandleResponse(Buffer.concat([good, Buffer.alloc(4)])), MalformedPacketError);
    assert.throws(() => decodeCreateServiceResponse(Buffer.from("00000200", "hex")), MalformedPacketError);
  });

  it("scmr responses - random bytes give a value or MalformedPacketError, nothing else", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        for (const decode of decoders) {
          try {
            decode(Buffer.from(bytes));
          } catch (err) {
            assert.ok(err instanceof MalformedPacketError, String(err));
          }
        }
      }),
      { numRuns: 2000 },
    );
  });

  it("scmr responses - expectSuccess passes ERROR_SUCCESS and throws ScmError with the name otherwise", () => {
    assert.deepEqual(expectSuccess("RDeleteService", { returnValue: 0 }), { returnValue: 0 });
    assert.throws(
      () => expectSuccess("RDeleteService", { returnValue: Win32Error.ERROR_SERVICE_MARKED_FOR_DELETE }),
      (err: unknown) =>
        err instanceof ScmError &&
        err.code === "SCM_ERROR" &&
        !err.retryable &&
        err.win32Error === 1072 &&
        err.win32ErrorName === "ERROR_SERVICE_MARKED_FOR_DELETE" &&
        err.message.includes("RDeleteService"),
    );
  });
});
