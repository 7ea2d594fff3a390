import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { CallbackMessage } from "../../agent/protocol/callback-messages.ts";
import { WorkstationWatch } from "../../agent/server/workstation-watch.ts";

/** A clock and timers run by hand; `advance` fires what is due and lets its promises settle. */
function manualClock() {
  let now = 1_000_000;
  let next = 1;
  const due = new Map<number, { at: number; callback: () => void }>();
  return {
    now: () => now,
    timers: {
      setTimeout: (callback: () => void, ms: number) => {
        due.set(next, { at: now + ms, callback });
        return next++;
      },
      clearTimeout: (handle: unknown) => void due.delete(handle as number),
    },
    pending: () => due.size,
    async advance(ms: number) {
      const until = now + ms;
      // What is already under way (a heartbeat's send) settles first and arms its next timer.
      await new Promise((resolve) => setImmediate(resolve));
      for (;;) {
        const first = [...due].sort((a, b) => a[1].at - b[1].at)[0];
        if (first === undefined || first[1].at > until) break;
        due.delete(first[0]);
        now = first[1].at;
        first[1].callback();
        await new Promise((resolve) => setImmediate(resolve));
      }
      now = until;
    },
  };
}

/** A callback channel whose listener answers while `answering` is true. */
function channel(clock: { now(): number }) {
  const sent: CallbackMessage[] = [];
  const state = {
    answering: true,
    sent,
    lastAcknowledged: undefined as number | undefined,
    send(message: CallbackMessage) {
      sent.push(message);
      if (state.answering) state.lastAcknowledged = clock.now();
      return Promise.resolve(state.answering);
    },
  };
  return state;
}

describe("workstation watch", () => {
  it("workstation watch - sends a heartbeat at once, then every period while the workstation answers", async () => {
    const clock = manualClock();
    const ch = channel(clock);
    let lost: number | undefined;
    const watch = new WorkstationWatch(ch, { heartbeatMs: 1000, lostAfterMs: 3000, ...clock }, (ms) => {
      lost = ms;
    });
    watch.start();
    assert.equal(ch.sent.length, 1, "the first heartbeat goes as the agent starts listening");
    await clock.advance(10_000);
    assert.equal(ch.sent.length, 11);
    assert.ok(ch.sent.every((m) => m.kind === "heartbeat"));
    assert.equal(lost, undefined);
  });

  it("workstation watch - declares the workstation lost once nothing was acknowledged for lostAfterMs", async () => {
    const clock = manualClock();
    const ch = channel(clock);
    const lost: number[] = [];
    const watch = new WorkstationWatch(ch, { heartbeatMs: 1000, lostAfterMs: 3000, ...clock }, (ms) =>
      lost.push(ms),
    );
    watch.start();
    await clock.advance(2000);
    ch.answering = false;
    await clock.advance(2999);
    assert.deepEqual(lost, [], "2 s of silence after the last acknowledgement is not yet lost");
    await clock.advance(1);
    assert.deepEqual(lost, [3000]);
    await clock.advance(60_000);
    assert.deepEqual(lost, [3000], "reported once");
    assert.equal(clock.pending(), 0, "no heartbeat armed after it is lost");
  });

  it("workstation watch - counts from the start when the workstation never answered", async () => {
    const clock = manualClock();
    const ch = channel(clock);
    ch.answering = false;
    const lost: number[] = [];
    new WorkstationWatch(ch, { heartbeatMs: 500, lostAfterMs: 1500, ...clock }, (ms) =>
      lost.push(ms),
    ).start();
    await clock.advance(1000);
    assert.deepEqual(lost, []);
    await clock.advance(500);
    assert.deepEqual(lost, [1500]);
  });

  it("workstation watch - other acknowledged messages keep it alive, stop disarms it", async () => {
    const clock = manualClock();
    const ch = channel(clock);
    ch.answering = false;
    const lost: number[] = [];
    const watch = new WorkstationWatch(ch, { heartbeatMs: 1000, lostAfterMs: 2000, ...clock }, (ms) =>
      lost.push(ms),
    );
    watch.start();
    await clock.advance(1500);
    ch.lastAcknowledged = clock.now(); // an install's output line got through
    await clock.advance(1500);
    assert.deepEqual(lost, []);
    watch.stop();
    await clock.advance(10_000);
    assert.deepEqual(lost, []);
    assert.equal(clock.pending(), 0);
  });

  it("workstation watch - authenticated requests are signs of life: callbacks never acknowledged, requests flowing for 3 minutes, the agent stays", async () => {
    const clock = manualClock();
    const ch = channel(clock);
    ch.answering = false;
    const lost: number[] = [];
    const watch = new WorkstationWatch(ch, { heartbeatMs: 15_000, lostAfterMs: 60_000, ...clock }, (ms) =>
      lost.push(ms),
    );
    watch.start();
    // A request every 40 s, each answered at once.
    for (let t = 0; t < 180_000; t += 40_000) {
      watch.request()();
      await clock.advance(40_000);
    }
    assert.deepEqual(lost, []);
    // Requests stop: lost once a minute has passed since the last one.
    await clock.advance(60_000);
    assert.equal(lost.length, 1);
    assert.ok(lost[0]! >= 60_000 && lost[0]! < 80_000, `lost after ${lost[0]} ms`);
  });

  it("workstation watch - a request in progress keeps the agent however long it takes, and its end counts", async () => {
    const clock = manualClock();
    const ch = channel(clock);
    ch.answering = false;
    const lost: number[] = [];
    const watch = new WorkstationWatch(ch, { heartbeatMs: 15_000, lostAfterMs: 60_000, ...clock }, (ms) =>
      lost.push(ms),
    );
    watch.start();
    const done = watch.request();
    await clock.advance(5 * 60_000); // a long install, callbacks all dropped
    assert.deepEqual(lost, []);
    done();
    done(); // idempotent
    await clock.advance(59_000);
    assert.deepEqual(lost, []);
    await clock.advance(16_000);
    assert.equal(lost.length, 1);
  });

  it("workstation watch - refuses a lost time shorter than the heartbeat", () => {
    assert.throws(
      () =>
        new WorkstationWatch(channel({ now: () => 0 }), { heartbeatMs: 1000, lostAfterMs: 500 }, () => {}),
      /lostAfterMs at least heartbeatMs/,
    );
  });
});
