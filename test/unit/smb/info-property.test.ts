/**
 * Properties of the structures carried inside message buffers: the file information classes
 * (MS-FSCC 2.4, 2.5) and the VALIDATE_NEGOTIATE_INFO input and output (MS-SMB2 2.2.31.4,
 * 2.2.32.6). Decoding what was encoded gives the value back; random bytes decode or are refused
 * as malformed, never with another exception.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { MalformedPacketError } from "../../../actors/wire/bytes.ts";
import * as info from "../../../actors/smb/codec/file-info.ts";
import * as ioctl from "../../../actors/smb/codec/ioctl.ts";
import { bytes, fileId, text, u16, u32, u64 } from "./arbitraries.ts";

const runs = { numRuns: 300 };

const basic = fc.record(
  { creationTime: u64, lastAccessTime: u64, lastWriteTime: u64, changeTime: u64, fileAttributes: u32 },
  { noNullPrototype: true },
);
const standard = fc.record(
  {
    allocationSize: u64,
    endOfFile: u64,
    numberOfLinks: u32,
    deletePending: fc.boolean(),
    directory: fc.boolean(),
  },
  { noNullPrototype: true },
);

interface Case {
  readonly name: string;
  readonly arb: fc.Arbitrary<unknown>;
  readonly encode: (v: never) => Buffer;
  readonly decode: (b: Buffer) => unknown;
}

const cases: Case[] = [
  {
    name: "FileBasicInformation",
    arb: basic,
    encode: info.encodeFileBasicInformation,
    decode: info.decodeFileBasicInformation,
  },
  {
    name: "FileStandardInformation",
    arb: standard,
    encode: info.encodeFileStandardInformation,
    decode: info.decodeFileStandardInformation,
  },
  {
    name: "FileAllInformation",
    arb: fc.record(
      {
        basic,
        standard,
        indexNumber: u64,
        eaSize: u32,
        accessFlags: u32,
        currentByteOffset: u64,
        mode: u32,
        alignmentRequirement: u32,
        fileName: text(30),
      },
      { noNullPrototype: true },
    ),
    encode: info.encodeFileAllInformation,
    decode: info.decodeFileAllInformation,
  },
  {
    name: "FileFsSizeInformation",
    arb: fc.record(
      {
        totalAllocationUnits: u64,
        availableAllocationUnits: u64,
        sectorsPerAllocationUnit: u32,
        bytesPerSector: u32,
      },
      { noNullPrototype: true },
    ),
    encode: info.encodeFileFsSizeInformation,
    decode: info.decodeFileFsSizeInformation,
  },
  {
    name: "FileRenameInformation",
    arb: fc.record(
      { replaceIfExists: fc.boolean(), rootDirectory: u64, fileName: text(30) },
      { noNullPrototype: true },
    ),
    encode: info.encodeFileRenameInformation,
    decode: info.decodeFileRenameInformation,
  },
  {
    name: "FileEndOfFileInformation",
    arb: u64,
    encode: info.encodeFileEndOfFileInformation,
    decode: info.decodeFileEndOfFileInformation,
  },
  {
    name: "FileDispositionInformation",
    arb: fc.boolean(),
    encode: info.encodeFileDispositionInformation,
    decode: info.decodeFileDispositionInformation,
  },
  {
    name: "VALIDATE_NEGOTIATE_INFO request",
    arb: fc.record(
      { capabilities: u32, guid: fileId, securityMode: u16, dialects: fc.array(u16, { maxLength: 6 }) },
      { noNullPrototype: true },
    ),
    encode: ioctl.encodeValidateNegotiateInfoRequest,
    decode: ioctl.decodeValidateNegotiateInfoRequest,
  },
  {
    name: "VALIDATE_NEGOTIATE_INFO response",
    arb: fc.record(
      { capabilities: u32, guid: fileId, securityMode: u16, dialect: u16 },
      { noNullPrototype: true },
    ),
    encode: ioctl.encodeValidateNegotiateInfoResponse,
    decode: ioctl.decodeValidateNegotiateInfoResponse,
  },
];

describe("smb info structure properties", () => {
  for (const c of cases) {
    it(`${c.name} - decoding what was encoded gives the value back`, () => {
      fc.assert(
        fc.property(c.arb, (v) => {
          assert.deepStrictEqual(c.decode(c.encode(v as never)), v);
        }),
        runs,
      );
    });

    it(`${c.name} - random bytes decode or are refused as malformed`, () => {
      fc.assert(
        fc.property(bytes(200), (b) => {
          try {
            c.decode(b);
          } catch (err) {
            assert.ok(err instanceof MalformedPacketError, `threw ${String(err)}`);
          }
        }),
        runs,
      );
    });
  }
});
