import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { JOB_SCHEMA_PATH, jobJsonSchema, jobJsonSchemaText } from "../../run/job/json-schema.ts";
import { loadJob } from "../../run/job/load.ts";

const run = promisify(execFile);
const root = fileURLToPath(new URL("../../", import.meta.url));
const RUN_TIMEOUT_MS = 10_000;

let home = "";
let savedHome: string | undefined;

before(async () => {
  // examples/fleet.yaml names ~/.ssh/id_ed25519; give it a home where that file exists.
  home = await mkdtemp(join(tmpdir(), "sumac-job-home-"));
  await mkdir(join(home, ".ssh"));
  await writeFile(join(home, ".ssh", "id_ed25519"), "placeholder\n");
  savedHome = process.env.HOME;
  process.env.HOME = home;
});
after(async () => {
  if (savedHome === undefined) delete process.env.HOME;
  else process.env.HOME = savedHome;
  await rm(home, { recursive: true, force: true });
});

describe("job file schema and examples", () => {
  it("job schema - the committed JSON Schema is the one the zod schema generates", async () => {
    // Compared as JSON, not text: the file is formatted by Prettier, the generator is not.
    const committed = JSON.parse(await readFile(join(root, JOB_SCHEMA_PATH), "utf8")) as unknown;
    assert.deepEqual(committed, jobJsonSchema(), "stale: run node run/job/write-schema.ts --write");
  });

  it("job schema - the JSON Schema closes every mapping and documents the top level", () => {
    const schema = JSON.parse(jobJsonSchemaText()) as Record<string, unknown>;
    assert.equal(schema.$schema, "http://json-schema.org/draft-07/schema#");
    assert.deepEqual(schema.required, ["targets", "package"]);
    let open = 0;
    const walk = (node: unknown): void => {
      if (typeof node !== "object" || node === null) return;
      const n = node as Record<string, unknown>;
      if (n.type === "object" && n.additionalProperties !== false) open++;
      Object.values(n).forEach(walk);
    };
    walk(schema);
    assert.equal(open, 0, "every object in the schema has additionalProperties: false");
  });

  it("job schema - each example names the schema for editors and loads without errors", async () => {
    for (const name of ["quickstart.yaml", "fleet.yaml"]) {
      const file = join(root, "examples", name);
      const text = await readFile(file, "utf8");
      assert.ok(text.startsWith("# yaml-language-server: $schema=../schema/job.schema.json\n"), name);
      const job = await loadJob(file);
      assert.ok(job.targets.length > 0 && job.package.components.length > 0, name);
    }
  });

  it("job schema - the quick start deploys to this machine and the fleet to three SSH targets", async () => {
    const quick = await loadJob(join(root, "examples", "quickstart.yaml"));
    assert.deepEqual(
      quick.targets.map((t) => t.transport),
      ["local"],
    );
    const fleet = await loadJob(join(root, "examples", "fleet.yaml"));
    assert.deepEqual(
      fleet.targets.map((t) =>
        t.transport === "ssh" ? [t.id, t.auth.method, t.become?.password?.kind ?? !!t.become] : t.id,
      ),
      [
        ["web-1", "key", true],
        ["web-2.example.net:2222", "agent", "env"],
        ["db-1", "password", false],
      ],
    );
  });

  it("job schema - the quick start's component detects absent, installs, then detects its own version", async () => {
    const job = await loadJob(join(root, "examples", "quickstart.yaml"));
    const component = job.package.components[0];
    assert.ok(component);
    const staging = await mkdtemp(join(tmpdir(), "sumac-quickstart-"));
    try {
      for (const f of component.files) await writeFile(join(staging, f.name), await readFile(f.source));
      const env = { PATH: process.env.PATH, SUMAC_QUICKSTART_DIR: join(staging, "out") };
      const sh = (command: string) =>
        run("sh", ["-c", command], { cwd: staging, env, timeout: RUN_TIMEOUT_MS });
      await assert.rejects(sh(component.detect), { code: component.absentExitCode });
      const installed = await sh(component.install);
      assert.match(installed.stdout, /^installed hello 1\.0\.0 in /m);
      const detected = await sh(component.detect);
      assert.equal(detected.stdout.split("\n")[0], component.version);
    } finally {
      await rm(staging, { recursive: true, force: true });
    }
  });
});
