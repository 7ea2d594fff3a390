import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  compareVersions,
  decideComponent,
  InvalidVersionError,
  planComponents,
  toInstall,
  versionProblem,
} from "../../machines/target/components.ts";

const NONE = { rewrite: false, downgrade: false };

describe("target components", () => {
  const ordered: [string, string][] = [
    ["1.0", "1.1"],
    ["1.9", "1.10"],
    ["2.9.1", "2.10.0"],
    ["1.0", "1.0.1"],
    ["1.0.a", "1.0.1"],
    ["2.0~rc1", "2.0"],
    ["2.0~rc1", "2.0~rc2"],
    ["1.0a", "1.0b"],
    ["4.60", "4.60_2023"],
    ["9", "10"],
    ["99999999999999999999", "100000000000000000000"],
  ];
  for (const [older, newer] of ordered) {
    it(`target components - ${older} is older than ${newer}`, () => {
      assert.equal(compareVersions(older, newer), -1);
      assert.equal(compareVersions(newer, older), 1);
    });
  }

  it("target components - versions that differ only in separators or leading zeros are equal", () => {
    assert.equal(compareVersions("1.0", "1.00"), 0);
    assert.equal(compareVersions("1.0-2", "1.0.2"), 0);
    assert.equal(compareVersions("01.2", "1.2"), 0);
  });

  const bad: [string, RegExp][] = [
    ["", /is empty/],
    ["1.0 beta", /may hold only letters, digits/],
    ["..", /has no letter or digit/],
    ["1".repeat(65), /longer than 64 characters/],
  ];
  for (const [version, problem] of bad) {
    it(`target components - ${JSON.stringify(version.slice(0, 8))} is refused with its reason`, () => {
      assert.match(versionProblem(version) ?? "", problem);
      assert.throws(
        () => compareVersions(version, "1.0"),
        (e: unknown) =>
          e instanceof InvalidVersionError &&
          e.code === "INVALID_VERSION" &&
          !e.retryable &&
          problem.test(e.message),
      );
    });
  }

  const rules: [string | null, { rewrite: boolean; downgrade: boolean }, string, string][] = [
    [null, NONE, "install", "not-installed"],
    ["1.9", NONE, "update", "older-installed"],
    ["2.0", NONE, "skip", "current"],
    ["2.0", { rewrite: true, downgrade: false }, "rewrite", "current, rewrite"],
    ["2.0", { rewrite: false, downgrade: true }, "skip", "current"],
    ["2.1", NONE, "skip", "newer-installed"],
    ["2.1", { rewrite: true, downgrade: false }, "skip", "newer-installed"],
    ["2.1", { rewrite: false, downgrade: true }, "downgrade", "newer-installed, downgrade"],
    ["1.9", { rewrite: true, downgrade: true }, "update", "older-installed"],
  ];
  for (const [installed, options, action, reason] of rules) {
    it(`target components - 2.0 over ${installed ?? "nothing"} with ${JSON.stringify(options)}: ${action}`, () => {
      const plan = decideComponent({ id: "fw", version: "2.0" }, installed, options);
      assert.deepEqual(plan, { id: "fw", version: "2.0", installedVersion: installed, action, reason });
    });
  }

  it("target components - a component missing from the inventory counts as not installed", () => {
    const result = planComponents(
      [
        { id: "a", version: "1" },
        { id: "b", version: "1" },
      ],
      { a: "1" },
      NONE,
    );
    assert.ok(result.ok);
    assert.deepEqual(
      result.plan.map((p) => p.action),
      ["skip", "install"],
    );
    assert.deepEqual(
      toInstall(result.plan).map((p) => p.id),
      ["b"],
    );
  });

  it("target components - an inventory key on the prototype is not taken for a version", () => {
    const result = planComponents([{ id: "constructor", version: "1" }], {}, NONE);
    assert.ok(result.ok);
    assert.equal(result.plan[0]?.action, "install");
  });

  it("target components - a version that cannot be compared fails the plan, naming the component", () => {
    const result = planComponents([{ id: "nic", version: "1.4" }], { nic: "1.4 (beta)" }, NONE);
    assert.deepEqual(result, {
      ok: false,
      error: {
        code: "INVALID_VERSION",
        retryable: false,
        message: 'component nic: version "1.4 (beta)" may hold only letters, digits and . _ + ~ -',
      },
    });
  });

  it("target components - a package version that cannot be compared fails even when nothing is installed", () => {
    const result = planComponents([{ id: "nic", version: "" }], {}, NONE);
    assert.equal(result.ok, false);
  });
});
