import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MAX_LINES_PER_CALL, RunEmitter } from "../../run/events/emitter.ts";
import { faultOf } from "../../agent/client/client.ts";
import type { XmlElement } from "../../agent/protocol/xml-tree.ts";
import { bytesText, DEFAULT_OUTPUT_BUDGET, droppedText, LINE_COST } from "../../run/events/output-budget.ts";
import type { RunEvent } from "../../run/types.ts";
import { Warnings } from "../../run/warnings.ts";

function emitter(budget = {}) {
  let now = 1_000_000;
  const events: RunEvent[] = [];
  const e = new RunEmitter(
    "r1",
    () => now,
    (ev) => events.push(ev),
    new Warnings(),
    budget,
  );
  const logs = (target = "t1") =>
    events.filter(
      (ev): ev is Extract<RunEvent, { type: "target.log" }> =>
        ev.type === "target.log" && ev.target === target,
    );
  return { e, logs, advance: (ms: number) => (now += ms) };
}

/** The numbers of "… N lines (B) of output dropped" lines. */
function dropped(messages: readonly string[]): number {
  return messages
    .map((m) => /^… ([\d,]+) lines? \(.+\) of output dropped/.exec(m)?.[1])
    .filter((n) => n !== undefined)
    .reduce((sum, n) => sum + Number(n.replaceAll(",", "")), 0);
}

const LINE = "x".repeat(100);
const change = { from: "exchanging", to: "exchanging", step: "logs" } as const;

describe("output budget", () => {
  it("output budget - the dropped line says the budget in the job's own units (KiB, MiB)", () => {
    assert.equal(bytesText(1023), "1023 B");
    assert.equal(bytesText(64 * 1024), "64.0 KiB");
    assert.equal(bytesText(3.2 * 1024 * 1024), "3.2 MiB");
    assert.equal(
      droppedText({ lines: 12_345, bytes: 3.2 * 1024 * 1024 }, DEFAULT_OUTPUT_BUDGET),
      "… 12,345 lines (3.2 MiB) of output dropped (over the output budget: 64.0 KiB/s, 8.0 MiB per target)",
    );
  });

  it("output budget - lines within the budget are shown as the agent's install output", () => {
    const { e, logs } = emitter();
    e.output("t1", "stdout: hello");
    assert.deepEqual(
      logs().map((l) => [l.source, l.step, l.level, l.message]),
      [["agent", "install", "info", "stdout: hello"]],
    );
  });

  it("output budget - a flood passes its burst, the rest is counted and said in one line at the change of state", () => {
    const { e, logs } = emitter();
    const total = 100_000;
    for (let i = 0; i < total; i++) e.output("t1", LINE);
    const shown = logs().filter((l) => l.source === "agent").length;
    const burst = Math.floor(DEFAULT_OUTPUT_BUDGET.burstBytes / (LINE.length + LINE_COST));
    assert.equal(shown, burst);
    assert.equal(logs().length, shown, "nothing said before it is time");
    e.stateChange("t1", change, 0);
    const said = logs().filter((l) => l.source === "sumac");
    assert.equal(said.length, 1);
    assert.equal(said[0]?.level, "warn");
    assert.equal(dropped(said.map((l) => l.message)), total - shown);
    assert.match(
      said[0].message,
      new RegExp(`\\(${bytesText((total - shown) * 100).replace(".", "\\.")}\\) of output dropped`),
    );
    // Said once: a second change has nothing to say.
    e.stateChange("t1", change, 0);
    assert.equal(logs().filter((l) => l.source === "sumac").length, 1);
  });

  it("output budget - the rate refills with time; a long flood is said every 10 s, not per line", () => {
    const { e, logs, advance } = emitter({ bytesPerSecond: 16 * 1024, burstBytes: 16 * 1024 });
    let sent = 0;
    for (let s = 0; s < 60; s++) {
      for (let i = 0; i < 1000; i++, sent++) e.output("t1", LINE);
      advance(1000);
    }
    e.stateChange("t1", change, 0);
    const shown = logs().filter((l) => l.source === "agent").length;
    const said = logs()
      .filter((l) => l.source === "sumac")
      .map((l) => l.message);
    // 16 KiB a second of 164-byte lines: 99 a second, 60 seconds.
    assert.ok(shown >= 99 * 60 && shown <= 100 * 61, `${shown} shown`);
    assert.ok(said.length >= 6 && said.length <= 61, `${said.length} reports`);
    assert.equal(dropped(said) + shown, sent);
  });

  it("output budget - the total per target holds whatever the rate; other targets keep their own budget", () => {
    const { e, logs, advance } = emitter({ maxBytes: 64 * 1024 });
    for (let s = 0; s < 100; s++) {
      for (let i = 0; i < 100; i++) e.output("t1", LINE);
      advance(1000);
    }
    e.output("t2", "stdout: done");
    const bytes = logs("t1")
      .filter((l) => l.source === "agent")
      .reduce((n, l) => n + l.message.length, 0);
    assert.ok(bytes <= 64 * 1024 && bytes > 60 * 1024, `${bytes} bytes shown`);
    assert.deepEqual(
      logs("t2").map((l) => l.message),
      ["stdout: done"],
    );
  });

  it("output budget - progress repeated by an agent is one event", () => {
    const events: RunEvent[] = [];
    const probe = new RunEmitter(
      "r1",
      () => 0,
      (ev) => events.push(ev),
      new Warnings(),
    );
    for (let i = 0; i < 1000; i++) probe.progress("t1", "app", 40);
    probe.progress("t1", "app", 50);
    probe.progress("t1", "other", 50);
    assert.deepEqual(
      events.map((ev) => (ev.type === "target.progress" ? `${ev.component} ${ev.percent}` : ev.type)),
      ["app 40", "app 50", "other 50"],
    );
  });

  it("output budget - a line is cut to its length, saying how much was left out", () => {
    const { e, logs } = emitter();
    e.output("t1", "y".repeat(5000));
    assert.equal(logs()[0]?.message, `${"y".repeat(2000)}…[3000 more]`);
  });

  it("output budget - 8 MiB of line breaks in one log call make at most 51 events", () => {
    const { e, logs } = emitter();
    const flood = "x\n".repeat(4 * 1024 * 1024);
    e.log("t1", "warn", `Shutdown not answered (${flood}): stopping the agent otherwise`);
    const messages = logs().map((l) => l.message);
    assert.equal(messages.length, MAX_LINES_PER_CALL + 1);
    assert.match(messages.at(-1)!, /^…\[8,388,\d{3} more characters in 4,194,2\d\d more lines not shown\]$/);
  });

  it("output budget - a fault's message from an agent is cut to 4 KiB when read", () => {
    const el = (local: string, children: XmlElement[], text = ""): XmlElement => ({
      uri: "",
      local,
      children,
      text,
    });
    const flood = "x\n".repeat(4 * 1024 * 1024);
    const fault = el("Fault", [
      el("detail", [el("AgentFault", [el("code", [], "C".repeat(10_000)), el("message", [], flood)])]),
    ]);
    const error = faultOf(fault, 500);
    assert.ok(error.message.includes(`${"x\n".repeat(2048)}…[${flood.length - 4096} more]`));
    assert.ok(error.message.length < 4096 + 200, `${error.message.length} characters`);
    assert.ok(error.code.length <= 64 + 20, error.code);
  });

  it("output budget - lines the target wrote itself (source agent) count against its budget", () => {
    const { e, logs } = emitter({ burstBytes: 10_000, bytesPerSecond: 1000, reportEveryMs: 10_000 });
    for (let i = 0; i < 100_000; i++) e.log("t1", "debug", `agent: ${LINE}`, { source: "agent" });
    const messages = logs().map((l) => l.message);
    assert.ok(messages.length < 100, `${messages.length} events`);
    e.stateChange("t1", change, 0);
    const all = logs().map((l) => l.message);
    assert.equal(dropped(all) + all.filter((m) => m.startsWith("agent: ")).length, 100_000);
  });

  it("output budget - progress going back and forth is heard once per new high, from zero again in a new state", () => {
    const events: RunEvent[] = [];
    const probe = new RunEmitter(
      "r1",
      () => 0,
      (ev) => events.push(ev),
      new Warnings(),
    );
    for (let i = 0; i < 1000; i++) probe.progress("t1", "app", i % 2 === 0 ? 1 : 2);
    probe.stateChange("t1", change, 0);
    probe.progress("t1", "app", 1);
    assert.deepEqual(
      events.map((ev) => (ev.type === "target.progress" ? `${ev.component} ${ev.percent}` : ev.type)),
      ["app 1", "app 2", "target.state", "app 1"],
    );
  });
});
