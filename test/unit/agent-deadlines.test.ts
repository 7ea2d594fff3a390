/**
 * The one table of agent operation deadlines: the workstation waits for every operation at least
 * as long as the agent allows it, plus a margin, so the agent's own DEADLINE_EXCEEDED arrives
 * first; an install's deadline follows the one asked for.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  CALL_MARGIN_MS,
  callDeadline,
  DEFAULT_LIMITS,
  INSTALL_ANSWER_MS,
  KILL_GRACE_MS,
  operationDeadline,
} from "../../agent/protocol/deadlines.ts";
import { OPERATIONS } from "../../agent/protocol/wire.ts";

describe("agent deadlines", () => {
  it("agent deadlines - the workstation waits for each operation longer than the agent allows it", () => {
    for (const operation of OPERATIONS)
      assert.equal(callDeadline(operation), operationDeadline(operation) + CALL_MARGIN_MS, operation);
    // Ten detects of 30 s: the agent allows an Inventory 300 s, the workstation waits 315 s.
    assert.equal(operationDeadline("Inventory"), 300_000);
    assert.equal(callDeadline("Inventory"), 315_000);
    const slow = { ...DEFAULT_LIMITS, detectTimeoutMs: 60_000 };
    assert.equal(callDeadline("Inventory", { limits: slow }), 600_000 + CALL_MARGIN_MS);
  });

  it("agent deadlines - an install's answer is waited for its own deadline and the agent's margin; a forced Shutdown waits for no install", () => {
    assert.equal(
      callDeadline("Install", { installTimeoutMs: 60_000 }),
      60_000 + INSTALL_ANSWER_MS + CALL_MARGIN_MS,
    );
    assert.equal(
      operationDeadline("Install"),
      DEFAULT_LIMITS.maxInstallTimeoutMs + INSTALL_ANSWER_MS,
      "the agent, before reading the request, allows the longest install",
    );
    assert.ok(callDeadline("Shutdown") > DEFAULT_LIMITS.maxInstallTimeoutMs);
    assert.equal(
      callDeadline("Shutdown", { force: true }),
      KILL_GRACE_MS + DEFAULT_LIMITS.operationTimeoutMs + CALL_MARGIN_MS,
    );
  });
});
