import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { wirePath } from "../../../actors/smb/client/paths.ts";

describe("smb client paths", () => {
  for (const bad of [
    "a/file:stream",
    "a/file::$DATA",
    "run/x::$INDEX_ALLOCATION",
    "a/b\u0001c",
    "a\\..\\..\\b",
  ]) {
    it(`wire path - ${JSON.stringify(bad)} is refused before anything is sent`, () => {
      assert.throws(() => wirePath(bad), { code: "CONFIG_INVALID" });
    });
  }

  it("wire path - ordinary names with dots, spaces and $ pass", () => {
    assert.equal(wirePath("Temp/sumac/run-1/agent v2.0.zip"), "Temp\\sumac\\run-1\\agent v2.0.zip");
    assert.equal(wirePath("$Recycle.Bin"), "$Recycle.Bin");
  });
});
