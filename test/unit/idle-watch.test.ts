import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { IdleWatch, type IdleTimers } from "../../agent/server/idle-watch.ts";

/** Timers run by hand: `advance` fires what is due, no real time passes. */
function manualTimers(): IdleTimers & { advance(ms: number): void } {
  let now = 0;
  let next = 1;
  const due = new Map<number, { at: number; callback: () => void }>();
  return {
    setTimeout: (callback, ms) => {
      due.set(next, { at: now + ms, callback });
      return next++;
    },
    clearTimeout: (handle) => void due.delete(handle as number),
    advance(ms) {
      now += ms;
      for (const [id, t] of [...due])
        if (t.at <= now) {
          due.delete(id);
          t.callback();
        }
    },
  };
}

describe("idle watch", () => {
  it("idle watch - fires once after the idle time with no request", () => {
    const timers = manualTimers();
    let fired = 0;
    const watch = new IdleWatch(1000, () => fired++, timers);
    watch.start();
    timers.advance(999);
    assert.equal(fired, 0);
    timers.advance(1);
    assert.equal(fired, 1);
    timers.advance(5000);
    assert.equal(fired, 1);
  });

  it("idle watch - does not run while a request is in progress, and restarts after it", () => {
    const timers = manualTimers();
    let fired = 0;
    const watch = new IdleWatch(1000, () => fired++, timers);
    watch.start();
    const done = watch.busy();
    timers.advance(10_000);
    assert.equal(fired, 0);
    done();
    timers.advance(999);
    assert.equal(fired, 0);
    timers.advance(1);
    assert.equal(fired, 1);
  });

  it("idle watch - stop disarms it", () => {
    const timers = manualTimers();
    let fired = 0;
    const watch = new IdleWatch(1000, () => fired++, timers);
    watch.start();
    watch.stop();
    timers.advance(5000);
    assert.equal(fired, 0);
  });
});
