/**
 * Subjects and message schemas (`bus/subjects.ts`): what is valid encodes and decodes unchanged,
 * what is not is refused with `MessageSchemaError` naming the field, and ids map to subject tokens
 * and back.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { encodeJson } from "../../bus/bus.ts";
import {
  AcquireRequest,
  LEASE_SUBJECTS,
  MessageSchemaError,
  decode,
  encode,
  fromSubjectToken,
  subjectToken,
} from "../../bus/subjects.ts";
import {
  EVENT_PATTERNS,
  EVENT_STREAM,
  RunFinished,
  RunStarted,
  TargetLogLine,
  TargetStateChanged,
  schemaFor,
  subjects,
  type TargetStateChanged as TargetStateChangedType,
} from "../../run/events/subjects.ts";
import { targetMachine } from "../../machines/target/target.machine.ts";

const change: TargetStateChangedType = {
  run: "run-1",
  target: "web-01.example.com",
  from: "connecting",
  to: "shuttingDown",
  step: "connect",
  attempt: 3,
  at: 1_700_000_000_000,
  error: { step: "connect", code: "STEP_TIMEOUT", message: "no answer", retryable: true },
};

/** Asserts that `fn` throws a MessageSchemaError with a problem at `path`. */
function refuses(fn: () => unknown, path: string): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof MessageSchemaError, String(err));
    assert.equal(err.code, "BAD_MESSAGE");
    assert.equal(err.retryable, false);
    assert.ok(
      err.issues.some((i) => i.path === path),
      `expected a problem at ${path}, got ${JSON.stringify(err.issues)}`,
    );
    assert.match(err.message, new RegExp(path.replace(/[.()]/g, "\\$&")));
    return true;
  });
}

describe("subjects - schemas", () => {
  it("subjects - a state change carries exactly the target machine's top-level states", () => {
    const states = Object.keys(targetMachine.config.states ?? {});
    assert.ok(states.includes("shuttingDown") && states.length >= 10);
    for (const state of states)
      assert.doesNotThrow(
        () => encode(TargetStateChanged, { ...change, from: state, to: state } as never),
        state,
      );
    assert.throws(
      () => encode(TargetStateChanged, { ...change, to: "rebooting" } as never),
      MessageSchemaError,
    );
  });

  it("subjects - C1 and bidi controls from a target travel escaped on the bus, and decode unchanged", () => {
    const text = "ok \u009b2J \u202egnp.exe \u001b]52;c;x\u0007";
    const bytes = Buffer.from(encodeJson({ line: text }));
    // No raw control byte in the UTF-8: C0 as JSON escapes it anyway, C1 (C2 80..9F) and U+202E.
    assert.equal(/[\u0000-\u001f\u007f-\u009f\u202e]/.test(bytes.toString("utf8")), false);
    assert.match(bytes.toString("utf8"), /\\u009b2J \\u202egnp/);
    assert.deepEqual(JSON.parse(bytes.toString("utf8")), { line: text });
  });

  it("subjects - a valid state change encodes and decodes unchanged", () => {
    assert.deepEqual(decode(TargetStateChanged, encode(TargetStateChanged, change)), change);
  });

  it("subjects - decode drops fields it does not know (later v1 additions)", () => {
    const decoded = decode(TargetStateChanged, encodeJson({ ...change, addedLater: 1 }));
    assert.deepEqual(decoded, change);
  });

  it("subjects - a state change with a wrong or missing field is refused, naming it", () => {
    refuses(() => decode(TargetStateChanged, encodeJson({ ...change, to: "flying" })), "to");
    refuses(() => decode(TargetStateChanged, encodeJson({ ...change, step: "reboot" })), "step");
    refuses(() => decode(TargetStateChanged, encodeJson({ ...change, attempt: 0 })), "attempt");
    refuses(() => decode(TargetStateChanged, encodeJson({ ...change, at: 1.5 })), "at");
    const { run: _run, ...noRun } = change;
    refuses(() => decode(TargetStateChanged, encodeJson(noRun)), "run");
    refuses(
      () =>
        decode(TargetStateChanged, encodeJson({ ...change, error: { ...change.error, code: "has space" } })),
      "error.code",
    );
    refuses(
      () => decode(TargetStateChanged, encodeJson({ ...change, error: { step: "connect", code: "X" } })),
      "error.message",
    );
  });

  it("subjects - encode refuses what decode would refuse", () => {
    refuses(() => encode(TargetStateChanged, { ...change, from: "nowhere" } as never), "from");
    refuses(
      () =>
        encode(TargetLogLine, {
          run: "r",
          target: "t",
          at: 1,
          level: "loud",
          source: "sumac",
          message: "x",
        } as never),
      "level",
    );
  });

  it("subjects - bytes that are not JSON, or not an object, are refused", () => {
    refuses(() => decode(TargetStateChanged, new TextEncoder().encode("{not json")), "(root)");
    refuses(() => decode(TargetStateChanged, encodeJson([1, 2])), "(root)");
  });

  it("subjects - log lines, run events and lease requests are checked", () => {
    const line = {
      run: "r",
      target: "t",
      at: 5,
      level: "warn",
      source: "agent",
      message: "disk low",
    } as const;
    assert.deepEqual(decode(TargetLogLine, encode(TargetLogLine, line)), line);
    refuses(() => decode(TargetLogLine, encodeJson({ ...line, message: "x".repeat(8193) })), "message");
    const started = { run: "r", at: 1, targets: 20, inventoryOnly: false };
    assert.deepEqual(decode(RunStarted, encode(RunStarted, started)), started);
    refuses(() => decode(RunStarted, encodeJson({ ...started, targets: -1 })), "targets");
    const finished = {
      run: "r",
      at: 2,
      status: "failed",
      targets: { succeeded: 19, failed: 1, cancelled: 0 },
      durationMs: 1000,
    } as const;
    assert.deepEqual(decode(RunFinished, encode(RunFinished, finished)), finished);
    refuses(
      () => decode(RunFinished, encodeJson({ ...finished, targets: { ...finished.targets, failed: "1" } })),
      "targets.failed",
    );
    refuses(
      () =>
        decode(
          AcquireRequest,
          encodeJson({
            leaseId: "bad id!",
            workerHost: "h",
            range: "workstation",
            holder: { run: "r", target: "t" },
            leaseMs: 1000,
          }),
        ),
      "leaseId",
    );
  });

  it("subjects - each subject maps to its schema", () => {
    assert.equal(schemaFor(subjects.targetState("r", "t")), TargetStateChanged);
    assert.equal(schemaFor(subjects.targetLog("r", "t")), TargetLogLine);
    assert.equal(schemaFor(subjects.runStarted("r")), RunStarted);
    assert.equal(schemaFor(subjects.runFinished("r")), RunFinished);
    assert.equal(schemaFor(LEASE_SUBJECTS.acquire), AcquireRequest);
    assert.equal(schemaFor("sumac.v1.unknown"), undefined);
  });
});

describe("subjects - subject tokens", () => {
  const TOKEN = /^[A-Za-z0-9_-]+$/;

  it("subjects - plain ids stay as they are; others are escaped and come back", () => {
    assert.equal(subjectToken("web-01"), "web-01");
    assert.equal(subjectToken("web-01.example.com"), "web-01_2Eexample_2Ecom");
    for (const id of ["a_b", "[::1]:2222", "user@host", "ü-host", "x.y.z", "_", "-"]) {
      const token = subjectToken(id);
      assert.match(token, TOKEN, id);
      assert.equal(fromSubjectToken(token), id);
    }
    assert.notEqual(subjectToken("a_5F"), subjectToken("a_"), "an escape cannot be forged by an id");
  });

  it("subjects - subjects are versioned and made of valid tokens", () => {
    assert.equal(subjects.targetState("run-1", "h.example"), "sumac.v1.target.run-1.h_2Eexample.state");
    assert.equal(subjects.runFinished("run-1"), "sumac.v1.run.run-1.finished");
    assert.deepEqual(EVENT_PATTERNS.ofRun("r.1"), ["sumac.v1.target.r_2E1.>", "sumac.v1.run.r_2E1.*"]);
    for (const s of EVENT_STREAM.subjects) assert.ok(s.startsWith("sumac.v1."));
  });

  it("subjects - an empty or overlong id, and a bad escape, are refused", () => {
    assert.throws(() => subjectToken(""), { name: "MessageSchemaError", code: "BAD_MESSAGE" });
    assert.throws(() => subjectToken("x".repeat(257)), { name: "MessageSchemaError" });
    assert.throws(() => fromSubjectToken("a_zz"), { name: "MessageSchemaError" });
  });
});
