import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { endsOnce, withDeadline } from "../../base/deadline.ts";

const never = (): Promise<never> => new Promise<never>(() => undefined);

describe("deadline", () => {
  it("deadline - gives what the work gives, in time", async () => {
    const timeout = new Error("late");
    assert.equal(await withDeadline({ ms: 1_000, timeout }, () => Promise.resolve(42)), 42);
    assert.equal(await withDeadline({ ms: 1_000, timeout }, () => 7), 7);
    await assert.rejects(
      withDeadline({ ms: 1_000, timeout }, () => Promise.reject(new RangeError("its own"))),
      RangeError,
    );
    await assert.rejects(
      withDeadline({ ms: 1_000, timeout }, () => {
        throw new TypeError("thrown at once");
      }),
      TypeError,
    );
  });

  it("deadline - rejects with the timeout error when time is up, even when the work ignores its signal", async () => {
    const timeout = new Error("late");
    let aborted: unknown;
    const started = performance.now();
    await assert.rejects(
      withDeadline({ ms: 30, timeout }, (signal) => {
        signal.addEventListener("abort", () => {
          aborted = signal.reason;
        });
        return never();
      }),
      (error) => error === timeout,
    );
    assert.ok(performance.now() - started >= 25, "not before its time");
    assert.equal(aborted, timeout, "the work's signal aborts with the same error");
  });

  it("deadline - a timeout made by a function is made only when time is up", async () => {
    let made = 0;
    const timeout = () => {
      made++;
      return new Error("late");
    };
    await withDeadline({ ms: 1_000, timeout }, () => sleep(1));
    assert.equal(made, 0);
    await assert.rejects(withDeadline({ ms: 5, timeout }, never), /late/);
    assert.equal(made, 1);
  });

  it("deadline - aborting the caller's signal rejects with its reason and aborts the work", async () => {
    const caller = new AbortController();
    let workAborted = false;
    const result = withDeadline(
      { ms: 10_000, timeout: new Error("late"), signal: caller.signal },
      (signal) => {
        signal.addEventListener("abort", () => (workAborted = true));
        return never();
      },
    );
    const reason = new Error("operator cancelled");
    caller.abort(reason);
    await assert.rejects(result, (error) => error === reason);
    assert.ok(workAborted);
    const noReason = new AbortController();
    noReason.abort();
    let called = false;
    await assert.rejects(
      withDeadline({ ms: 10_000, timeout: new Error("late"), signal: noReason.signal }, () => {
        called = true;
        return 1;
      }),
      { name: "AbortError" },
    );
    assert.equal(called, false, "an already aborted signal starts no work");
  });

  it("deadline - with waitForWork the result is what the work settles with after its signal", async () => {
    const timeout = new Error("late");
    const order: string[] = [];
    await assert.rejects(
      withDeadline(
        { ms: 20, timeout, waitForWork: true },
        (signal) =>
          new Promise<never>((_, reject) =>
            signal.addEventListener("abort", () => {
              order.push("aborted");
              // The work winds down (a process group reaped) before the call settles.
              setTimeout(() => {
                order.push("wound down");
                reject(signal.reason as Error);
              }, 30);
            }),
          ),
      ),
      (error) => error === timeout,
    );
    assert.deepEqual(order, ["aborted", "wound down"]);
  });

  it("deadline - a late rejection of the work is handled, the listener on the caller's signal is removed", async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on("unhandledRejection", onUnhandled);
    try {
      const caller = new AbortController();
      await assert.rejects(
        withDeadline({ ms: 5, timeout: new Error("late"), signal: caller.signal }, () =>
          sleep(20).then(() => Promise.reject(new Error("after the deadline"))),
        ),
        /late/,
      );
      await sleep(40);
      assert.deepEqual(unhandled, []);
      // Done: aborting now reaches no listener of the finished call.
      let reached = false;
      const second = withDeadline(
        { ms: 1_000, timeout: new Error("late"), signal: caller.signal },
        (signal) => {
          signal.addEventListener("abort", () => (reached = true));
          return sleep(1).then(() => "done");
        },
      );
      assert.equal(await second, "done");
      caller.abort();
      assert.equal(reached, false);
    } finally {
      process.off("unhandledRejection", onUnhandled);
    }
  });

  it("deadline - what the work gives too late is handed to dispose, so that nothing it opened is left", async () => {
    const disposed: string[] = [];
    const dispose = (value: string) => void disposed.push(value);
    await assert.rejects(
      withDeadline({ ms: 5, timeout: new Error("late"), dispose }, () =>
        sleep(30).then(() => "late session"),
      ),
      /late/,
    );
    await sleep(50);
    assert.deepEqual(disposed, ["late session"]);
    // Resolved, and the caller aborts before its answer is seen: the caller gets the abort, the
    // value goes to dispose.
    const caller = new AbortController();
    const result = withDeadline(
      { ms: 1_000, timeout: new Error("late"), signal: caller.signal, dispose },
      () => {
        queueMicrotask(() => caller.abort(new Error("cancelled")));
        return Promise.resolve("child process");
      },
    );
    await assert.rejects(result, /cancelled/);
    assert.deepEqual(disposed, ["late session", "child process"]);
    // In time: dispose is not called.
    assert.equal(
      await withDeadline({ ms: 1_000, timeout: new Error("late"), dispose }, () => "kept"),
      "kept",
    );
    assert.equal(disposed.length, 2);
  });

  it("deadline - work that holds something ends once: the first failure or the deadline releases it", async () => {
    const released: string[] = [];
    const failed = withDeadline(
      { ms: 1_000, timeout: new Error("late") },
      (stop) =>
        new Promise<string>((resolve, reject) => {
          const end = endsOnce(stop, reject, () => released.push("channel"));
          end.fail(new Error("refused"));
          end.fail(new Error("closed too"));
          assert.equal(end.succeed(), false, "a success after the failure is refused");
          assert.equal(end.done, true);
          resolve("never seen");
        }),
    );
    await assert.rejects(failed, /refused/);
    assert.deepEqual(released, ["channel"]);
    await assert.rejects(
      withDeadline(
        { ms: 5, timeout: new Error("late") },
        (stop) => new Promise((_, reject) => endsOnce(stop, reject, () => released.push("at the deadline"))),
      ),
      /late/,
    );
    assert.deepEqual(released, ["channel", "at the deadline"]);
    const ok = await withDeadline(
      { ms: 1_000, timeout: new Error("late") },
      (stop) =>
        new Promise<string>((resolve, reject) => {
          const end = endsOnce(stop, reject, () => released.push("not this"));
          if (end.succeed()) resolve("started");
          end.fail(new Error("too late to fail"));
        }),
    );
    assert.equal(ok, "started");
    assert.equal(released.length, 2, "nothing released after a success");
  });
});
