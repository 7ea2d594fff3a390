/**
 * fast-check arbitraries of every SMB2 message the codecs handle, for the round-trip and fuzzing
 * properties (codec-property.test.ts). Values are what the decoders give back: optional keys are
 * absent rather than undefined, and byte strings are Buffers.
 */
import fc from "fast-check";
import { Command } from "../../../actors/smb/codec/header.ts";
import type { NegotiateContext } from "../../../actors/smb/codec/negotiate.ts";
import { FileInfoClass } from "../../../actors/smb/codec/file-info.ts";
import type { DirectoryEntry } from "../../../actors/smb/codec/query-directory.ts";

/** fc.record with plain objects (fast-check 4 makes null-prototype ones), as the decoders make. */
function record<T>(model: { [K in keyof T]: fc.Arbitrary<T[K]> }): fc.Arbitrary<T> {
  return fc.record(model, { noNullPrototype: true });
}

export const u8 = fc.integer({ min: 0, max: 0xff });
export const u16 = fc.integer({ min: 0, max: 0xffff });
export const u32 = fc.integer({ min: 0, max: 0xffffffff });
export const u64 = fc.bigInt({ min: 0n, max: 2n ** 64n - 1n });
export const bytes = (maxLength: number, minLength = 0): fc.Arbitrary<Buffer> =>
  fc.uint8Array({ minLength, maxLength }).map((b) => Buffer.from(b));
export const fileId = bytes(16, 16);
/** Text that survives UTF-16LE (any code point, no lone surrogate). */
export const text = (maxLength: number): fc.Arbitrary<string> => fc.string({ unit: "binary", maxLength });

/**
 * Adds, at random, a trailer the encoder would not write by itself (its first byte is not 0, so
 * it is neither nothing nor the one zero byte an empty variable part takes).
 */
function withTrailer<T extends object>(arb: fc.Arbitrary<T>): fc.Arbitrary<T> {
  const trailer = fc
    .tuple(fc.integer({ min: 1, max: 255 }), bytes(7))
    .map(([b, rest]) => Buffer.concat([Buffer.from([b]), rest]));
  return fc
    .tuple(arb, fc.option(trailer, { nil: undefined }))
    .map(([v, t]) => (t ? { ...v, trailer: t } : v));
}

const negotiateContext: fc.Arbitrary<NegotiateContext> = fc.oneof(
  record({
    kind: fc.constant("preauth" as const),
    hashAlgorithms: fc.array(u16, { maxLength: 4 }),
    salt: bytes(32),
  }),
  record({ kind: fc.constant("encryption" as const), ciphers: fc.array(u16, { maxLength: 4 }) }),
  record({ kind: fc.constant("signing" as const), signingAlgorithms: fc.array(u16, { maxLength: 3 }) }),
  record({ kind: fc.constant("netname" as const), netName: text(20) }),
  record({
    kind: fc.constant("raw" as const),
    type: u16.filter((t) => ![1, 2, 5, 8].includes(t)),
    data: bytes(40),
  }),
);

const negotiateRequest = record({
  securityMode: u16,
  capabilities: u32,
  clientGuid: fileId,
  dialects: fc.array(fc.oneof(fc.constantFrom(0x0202, 0x0210, 0x0300, 0x0302, 0x0311), u16), {
    minLength: 1,
    maxLength: 6,
  }),
  negotiateContexts: fc.array(negotiateContext, { maxLength: 5 }),
}).map((v) => (v.dialects.includes(0x0311) ? v : { ...v, negotiateContexts: [] }));

const negotiateResponse = record({
  securityMode: u16,
  dialectRevision: fc.oneof(fc.constantFrom(0x0202, 0x0300, 0x0311), u16),
  serverGuid: fileId,
  capabilities: u32,
  maxTransactSize: u32,
  maxReadSize: u32,
  maxWriteSize: u32,
  systemTime: u64,
  serverStartTime: u64,
  securityBuffer: bytes(100),
  negotiateContexts: fc.array(negotiateContext, { maxLength: 5 }),
}).map((v) => (v.dialectRevision === 0x0311 ? v : { ...v, negotiateContexts: [] }));

const directoryEntry = (idBoth: boolean): fc.Arbitrary<DirectoryEntry> =>
  record({
    fileIndex: u32,
    creationTime: u64,
    lastAccessTime: u64,
    lastWriteTime: u64,
    changeTime: u64,
    endOfFile: u64,
    allocationSize: u64,
    fileAttributes: u32,
    fileName: text(12),
    eaSize: idBoth ? u32 : fc.constant(0),
    shortName: idBoth ? fc.string({ unit: "grapheme-ascii", maxLength: 12 }) : fc.constant(""),
    fileId: idBoth ? u64 : fc.constant(0n),
  });

/** Directory entries of both classes, with the class. */
export const directoryEntries = fc.oneof(
  record({
    infoClass: fc.constant(FileInfoClass.FileIdBothDirectoryInformation),
    entries: fc.array(directoryEntry(true), { maxLength: 5 }),
  }),
  record({
    infoClass: fc.constant(FileInfoClass.FileDirectoryInformation),
    entries: fc.array(directoryEntry(false), { maxLength: 5 }),
  }),
);

const times = { creationTime: u64, lastAccessTime: u64, lastWriteTime: u64, changeTime: u64 };

/** Request and response arbitraries by command (CANCEL has no response). */
export const messages: ReadonlyMap<
  number,
  { request: fc.Arbitrary<object>; response?: fc.Arbitrary<object> }
> = new Map<number, { request: fc.Arbitrary<object>; response?: fc.Arbitrary<object> }>([
  [Command.NEGOTIATE, { request: negotiateRequest, response: negotiateResponse }],
  [
    Command.SESSION_SETUP,
    {
      request: record({
        flags: u8,
        securityMode: u8,
        capabilities: u32,
        channel: u32,
        previousSessionId: u64,
        securityBuffer: bytes(200),
      }),
      response: record({ sessionFlags: u16, securityBuffer: bytes(200) }),
    },
  ],
  [Command.LOGOFF, { request: fc.constant({}), response: fc.constant({}) }],
  [
    Command.TREE_CONNECT,
    {
      request: withTrailer(record({ flags: u16, path: text(30) })),
      response: record({ shareType: u8, shareFlags: u32, capabilities: u32, maximalAccess: u32 }),
    },
  ],
  [Command.TREE_DISCONNECT, { request: fc.constant({}), response: fc.constant({}) }],
  [
    Command.CREATE,
    {
      request: withTrailer(
        record({
          requestedOplockLevel: u8,
          impersonationLevel: u32,
          desiredAccess: u32,
          fileAttributes: u32,
          shareAccess: u32,
          createDisposition: u32,
          createOptions: u32,
          name: text(30),
          createContexts: bytes(60),
        }),
      ),
      response: withTrailer(
        record({
          oplockLevel: u8,
          flags: u8,
          createAction: u32,
          ...times,
          allocationSize: u64,
          endOfFile: u64,
          fileAttributes: u32,
          fileId,
          createContexts: bytes(60),
        }),
      ),
    },
  ],
  [
    Command.CLOSE,
    {
      request: record({ flags: u16, fileId }),
      response: record({ flags: u16, ...times, allocationSize: u64, endOfFile: u64, fileAttributes: u32 }),
    },
  ],
  [Command.FLUSH, { request: record({ fileId }), response: fc.constant({}) }],
  [
    Command.READ,
    {
      request: withTrailer(
        record({
          padding: u8,
          flags: u8,
          length: u32,
          offset: u64,
          fileId,
          minimumCount: u32,
          channel: u32,
          remainingBytes: u32,
        }),
      ),
      response: withTrailer(record({ data: bytes(300), dataRemaining: u32, flags: u32 })),
    },
  ],
  [
    Command.WRITE,
    {
      request: withTrailer(
        record({ offset: u64, fileId, channel: u32, remainingBytes: u32, flags: u32, data: bytes(300) }),
      ),
      response: record({ count: u32, remaining: u32 }),
    },
  ],
  [
    Command.IOCTL,
    {
      request: withTrailer(
        record({
          ctlCode: u32,
          fileId,
          input: bytes(100),
          maxInputResponse: u32,
          output: bytes(20),
          maxOutputResponse: u32,
          flags: u32,
        }),
      ),
      response: withTrailer(
        record({ ctlCode: u32, fileId, input: bytes(20), output: bytes(100), flags: u32 }),
      ),
    },
  ],
  [Command.CANCEL, { request: fc.constant({}) }],
  [Command.ECHO, { request: fc.constant({}), response: fc.constant({}) }],
  [
    Command.QUERY_DIRECTORY,
    {
      request: withTrailer(
        record({
          fileInformationClass: u8,
          flags: u8,
          fileIndex: u32,
          fileId,
          pattern: text(20),
          outputBufferLength: u32,
        }),
      ),
      response: withTrailer(record({ output: bytes(300) })),
    },
  ],
  [
    Command.QUERY_INFO,
    {
      request: withTrailer(
        record({
          infoType: u8,
          fileInfoClass: u8,
          outputBufferLength: u32,
          input: bytes(40),
          additionalInformation: u32,
          flags: u32,
          fileId,
        }),
      ),
      response: withTrailer(record({ output: bytes(200) })),
    },
  ],
  [
    Command.SET_INFO,
    {
      request: withTrailer(
        record({ infoType: u8, fileInfoClass: u8, buffer: bytes(100), additionalInformation: u32, fileId }),
      ),
      response: fc.constant({}),
    },
  ],
]);

/** The error response, whatever the command. */
export const errorResponse = withTrailer(record({ errorContextCount: u8, errorData: bytes(60) }));

/** Error contexts of a 3.1.1 error response. */
export const errorContexts = fc.array(record({ errorId: u32, data: bytes(40) }), { maxLength: 4 });
