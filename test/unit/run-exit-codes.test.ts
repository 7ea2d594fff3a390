import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { EXIT_PRECEDENCE, ExitCode, runExitCode, targetExitCode } from "../../run/exit-codes.ts";
import type { ComponentPlan, StepFailure, TargetOutcome } from "../../machines/target/types.ts";

const base = { plan: null, results: [], rebootNeeded: false, secondaryFailures: [], leftovers: [] };
const plan = (action: ComponentPlan["action"]): ComponentPlan[] => [
  { id: "app", version: "2.0", installedVersion: action === "install" ? null : "1.0", action, reason: "x" },
];
const failure = (kind: StepFailure["kind"], step: StepFailure["step"]): StepFailure => ({
  step,
  kind,
  code: "X",
  retryable: false,
  message: "x",
  attempts: 1,
  at: 0,
});

describe("run exit codes", () => {
  const cases: [string, TargetOutcome, boolean, number][] = [
    ["installed", { ...base, status: "succeeded", installed: true }, false, 0],
    [
      "installed with reboot",
      { ...base, status: "succeeded", installed: true, rebootNeeded: true },
      false,
      1,
    ],
    ["nothing needed", { ...base, plan: plan("skip"), status: "succeeded", installed: false }, false, 3],
    ["component failed", { ...base, status: "failed", failure: failure("component", "install") }, false, 253],
    ["unreachable", { ...base, status: "failed", failure: failure("connection", "connect") }, false, 255],
    ["no ports", { ...base, status: "failed", failure: failure("ports", "allocatePorts") }, false, 255],
    ["agent failed", { ...base, status: "failed", failure: failure("agent", "hello") }, false, 255],
    ["cancelled", { ...base, status: "cancelled", cancel: "graceful" }, false, 130],
    [
      "dry run, something to install",
      { ...base, plan: plan("update"), status: "succeeded", installed: false },
      true,
      0,
    ],
    [
      "dry run, nothing to install",
      { ...base, plan: plan("skip"), status: "succeeded", installed: false },
      true,
      3,
    ],
  ];
  for (const [name, outcome, dry, code] of cases) {
    it(`run exit codes - a target that ended "${name}" exits ${code}`, () => {
      assert.equal(targetExitCode(outcome, dry), code);
    });
  }

  it("run exit codes - precedence is 130 over 255 over 253 over 1 over 0 over 3, for every pair", () => {
    assert.deepEqual(EXIT_PRECEDENCE, [130, 255, 253, 1, 0, 3]);
    for (const [i, strong] of EXIT_PRECEDENCE.entries()) {
      for (const weak of EXIT_PRECEDENCE.slice(i + 1)) {
        assert.equal(runExitCode([weak, strong]), strong, `${strong} over ${weak}`);
        assert.equal(runExitCode([strong, weak, weak]), strong, `${strong} over ${weak}`);
      }
    }
  });

  it("run exit codes - all nothing-needed is 3, one install makes it 0, no targets is 3", () => {
    assert.equal(runExitCode([3, 3, 3]), ExitCode.nothingNeeded);
    assert.equal(runExitCode([3, 0, 3]), ExitCode.ok);
    assert.equal(runExitCode([]), ExitCode.nothingNeeded);
  });

  it("run exit codes - a code outside the list counts as another failure, not as success", () => {
    assert.equal(runExitCode([0, 42]), ExitCode.otherFailure);
  });
});
