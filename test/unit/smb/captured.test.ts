import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { decodeHeader, encodeHeader, HEADER_SIZE, HeaderFlag } from "../../../actors/smb/codec/header.ts";
import { decodeErrorResponse, encodeErrorResponse, hasErrorBody } from "../../../actors/smb/codec/error.ts";
import { codecs } from "./codecs.ts";

interface Captured {
  connection: number;
  direction: "client" | "server";
  command: string;
  hex: string;
}

const dir = join(import.meta.dirname, "../../fixtures/smb");
const files = readdirSync(dir).filter((f) => /^smbclient-.*\.json$/.test(f));

describe("smb codecs on smbclient's captured messages", () => {
  it("smb captures - fixtures are present and hold every direction", () => {
    assert.ok(files.length >= 2, `fixtures in ${dir}: ${files.join(", ")}`);
  });

  for (const file of files) {
    const messages = JSON.parse(readFileSync(join(dir, file), "utf8")) as Captured[];
    it(`smb captures - every message of ${file} re-encodes byte for byte`, () => {
      let checked = 0;
      let trailers = 0;
      for (const [i, m] of messages.entries()) {
        const bytes = Buffer.from(m.hex, "hex");
        const header = decodeHeader(bytes);
        assert.deepEqual(encodeHeader(header), bytes.subarray(0, HEADER_SIZE), `${file} #${i} header`);
        const response = (header.flags & HeaderFlag.SERVER_TO_REDIR) !== 0;
        assert.equal(response, m.direction === "server");
        const body = bytes.subarray(HEADER_SIZE);
        let encoded: Buffer;
        let what: string;
        if (response && hasErrorBody(header.status, header.command)) {
          what = "error response";
          encoded = encodeErrorResponse(decodeErrorResponse(bytes));
        } else {
          const codec = codecs.get(header.command);
          assert.ok(codec, `${file} #${i}: no codec for ${m.command}`);
          const pair = response ? codec.response : codec.request;
          assert.ok(pair, `${file} #${i}: no codec for a ${m.command} response`);
          what = pair.name;
          const value = pair.decode(bytes);
          if (typeof value === "object" && value !== null && "trailer" in value) trailers++;
          encoded = pair.encode(value as never);
        }
        assert.equal(encoded.toString("hex"), body.toString("hex"), `${file} #${i} ${m.direction} ${what}`);
        checked++;
      }
      assert.equal(checked, messages.length);
      // Samba's padding after a CREATE name is the only sender's choice these captures hold.
      assert.ok(trailers <= messages.filter((m) => m.command === "CREATE").length, `${trailers} trailers`);
    });
  }
});
