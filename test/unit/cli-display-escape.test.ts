import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { DisplayOptions, RunDisplay } from "../../cli/display.ts";
import { JsonDisplay } from "../../cli/display-json.ts";
import { LineDisplay } from "../../cli/display-lines.ts";
import { LiveDisplay } from "../../cli/display-live.ts";
import type { RunReport, TargetReport } from "../../run/report-types.ts";
import type { RunEvent, RunResult } from "../../run/types.ts";

/** What a hostile target prints: a clipboard write, a title, a cursor move up and a fake success. */
const HOSTILE = "\x1b]52;c;cm0gLXJmIC8=\x07\x1b]0;pwned\x07\x1b[1A\r\x1b[2K\u009b1Asucceeded\u202e";
/** Any C0 (but the newline sumac ends its own lines with), DEL, C1 or bidi control. */
const CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/;

const run = "r1";
const events: RunEvent[] = [
  { type: "run.started", run, at: 1, job: "j", targets: 1, runDir: "/tmp/r1", bus: "embedded" } as RunEvent,
  { type: "target.log", run, target: "t1", at: 2, level: "info", source: "agent", message: HOSTILE },
  { type: "target.log", run, target: "t1", at: 3, level: "warn", source: "agent", message: HOSTILE },
  {
    type: "target.state",
    run,
    target: "t1",
    at: 4,
    from: "exchanging",
    to: "shuttingDown",
    step: "logs",
    error: { step: "install", code: "INSTALL_FAILED", message: HOSTILE, component: "app" },
  },
  {
    type: "target.state",
    run,
    target: "t1",
    at: 5,
    from: "shuttingDown",
    to: "failed",
    error: { step: "install", code: "INSTALL_FAILED", message: HOSTILE },
  },
  { type: "run.note", run, at: 6, message: HOSTILE },
];

function result(): RunResult {
  const target = {
    id: "t1",
    status: "failed",
    exitCode: 253,
    inventoried: false,
    durationMs: 10,
    components: [],
    failure: {
      step: "install",
      code: "INSTALL_FAILED",
      message: HOSTILE,
      retryable: false,
      kind: "step",
      attempts: 1,
      at: 5,
    },
  } as unknown as TargetReport;
  const report = {
    runId: run,
    command: "deploy",
    durationMs: 10,
    exitCode: 253,
    counts: { total: 1, succeeded: 0, failed: 1, cancelled: 0 },
    targets: [target],
  } as unknown as RunReport;
  return { exitCode: 253, report, reportPath: "/tmp/r1/report.json", warnings: [HOSTILE] };
}

function play(make: (o: DisplayOptions) => RunDisplay): { out: string; err: string } {
  let out = "";
  let err = "";
  const display = make({
    out: (s) => (out += s),
    err: (s) => (err += s),
    command: "deploy",
    targets: ["t1"],
    columns: 400,
    rows: 20,
    redrawMs: 1_000_000,
  });
  for (const e of events) display.event(e);
  display.notice(HOSTILE);
  display.finish(result());
  return { out, err };
}

/** sumac's own live-view sequences: up n lines (ESC [ n F) or to the line's start, and clear down. */
const OWN = /(\x1b\[\d+F|\r)\x1b\[J/g;

describe("display escapes", () => {
  it("display escapes - the line display shows a target's controls escaped, in lines, errors, notices and summary", () => {
    const { out } = play((o) => new LineDisplay(o));
    assert.doesNotMatch(out, CONTROL);
    assert.match(
      out,
      /agent info: \\x1b\]52;c;cm0gLXJmIC8=\\x07\\x1b\]0;pwned\\x07\\x1b\[1A\\x0d\\x1b\[2K\\u009b1Asucceeded\\u202e$/m,
    );
    assert.match(out, /^t1\s+failed\s+253.*INSTALL_FAILED: \\x1b\]52/m, "the summary's failure column");
    assert.match(out, /^warning: \\x1b\]52/m);
    assert.match(out, /^sumac: \\x1b\]52/m, "notices");
  });

  it("display escapes - the live view sends no control of a target's, only its own redraw sequences", () => {
    const { out } = play((o) => new LiveDisplay(o));
    assert.match(out, OWN, "the live view did redraw");
    assert.doesNotMatch(out.replace(OWN, ""), CONTROL);
    assert.match(out, /t1: agent warn: \\x1b\]52;c;/);
    assert.match(out, /t1: install app: INSTALL_FAILED: \\x1b\]52;c;/);
  });

  it("display escapes - --json escapes C0, DEL, C1 and bidi controls and keeps the text exact", () => {
    const { out, err } = play((o) => new JsonDisplay(o));
    assert.doesNotMatch(out, CONTROL);
    assert.doesNotMatch(err, CONTROL);
    const lines = out
      .trimEnd()
      .split("\n")
      .map((l) => JSON.parse(l) as { type: string; message?: string });
    assert.equal(lines.find((e) => e.type === "target.log")?.message, HOSTILE);
    assert.match(out, /\\u009b1Asucceeded\\u202e/);
  });
});
