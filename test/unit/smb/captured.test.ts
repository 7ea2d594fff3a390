import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { decodeHeader, encodeHeader, HEADER_SIZE, HeaderFlag } from "../../../actors/smb/codec/header.ts";
import { decodeErrorResponse, encodeErrorResponse } from "../../../actors/smb/codec/error.ts";
import { NtStatus } from "../../../actors/smb/codec/status.ts";
import { codecs } from "./codecs.ts";

interface Captured {
  connection: number;
  direction: "client" | "server";
  command: string;
  hex: string;
}

const dir = join(import.meta.dirname, "../../fixtures/smb");
const files = readdirSync(dir).filter((f) => /^smbclient-.*\.json$/.test(f));

/** A response whose body is the error response (MS-SMB2 3.3.4.4): any error, and the interim PENDING. */
function carriesErrorBody(status: number, command: number, body: Buffer): boolean {
  if (status === NtStatus.SUCCESS || status === NtStatus.MORE_PROCESSING_REQUIRED) return false;
  // BUFFER_OVERFLOW answers a read, query or ioctl with its usual body.
  if (status === NtStatus.BUFFER_OVERFLOW) return false;
  void command;
  return body.length >= 2 && body.readUInt16LE(0) === 9;
}

describe("smb codecs on smbclient's captured messages", () => {
  it("smb captures - fixtures are present and hold every direction", () => {
    assert.ok(files.length >= 2, `fixtures in ${dir}: ${files.join(", ")}`);
  });

  for (const file of files) {
    const messages = JSON.parse(readFileSync(join(dir, file), "utf8")) as Captured[];
    it(`smb captures - every message of ${file} re-encodes byte for byte`, () => {
      let checked = 0;
      for (const [i, m] of messages.entries()) {
        const bytes = Buffer.from(m.hex, "hex");
        const header = decodeHeader(bytes);
        assert.deepEqual(encodeHeader(header), bytes.subarray(0, HEADER_SIZE), `${file} #${i} header`);
        const response = (header.flags & HeaderFlag.SERVER_TO_REDIR) !== 0;
        assert.equal(response, m.direction === "server");
        const body = bytes.subarray(HEADER_SIZE);
        let encoded: Buffer;
        let what: string;
        if (response && carriesErrorBody(header.status, header.command, body)) {
          what = "error response";
          encoded = encodeErrorResponse(decodeErrorResponse(bytes));
        } else {
          const codec = codecs.get(header.command);
          assert.ok(codec, `${file} #${i}: no codec for ${m.command}`);
          const pair = response ? codec.response : codec.request;
          what = pair.name;
          encoded = pair.encode(pair.decode(bytes) as never);
        }
        assert.equal(encoded.toString("hex"), body.toString("hex"), `${file} #${i} ${m.direction} ${what}`);
        checked++;
      }
      assert.equal(checked, messages.length);
    });
  }
});
