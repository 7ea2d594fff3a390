import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { buildAgent } from "../../agent/build.ts";
import {
  importCycles,
  importGraph,
  importsOf,
  layerOf,
  layerViolations,
  opaqueImports,
  opaqueImportsOf,
  ROOT,
  sourceFiles,
  type ImportGraph,
} from "../support/layers.ts";

describe("layers", () => {
  const graph = importGraph();

  it("layers - every file of the product is in a layer, and the check reads real imports", () => {
    const files = sourceFiles();
    assert.ok(files.length > 150, `only ${files.length} files found`);
    assert.deepEqual(
      files.filter((f) => layerOf(f) === undefined || layerOf(f) === "agent"),
      [],
      "a file outside every layer",
    );
    // The entry point reaches the engine, the engine the machines: the parser sees both kinds.
    assert.ok(graph.get("cli/command.ts")?.includes("run/run-job.ts"));
    assert.ok(graph.get("run/events/target-schemas.ts")?.includes("machines/target/target.machine.ts"));
  });

  it("layers - no folder imports one above it: cli → run → actors → machines → bus, agent protocol → base", () => {
    assert.deepEqual(layerViolations(graph), []);
  });

  it("layers - no import cycle between files", () => {
    assert.deepEqual(importCycles(graph), []);
  });

  it("layers - a deliberately wrong import fails the check, naming both files and the rule", () => {
    // The bus reaching up into the machines, as bus/schemas/target.ts once did.
    const text = [
      'import { z } from "zod";',
      'import type { StepName } from "../../machines/target/types.ts";',
      'export { TargetState } from "../../run/events/target-schemas.ts";',
    ].join("\n");
    const wrong: ImportGraph = new Map([
      ...graph,
      ["bus/schemas/evil.ts", importsOf("bus/schemas/evil.ts", text)],
    ]);
    assert.deepEqual(
      layerViolations(wrong).filter((v) => v.from === "bus/schemas/evil.ts"),
      [
        {
          from: "bus/schemas/evil.ts",
          to: "machines/target/types.ts",
          why: "bus may import only base, not machines",
        },
        {
          from: "bus/schemas/evil.ts",
          to: "run/events/target-schemas.ts",
          why: "bus may import only base, not run",
        },
      ],
    );
    // The agent's server is bundled alone: it may not reach the workstation's client.
    const serverToClient: ImportGraph = new Map([["agent/server/evil.ts", ["agent/client/credentials.ts"]]]);
    assert.equal(
      layerViolations(serverToClient)[0]?.why,
      "agent/server may import only agent/protocol, base, not agent/client",
    );
    // Nor may the product import tests.
    const toTests: ImportGraph = new Map([
      ["run/evil.ts", importsOf("run/evil.ts", 'import "../test/support/ssh.ts";')],
    ]);
    assert.match(layerViolations(toTests)[0]?.why ?? "", /not part of sumac/);
  });

  it("layers - a deliberately made cycle fails the check, naming its files", () => {
    const cyclic: ImportGraph = new Map([
      ...graph,
      ["actors/target/a.ts", importsOf("actors/target/a.ts", 'import { b } from "./b.ts";')],
      ["actors/target/b.ts", importsOf("actors/target/b.ts", 'const { c } = await import("./c.ts");')],
      ["actors/target/c.ts", importsOf("actors/target/c.ts", 'import type { A } from "./a.ts";')],
      ["actors/target/self.ts", ["actors/target/self.ts"]],
    ]);
    assert.deepEqual(importCycles(cyclic), [
      ["actors/target/a.ts", "actors/target/b.ts", "actors/target/c.ts"],
      ["actors/target/self.ts"],
    ]);
  });

  it("layers - an import quoted in a comment or a string is not an import; every form of a real one is", () => {
    const quoted = [
      "/**",
      " * @example",
      ' * import { x } from "../cli/main.ts";',
      " */",
      '// import "../cli/main.ts";',
      'const s = "/*";',
      "export {};",
    ].join("\n");
    assert.deepEqual(importsOf("bus/doc.ts", quoted), []);
    const forms = [
      'const s = "/*";',
      'import{a}from"../cli/a.ts";',
      'import {\n  b, // why\n  c,\n} from "../cli/b.ts";',
      'export * from "../cli/c.ts";',
      'export * as d from "../cli/d.ts";',
      'import type { E } from "../cli/e.ts";',
      'const f = await import("../cli/f.ts");',
    ].join("\n");
    assert.deepEqual(importsOf("bus/forms.ts", forms), [
      "cli/a.ts",
      "cli/b.ts",
      "cli/c.ts",
      "cli/d.ts",
      "cli/e.ts",
      "cli/f.ts",
    ]);
  });

  it("layers - no import in the product is beyond the check: no computed import(), no require", () => {
    assert.deepEqual(opaqueImports(), []);
    const around = 'const name = "../cli/main.ts";\nawait import(name);\nconst r = require("../cli/x.ts");';
    assert.deepEqual(opaqueImportsOf("run/evil.ts", around), [
      "run/evil.ts:2: import() of a computed path",
      "run/evil.ts:3: require()",
    ]);
  });

  it("layers - the agent bundle is made of the agent's server, the protocol and base only", async () => {
    const built = await buildAgent({ outDir: join(ROOT, "dist", "agent-layers-test") });
    const own = (built.inputs ?? [])
      .filter((p) => !p.includes("/node_modules/"))
      .map((p) => p.slice(ROOT.length + 1))
      .filter((p) => p !== "agent/build.ts");
    assert.ok(own.includes("agent/server/main.ts"));
    assert.deepEqual(
      own.filter((p) => !/^(agent\/server|agent\/protocol|base)\//.test(p)),
      [],
      "the bundle takes code that does not run on targets",
    );
  });
});
