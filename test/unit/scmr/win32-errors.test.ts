import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ScmError, Win32Error, win32ErrorName } from "../../../actors/scmr/win32-errors.ts";

describe("scmr win32 errors", () => {
  it("scmr win32 errors - names the codes a service control client meets", () => {
    assert.equal(win32ErrorName(0), "ERROR_SUCCESS");
    assert.equal(win32ErrorName(5), "ERROR_ACCESS_DENIED");
    assert.equal(win32ErrorName(1060), "ERROR_SERVICE_DOES_NOT_EXIST");
    assert.equal(win32ErrorName(1073), "ERROR_SERVICE_EXISTS");
    assert.equal(win32ErrorName(1078), "ERROR_DUPLICATE_SERVICE_NAME");
  });

  it("scmr win32 errors - every code of the table has one name", () => {
    const codes = Object.values(Win32Error);
    assert.equal(new Set(codes).size, codes.length);
    for (const [name, code] of Object.entries(Win32Error)) assert.equal(win32ErrorName(code), name);
  });

  it("scmr win32 errors - an unknown code is named by its hex value", () => {
    assert.equal(win32ErrorName(0xdeadbeef), "WIN32_ERROR_0xdeadbeef");
    const err = new ScmError("RStartServiceW", 99999);
    assert.equal(err.win32ErrorName, "WIN32_ERROR_0x0001869f");
    assert.equal(err.name, "ScmError");
  });
});
