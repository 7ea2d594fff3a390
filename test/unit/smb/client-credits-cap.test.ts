import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { CreditWindow, MAX_CREDITS_HELD } from "../../../actors/smb/client/credits.ts";

describe("smb client credits from a hostile server", () => {
  it("credits - 65535 granted on every answer do not grow the window past its cap", async () => {
    const w = new CreditWindow();
    await w.take(0);
    for (let i = 0; i < 1_000; i++) w.granted(65535); // interim answers may each grant
    assert.equal(w.credits, MAX_CREDITS_HELD);
    // Each request spends from the capped window, so requests in flight (and those given up on a
    // server gone silent, each waiting for an answer) stay bounded by the cap.
    for (let i = 0; i < MAX_CREDITS_HELD; i++) await w.take(0);
    await assert.rejects(
      Promise.race([
        w.take(0),
        new Promise((_, reject) => setTimeout(() => reject(new Error("waiting")), 20)),
      ]),
      /waiting/,
    );
  });
});
