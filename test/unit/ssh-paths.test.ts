import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { checkRunName, checkRunRoot, insideRunRoot } from "../../actors/ssh/files.ts";

describe("run root paths", () => {
  const root = "/var/tmp/sumac";

  it("run root - paths inside it are normalised and accepted", () => {
    assert.equal(insideRunRoot(root, "/var/tmp/sumac/run-1"), "/var/tmp/sumac/run-1");
    assert.equal(
      insideRunRoot(root, "/var/tmp/sumac/run-1/./agent//bundle.js"),
      "/var/tmp/sumac/run-1/agent/bundle.js",
    );
    assert.equal(insideRunRoot(root, "/var/tmp/sumac/run-1/"), "/var/tmp/sumac/run-1");
    assert.equal(insideRunRoot(root, "/var/tmp/sumac/a/../b"), "/var/tmp/sumac/b");
  });

  it("run root - the root itself, anything outside it, relative paths and control characters are PATH_REFUSED", () => {
    for (const p of [
      "/var/tmp/sumac",
      "/var/tmp/sumac/",
      "/var/tmp/sumac/..",
      "/var/tmp/sumac/../etc",
      "/var/tmp/sumacx",
      "/etc/passwd",
      "run-1",
      "/var/tmp/sumac/a\nb",
      "/var/tmp/sumac/a\0",
    ]) {
      assert.throws(() => insideRunRoot(root, p), { code: "PATH_REFUSED" }, p);
    }
  });

  it("run root - must be absolute, normalised and not /", () => {
    assert.equal(checkRunRoot("/srv/sumac"), "/srv/sumac");
    for (const r of ["/", "", "var/tmp", "/var/tmp/", "/var/../tmp", "/var//tmp"]) {
      assert.throws(() => checkRunRoot(r), { code: "PATH_REFUSED" }, r);
    }
  });

  it("run root - run names are single safe path components", () => {
    assert.equal(checkRunName("2024-05-01T10.00_job-7"), "2024-05-01T10.00_job-7");
    for (const n of ["", ".", "..", ".hidden", "a/b", "a b", "x".repeat(129)]) {
      assert.throws(() => checkRunName(n), { code: "PATH_REFUSED" }, n);
    }
  });
});
