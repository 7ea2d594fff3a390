/**
 * SMB2 codecs on byte vectors assembled by hand from the field tables of MS-SMB2 2.2 and MS-FSCC
 * 2.4, and on the contents of captured smbclient messages (directory entries, file information).
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ByteWriter, MalformedPacketError } from "../../../actors/wire/bytes.ts";
import { encodeHeader } from "../../../actors/smb/codec/header.ts";
import {
  Dialect,
  decodeNegotiateRequest,
  encodeNegotiateRequest,
  type NegotiateRequest,
} from "../../../actors/smb/codec/negotiate.ts";
import {
  decodeSessionSetupResponse,
  encodeSessionSetupRequest,
  SessionFlag,
} from "../../../actors/smb/codec/session-setup.ts";
import {
  decodeTreeConnectRequest,
  encodeTreeConnectRequest,
} from "../../../actors/smb/codec/tree-connect.ts";
import { decodeReadResponse } from "../../../actors/smb/codec/read-write.ts";
import { decodeErrorResponse, encodeErrorResponse, hasErrorBody } from "../../../actors/smb/codec/error.ts";
import {
  CtlCode,
  decodeValidateNegotiateInfoResponse,
  encodeValidateNegotiateInfoRequest,
} from "../../../actors/smb/codec/ioctl.ts";
import { decodeQueryInfoResponse } from "../../../actors/smb/codec/query-info.ts";
import { decodeSetInfoRequest } from "../../../actors/smb/codec/set-info.ts";
import {
  decodeDirectoryEntries,
  decodeQueryDirectoryResponse,
  encodeDirectoryEntries,
} from "../../../actors/smb/codec/query-directory.ts";
import {
  decodeFileAllInformation,
  decodeFileFsSizeInformation,
  decodeFileRenameInformation,
  encodeFileRenameInformation,
  FileInfoClass,
} from "../../../actors/smb/codec/file-info.ts";
import { NtStatus, SmbStatusError, statusName } from "../../../actors/smb/codec/status.ts";

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ""), "hex");

/** A message: a header (whose fields do not matter to the body codecs) then `body`. */
function message(body: Buffer, command = 0): Buffer {
  const header = encodeHeader({
    creditCharge: 0,
    status: 0,
    command,
    credits: 0,
    flags: 1,
    nextCommand: 0,
    messageId: 0n,
    treeId: 0,
    sessionId: 0n,
    signature: Buffer.alloc(16),
  });
  return Buffer.concat([header, body]);
}

/**
 * The successful answer to the first request of `command` in the captured file session whose body
 * `matches` (requests and answers are paired by MessageId).
 */
function captured(command: string, matches: (requestBody: Buffer) => boolean = () => true): Buffer {
  const path = join(import.meta.dirname, "../../fixtures/smb/smbclient-files.json");
  const all = JSON.parse(readFileSync(path, "utf8")) as { direction: string; command: string; hex: string }[];
  const of = (direction: string) =>
    all
      .filter((x) => x.direction === direction && x.command === command)
      .map((x) => Buffer.from(x.hex, "hex"));
  const answers = of("server").filter((b) => b.readUInt32LE(8) === 0);
  for (const request of of("client").filter((b) => matches(b.subarray(64)))) {
    const answer = answers.find((b) => b.readBigUInt64LE(24) === request.readBigUInt64LE(24));
    if (answer) return answer;
  }
  assert.fail(`no captured answer to ${command}`);
}

/** A QUERY_INFO request body for `infoType` and `infoClass`. */
const queryOf = (infoType: number, infoClass: number) => (body: Buffer) =>
  body[2] === infoType && body[3] === infoClass;

const throwsMalformed = (f: () => unknown, pattern: RegExp): void => {
  assert.throws(f, (err: unknown) => err instanceof MalformedPacketError && pattern.test(err.message));
};

describe("smb codec byte vectors", () => {
  // MS-SMB2 2.2.3 and 2.2.3.1, field by field.
  const negotiateBody = hex(`
    2400 0200 0100 0000 7f000000
    0102030405060708090a0b0c0d0e0f10
    68000000 0200 0000
    0003 1103
    0100 0a00 00000000 0100 0400 0100 aabbccdd 000000000000
    0800 0600 00000000 0200 0100 0200`);
  const negotiate: NegotiateRequest = {
    securityMode: 1,
    capabilities: 0x7f,
    clientGuid: hex("0102030405060708090a0b0c0d0e0f10"),
    dialects: [Dialect.SMB_3_0, Dialect.SMB_3_1_1],
    negotiateContexts: [
      { kind: "preauth", hashAlgorithms: [1], salt: hex("aabbccdd") },
      { kind: "signing", signingAlgorithms: [1, 2] },
    ],
  };

  it("negotiate - a 3.1.1 request encodes as the spec's field table, contexts 8-byte aligned", () => {
    assert.equal(encodeNegotiateRequest(negotiate).toString("hex"), negotiateBody.toString("hex"));
  });

  it("negotiate - the hand-assembled request decodes to its fields", () => {
    assert.deepStrictEqual(decodeNegotiateRequest(message(negotiateBody)), negotiate);
  });

  it("negotiate - a context offset that is not 8-byte aligned is malformed", () => {
    const bad = Buffer.from(negotiateBody);
    bad.writeUInt32LE(0x6a, 28);
    throwsMalformed(() => decodeNegotiateRequest(message(bad)), /not 8-byte aligned/);
  });

  it("negotiate - a context count over the cap is malformed before anything is read", () => {
    const bad = Buffer.from(negotiateBody);
    bad.writeUInt16LE(1000, 32);
    throwsMalformed(() => decodeNegotiateRequest(message(bad)), /over the cap/);
  });

  it("session setup - the request's buffer is at 0x58 and the response reads its flags", () => {
    const body = encodeSessionSetupRequest({
      flags: 0,
      securityMode: 1,
      capabilities: 1,
      channel: 0,
      previousSessionId: 0n,
      securityBuffer: hex("6006"),
    });
    assert.equal(body.toString("hex"), "190000010100000000000000580002000000000000000000" + "6006");
    const res = decodeSessionSetupResponse(message(hex("0900 0400 4800 0200 a100")));
    assert.deepStrictEqual(res, { sessionFlags: SessionFlag.ENCRYPT_DATA, securityBuffer: hex("a100") });
  });

  it("session setup - a security buffer past the end of the message is malformed", () => {
    throwsMalformed(
      () => decodeSessionSetupResponse(message(hex("0900 0000 4800 1000 a100"))),
      /past the end/,
    );
  });

  it("read - data over its cap of 8 MiB and slack is malformed before it is read", () => {
    throwsMalformed(
      () => decodeReadResponse(message(hex("1100 5000 00000001 00000000 00000000 00"))),
      /over its cap/,
    );
  });

  it("tree connect - the path is UTF-16LE at 0x48", () => {
    const body = encodeTreeConnectRequest({ flags: 0, path: "\\\\s\\IPC$" });
    assert.equal(
      body.toString("hex"),
      "09000000" + "4800" + "1000" + "5c005c0073005c00490050004300" + "2400",
    );
    assert.deepStrictEqual(decodeTreeConnectRequest(message(body)), { flags: 0, path: "\\\\s\\IPC$" });
  });

  it("tree connect - a StructureSize other than 9 is malformed", () => {
    throwsMalformed(
      () => decodeTreeConnectRequest(message(hex("0800 0000 4800 0000 00"))),
      /StructureSize 8/,
    );
  });

  it("read - smbclient's captured read response holds the file's bytes at 0x50", () => {
    const res = decodeReadResponse(captured("READ"));
    assert.equal(res.data.toString(), "captured by test/fixtures/smb/capture.ts\n");
    assert.equal(res.dataRemaining, 0);
  });

  it("error response - an empty ErrorData is one byte, and a server's non-zero byte round-trips", () => {
    assert.equal(
      encodeErrorResponse({ errorContextCount: 0, errorData: Buffer.alloc(0) }).toString("hex"),
      "090000000000000000",
    );
    const pending = decodeErrorResponse(message(hex("090000000000000021")));
    assert.deepStrictEqual(pending, { errorContextCount: 0, errorData: Buffer.alloc(0), trailer: hex("21") });
    assert.equal(encodeErrorResponse(pending).toString("hex"), "090000000000000021");
  });

  it("error response - which statuses come with the error body (MS-SMB2 3.3.4.4)", () => {
    assert.equal(hasErrorBody(NtStatus.SUCCESS, 5), false);
    assert.equal(hasErrorBody(NtStatus.MORE_PROCESSING_REQUIRED, 1), false);
    assert.equal(hasErrorBody(NtStatus.BUFFER_OVERFLOW, 8), false);
    assert.equal(hasErrorBody(NtStatus.BUFFER_OVERFLOW, 14), true);
    assert.equal(hasErrorBody(NtStatus.PENDING, 11), true);
    assert.equal(hasErrorBody(NtStatus.NO_MORE_FILES, 14), true);
    assert.equal(hasErrorBody(NtStatus.LOGON_FAILURE, 1), true);
  });

  it("error response - a ByteCount past the end is malformed", () => {
    throwsMalformed(() => decodeErrorResponse(message(hex("0900000010000000aa"))), /ErrorData needs 16/);
  });

  it("ioctl - VALIDATE_NEGOTIATE_INFO input and output as in MS-SMB2 2.2.31.4 and 2.2.32.6", () => {
    const guid = hex("00112233445566778899aabbccddeeff");
    const input = encodeValidateNegotiateInfoRequest({
      capabilities: 0x44,
      guid,
      securityMode: 1,
      dialects: [0x0300, 0x0302],
    });
    assert.equal(
      input.toString("hex"),
      "44000000" + guid.toString("hex") + "0100" + "0200" + "0003" + "0203",
    );
    const output = decodeValidateNegotiateInfoResponse(
      hex("44000000" + guid.toString("hex") + "0200" + "0203"),
    );
    assert.deepStrictEqual(output, { capabilities: 0x44, guid, securityMode: 2, dialect: 0x0302 });
    assert.equal(CtlCode.FSCTL_VALIDATE_NEGOTIATE_INFO, 0x00140204);
    assert.equal(CtlCode.FSCTL_PIPE_TRANSCEIVE, 0x0011c017);
  });

  it("query directory - smbclient's captured listing decodes to '.', '..' and the file", () => {
    const { output } = decodeQueryDirectoryResponse(captured("QUERY_DIRECTORY"));
    const entries = decodeDirectoryEntries(output, FileInfoClass.FileIdBothDirectoryInformation);
    assert.deepEqual(
      entries.map((e) => [e.fileName, e.endOfFile, (e.fileAttributes & 0x10) !== 0]),
      [
        [".", 0n, true],
        ["..", 0n, true],
        ["f", 41n, false],
      ],
    );
    // Re-encoded as a server would, the chain decodes to the same entries.
    const again = encodeDirectoryEntries(entries, FileInfoClass.FileIdBothDirectoryInformation);
    assert.deepStrictEqual(
      decodeDirectoryEntries(again, FileInfoClass.FileIdBothDirectoryInformation),
      entries,
    );
  });

  it("query directory - a NextEntryOffset inside its own entry (a loop) is malformed", () => {
    const entries = encodeDirectoryEntries(
      [0, 1].map((i) => ({
        fileIndex: i,
        creationTime: 0n,
        lastAccessTime: 0n,
        lastWriteTime: 0n,
        changeTime: 0n,
        endOfFile: 0n,
        allocationSize: 0n,
        fileAttributes: 0,
        fileName: "x",
        eaSize: 0,
        shortName: "",
        fileId: 0n,
      })),
      FileInfoClass.FileDirectoryInformation,
    );
    const loop = Buffer.from(entries);
    loop.writeUInt32LE(8, 0);
    throwsMalformed(
      () => decodeDirectoryEntries(loop, FileInfoClass.FileDirectoryInformation),
      /inside its own entry/,
    );
    const past = Buffer.from(entries);
    past.writeUInt32LE(0x1000, 0);
    throwsMalformed(
      () => decodeDirectoryEntries(past, FileInfoClass.FileDirectoryInformation),
      /past the end/,
    );
  });

  it("query info - smbclient's captured FileFsSizeInformation and FileAllInformation decode", () => {
    const size = decodeFileFsSizeInformation(
      decodeQueryInfoResponse(captured("QUERY_INFO", queryOf(2, 3))).output,
    );
    assert.equal(size.bytesPerSector, 512);
    assert.equal(size.sectorsPerAllocationUnit, 2);
    const all = decodeFileAllInformation(
      decodeQueryInfoResponse(captured("QUERY_INFO", queryOf(1, FileInfoClass.FileAllInformation))).output,
    );
    assert.equal(all.standard.endOfFile, 41n);
    assert.equal(all.standard.directory, false);
    assert.equal(all.basic.fileAttributes & 0x10, 0);
    assert.equal(all.fileName, "\\d\\f");
  });

  it("set info - smbclient's captured rename decodes as FileRenameInformation type 2", () => {
    const path = join(import.meta.dirname, "../../fixtures/smb/smbclient-files.json");
    const all = JSON.parse(readFileSync(path, "utf8")) as {
      direction: string;
      command: string;
      hex: string;
    }[];
    const renames = all
      .filter((m) => m.direction === "client" && m.command === "SET_INFO")
      .map((m) => decodeSetInfoRequest(Buffer.from(m.hex, "hex")))
      .filter((r) => r.fileInfoClass === FileInfoClass.FileRenameInformation);
    assert.equal(renames.length, 1);
    const rename = decodeFileRenameInformation(renames[0]?.buffer ?? Buffer.alloc(0));
    assert.deepStrictEqual(rename, { replaceIfExists: false, rootDirectory: 0n, fileName: "d\\f" });
  });

  it("set info - FileRenameInformation type 2 has ReplaceIfExists, 8-byte RootDirectory, then the name", () => {
    const buffer = encodeFileRenameInformation({
      replaceIfExists: true,
      rootDirectory: 0n,
      fileName: "d\\g",
    });
    assert.equal(
      buffer.toString("hex"),
      "01" + "00".repeat(7) + "00".repeat(8) + "06000000" + "64005c006700",
    );
    assert.deepStrictEqual(decodeFileRenameInformation(buffer), {
      replaceIfExists: true,
      rootDirectory: 0n,
      fileName: "d\\g",
    });
  });

  it("status - known codes have their STATUS_ names, others their hex", () => {
    assert.equal(statusName(NtStatus.LOGON_FAILURE), "STATUS_LOGON_FAILURE");
    assert.equal(statusName(0xc000006d | 0), "STATUS_LOGON_FAILURE");
    assert.equal(statusName(0xc0001234), "0xC0001234");
    const err = new SmbStatusError("CREATE d\\f", NtStatus.OBJECT_NAME_NOT_FOUND);
    assert.equal(err.code, "SMB_STATUS");
    assert.equal(err.status, 0xc0000034);
    assert.equal(err.statusName, "STATUS_OBJECT_NAME_NOT_FOUND");
    assert.match(err.message, /CREATE d\\f: STATUS_OBJECT_NAME_NOT_FOUND/);
  });

  it("byte writer - a write that grows the buffer keeps its bytes", () => {
    const w = new ByteWriter(2).u16le(0x0102).u32le(0x03040506).u64le(7n);
    assert.equal(w.toBuffer().toString("hex"), "0201" + "06050403" + "0700000000000000");
  });
});
