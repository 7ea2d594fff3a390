import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { ERROR_CODES } from "../../base/error-codes.ts";
import { errorClass, isSumacError, SumacError } from "../../base/errors.ts";
import { sourceFiles } from "../support/layers.ts";

class ExampleTimeout extends errorClass("TIMEOUT") {}
class ExampleMismatch extends errorClass("BUNDLE_MISMATCH") {}

describe("errors", () => {
  it("errors - a class made for a code has that code, the table's retryable flag, its own name and the cause", () => {
    const cause = new Error("socket closed");
    const timeout = new ExampleTimeout("took too long", { cause });
    assert.ok(timeout instanceof SumacError && timeout instanceof Error && isSumacError(timeout));
    assert.deepEqual(
      [timeout.name, timeout.code, timeout.retryable, timeout.message, timeout.cause],
      ["ExampleTimeout", "TIMEOUT", true, "took too long", cause],
    );
    const mismatch = new ExampleMismatch("bundle differs");
    assert.deepEqual([mismatch.code, mismatch.retryable], ["BUNDLE_MISMATCH", false]);
    assert.ok(!(mismatch instanceof ExampleTimeout));
    assert.equal(isSumacError(Object.assign(new Error("x"), { code: "TIMEOUT", retryable: true })), false);
  });

  it("errors - the table's codes are SCREAMING_SNAKE_CASE and each says whether it is retried and what it means", () => {
    for (const [code, info] of Object.entries(ERROR_CODES)) {
      assert.match(code, /^[A-Z][A-Z0-9]*(_[A-Z0-9]+)*$/, code);
      assert.equal(typeof info.retryable, "boolean", code);
      assert.ok(info.means.length > 0, code);
    }
  });

  it("errors - no error in the source sets its own code or retryable flag: all come from the table", () => {
    const own = /readonly (code|retryable)\s*(:[^=;]+)?=|this\.(code|retryable)\s*=/;
    const offenders: string[] = [];
    for (const file of sourceFiles()) {
      if (file === "base/errors.ts") continue;
      readFileSync(file, "utf8")
        .split("\n")
        .forEach((line, i) => {
          if (own.test(line)) offenders.push(`${file}:${i + 1}: ${line.trim()}`);
        });
    }
    assert.deepEqual(offenders, []);
  });
});
