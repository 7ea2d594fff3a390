import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile, chmod } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);
const probe = `
import { containerSkipReason } from ${JSON.stringify(new URL("../support/engine.ts", import.meta.url).href)};
try { console.log(JSON.stringify({ skip: await containerSkipReason() ?? null })); }
catch (e) { console.log(JSON.stringify({ threw: e.name, code: e.code, message: e.message })); }
`;

/** Runs the engine probe in a child process with `docker` replaced by a script that fails. */
async function probeWith(ci: string | undefined): Promise<Record<string, string | null>> {
  const dir = await mkdtemp(join(tmpdir(), "sumac-fake-docker-"));
  try {
    const docker = join(dir, "docker");
    await writeFile(docker, "#!/bin/sh\necho 'Cannot connect to the Docker daemon' >&2\nexit 1\n");
    await chmod(docker, 0o755);
    const env: NodeJS.ProcessEnv = { ...process.env, PATH: `${dir}:${process.env.PATH ?? ""}` };
    delete env.CI;
    if (ci !== undefined) env.CI = ci;
    const { stdout } = await run(process.execPath, ["--input-type=module", "-e", probe], {
      env,
      timeout: 30_000,
    });
    return JSON.parse(stdout) as Record<string, string | null>;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

describe("engine policy", () => {
  it("engine policy - outside CI a missing engine skips, with the reason and the way to get one", async () => {
    const r = await probeWith(undefined);
    assert.match(r.skip ?? "", /no container engine answers \(Cannot connect to the Docker daemon\)/);
    assert.match(r.skip ?? "", /npm run targets/);
  });

  it("engine policy - in CI a missing engine is an error, not a skip", async () => {
    const r = await probeWith("true");
    assert.equal(r.threw, "EngineUnavailableError");
    assert.equal(r.code, "ENGINE_UNAVAILABLE");
    assert.match(r.message ?? "", /cannot run in CI/);
  });

  it("engine policy - CI=false counts as outside CI", async () => {
    const r = await probeWith("false");
    assert.equal(typeof r.skip, "string");
  });
});
