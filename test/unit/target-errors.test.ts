import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { failureKind, timeoutError, toStepError } from "../../machines/target/errors.ts";

describe("target errors", () => {
  it("target errors - an error keeps its code and retryable flag; anything else is unexpected", () => {
    const coded = Object.assign(new Error("refused"), { code: "ECONNREFUSED", retryable: true });
    assert.deepEqual(toStepError(coded), { code: "ECONNREFUSED", retryable: true, message: "refused" });
    assert.deepEqual(toStepError(Object.assign(new Error("x"), { code: "E" })), {
      code: "E",
      retryable: false,
      message: "x",
    });
    assert.deepEqual(toStepError(new Error("bug")), {
      code: "UNEXPECTED_ERROR",
      retryable: false,
      message: "bug",
    });
    assert.deepEqual(toStepError("text"), { code: "UNEXPECTED_ERROR", retryable: false, message: "text" });
    assert.equal(toStepError(new Error("y".repeat(2000))).message.length, 500);
  });

  it("target errors - a timeout is retryable except for install", () => {
    assert.equal(timeoutError("connect", 10).retryable, true);
    assert.equal(timeoutError("install", 10).retryable, false);
  });

  it("target errors - a failure's kind tells a component from a connection", () => {
    assert.equal(failureKind("install"), "component");
    assert.equal(failureKind("connect"), "connection");
    assert.equal(failureKind("disconnect"), "cleanup");
  });
});
