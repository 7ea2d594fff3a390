/**
 * RQueryServiceConfigW's response (MS-SCMR 3.1.4.17, QUERY_SERVICE_CONFIGW 2.2.15): a stub
 * assembled by hand from the IDL and C706 14.3.12.3 (the structure with five referent ids, then
 * the five strings in the members' order), NULL members, dependencies separated by `/` or NUL,
 * truncations, strings over the IDL's ranges, decode(encode(x)) for random configurations, and
 * random bytes giving only MalformedPacketError.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import {
  decodeQueryServiceConfigResponse,
  encodeQueryServiceConfigResponse,
  QueryConfigStringCap,
  type QueryServiceConfigResponse,
  type ServiceConfig,
} from "../../../actors/scmr/service-config.ts";
import { MalformedPacketError } from "../../../actors/wire/bytes.ts";

const u32 = (v: number): string => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(v >>> 0);
  return b.toString("hex");
};
/** A conformant varying string (C706 14.3.4.2) with `units` UTF-16 units, its NUL among them, padded to 4. */
const wstr = (body: string, units = body.length + 1): string => {
  const bytes = Buffer.from(`${body}\0`, "utf16le").toString("hex");
  const pad = "00".repeat((4 - ((bytes.length / 2) % 4)) % 4);
  return u32(units) + u32(0) + u32(units) + bytes + pad;
};
const hex = (...parts: string[]): Buffer => Buffer.from(parts.join("").replace(/\s+/g, ""), "hex");

/** Own process, demand start, error normal; the five pointers; tag 5; the strings as given. */
function stub(strings: {
  path: string;
  group: string;
  deps: string;
  account: string;
  display: string;
}): Buffer {
  return hex(
    "10000000 03000000 01000000", // dwServiceType, dwStartType, dwErrorControl
    "00000200 04000200", // lpBinaryPathName, lpLoadOrderGroup
    "05000000", // dwTagId
    "08000200 0c000200 10000200", // lpDependencies, lpServiceStartName, lpDisplayName
    strings.path,
    strings.group,
    strings.deps,
    strings.account,
    strings.display,
    u32(0), // pcbBytesNeeded
    u32(0), // ERROR_SUCCESS
  );
}

const good = (): Buffer =>
  stub({
    path: wstr("C:\\a.exe"),
    group: wstr(""),
    deps: wstr("Tcpip/+Net"),
    account: wstr("LocalSystem"),
    display: wstr("A"),
  });

const isMalformed = (err: unknown): boolean =>
  err instanceof MalformedPacketError && err.code === "MALFORMED_PACKET";

const dword = fc.nat({ max: 0xffffffff });
const text = (maxLength: number): fc.Arbitrary<string> =>
  fc.string({ unit: "binary", maxLength }).filter((t) => !t.includes("\0"));
const config: fc.Arbitrary<ServiceConfig> = fc.record(
  {
    serviceType: dword,
    startType: dword,
    errorControl: dword,
    binaryPath: fc.option(text(300), { nil: null }),
    loadOrderGroup: fc.option(text(20), { nil: null }),
    tagId: dword,
    dependencies: fc.array(
      text(20).filter((t) => t.length > 0 && !t.includes("/")),
      { maxLength: 4 },
    ),
    serviceStartName: fc.option(text(40), { nil: null }),
    displayName: fc.option(text(40), { nil: null }),
  },
  { noNullPrototype: true },
);
const response: fc.Arbitrary<QueryServiceConfigResponse> = fc.record(
  { config, bytesNeeded: dword, returnValue: dword },
  { noNullPrototype: true },
);

describe("scmr service config", () => {
  it("scmr service config - a stub assembled by hand: five strings after the structure", () => {
    assert.deepEqual(decodeQueryServiceConfigResponse(good()), {
      config: {
        serviceType: 0x10,
        startType: 3,
        errorControl: 1,
        binaryPath: "C:\\a.exe",
        loadOrderGroup: "",
        tagId: 5,
        dependencies: ["Tcpip", "+Net"],
        serviceStartName: "LocalSystem",
        displayName: "A",
      },
      bytesNeeded: 0,
      returnValue: 0,
    });
  });

  it("scmr service config - dependencies as the Win32 NUL-separated list are read too", () => {
    const stubWithNuls = stub({
      path: wstr("x"),
      group: wstr(""),
      deps: wstr("Tcpip\0+Net\0"), // "Tcpip\0+Net\0\0", 12 units
      account: wstr("LocalSystem"),
      display: wstr("A"),
    });
    assert.deepEqual(decodeQueryServiceConfigResponse(stubWithNuls).config.dependencies, ["Tcpip", "+Net"]);
  });

  it("scmr service config - every truncation of a good stub, and a byte more, is MalformedPacketError", () => {
    const bytes = good();
    for (let n = 0; n < bytes.length; n++) {
      assert.throws(() => decodeQueryServiceConfigResponse(bytes.subarray(0, n)), isMalformed, `${n} bytes`);
    }
    assert.throws(
      () => decodeQueryServiceConfigResponse(Buffer.concat([bytes, Buffer.alloc(4)])),
      isMalformed,
    );
  });

  it("scmr service config - strings over the IDL's ranges, or with counts past the stub, are refused", () => {
    const strings = {
      path: wstr("x"),
      group: wstr(""),
      deps: wstr(""),
      account: wstr("a"),
      display: wstr("A"),
    };
    const display = "d".repeat(QueryConfigStringCap.displayName - 1);
    assert.equal(
      decodeQueryServiceConfigResponse(stub({ ...strings, display: wstr(display) })).config.displayName,
      display,
    );
    assert.throws(
      () => decodeQueryServiceConfigResponse(stub({ ...strings, display: wstr(`${display}d`) })),
      /over the cap of 1024/,
    );
    assert.throws(
      () =>
        decodeQueryServiceConfigResponse(
          stub({ ...strings, path: wstr("p".repeat(QueryConfigStringCap.binaryPath)) }),
        ),
      /over the cap of 8192/,
    );
    // max_count 0x40000000 with an actual count to match: over the cap before any read.
    const huge = u32(0x40000000) + u32(0) + u32(0x40000000);
    assert.throws(() => decodeQueryServiceConfigResponse(stub({ ...strings, account: huge })), isMalformed);
    // An actual count over max_count, and a string without its NUL.
    assert.throws(
      () =>
        decodeQueryServiceConfigResponse(
          stub({ ...strings, account: u32(1) + u32(0) + u32(2) + "61000000" }),
        ),
      /exceed max count/,
    );
    assert.throws(
      () =>
        decodeQueryServiceConfigResponse(
          stub({ ...strings, account: u32(2) + u32(0) + u32(2) + "61006200" }),
        ),
      /not terminated/,
    );
  });

  it("scmr service config - the encoder refuses dependencies the decoder could not give back", () => {
    const c: ServiceConfig = {
      serviceType: 0x10,
      startType: 3,
      errorControl: 0,
      binaryPath: "x",
      loadOrderGroup: null,
      tagId: 0,
      dependencies: ["a/b"],
      serviceStartName: null,
      displayName: null,
    };
    for (const dependencies of [["a/b"], [""], ["a\0"]]) {
      assert.throws(
        () =>
          encodeQueryServiceConfigResponse({
            config: { ...c, dependencies },
            bytesNeeded: 0,
            returnValue: 0,
          }),
        isMalformed,
      );
    }
  });

  it("scmr service config - responses round-trip", () => {
    fc.assert(
      fc.property(response, (r) => {
        assert.deepEqual(decodeQueryServiceConfigResponse(encodeQueryServiceConfigResponse(r)), r);
      }),
    );
  });

  it("scmr service config - random and overwritten bytes give a value or MalformedPacketError", () => {
    const bytes = good();
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 160 }),
        fc.array(fc.tuple(fc.nat({ max: bytes.length - 1 }), fc.nat({ max: 255 })), {
          minLength: 1,
          maxLength: 4,
        }),
        (random, edits) => {
          const edited = Buffer.from(bytes);
          for (const [at, byte] of edits) edited[at] = byte;
          for (const input of [Buffer.from(random), edited]) {
            try {
              decodeQueryServiceConfigResponse(input);
            } catch (err) {
              assert.ok(err instanceof MalformedPacketError, String(err));
            }
          }
        },
      ),
      { numRuns: 2000 },
    );
  });
});
