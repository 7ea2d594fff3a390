import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ExitCode, main } from "../../cli/main.ts";

const run = promisify(execFile);

async function capture(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const code = await main(argv, {
    out: (s) => (out += s),
    err: (s) => (err += s),
  });
  return { code, out, err };
}

describe("cli", () => {
  it("cli - --help documents every command and exit code", async () => {
    const r = await capture(["--help"]);
    assert.equal(r.code, ExitCode.ok);
    for (const word of ["deploy", "inventory", "253", "254", "255"]) assert.ok(r.out.includes(word), word);
  });

  it("cli - an unknown command is bad input (254) with a pointer to --help", async () => {
    const r = await capture(["depoly"]);
    assert.equal(r.code, 254);
    assert.equal(r.err, "sumac: unknown command 'depoly'; see 'sumac --help'\n");
  });

  it("cli - deploy without a job file is bad input (254) and says what it needs", async () => {
    const r = await capture(["deploy"]);
    assert.equal(r.code, 254);
    assert.equal(
      r.err,
      "sumac: 'deploy' needs a job file: sumac deploy <job.yaml>; see 'sumac deploy --help'\n",
    );
  });

  it("cli - a job file error is printed as file:line:column and exits 254", async () => {
    const dir = await mkdtemp(join(tmpdir(), "sumac-cli-"));
    try {
      const file = join(dir, "job.yaml");
      await writeFile(
        file,
        "targets:\n  - host: web01\n    port: 70000\n    auth: { agent: true }\npackage:\n  name: p\n  components: []\n",
      );
      const r = await capture(["deploy", file]);
      assert.equal(r.code, 254, r.err);
      assert.match(r.err, new RegExp(`^${file.replaceAll(".", "\\.")}:3:11: `));
      assert.match(r.err, /port/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("cli - without step implementations, the quick-start job is checked and the run said not wired (255)", async () => {
    const file = fileURLToPath(new URL("../../examples/quickstart.yaml", import.meta.url));
    const r = await capture(["deploy", file]);
    assert.equal(r.code, 255);
    assert.match(
      r.err,
      /a valid job \(1 target\(s\), 1 component\(s\)\), but running it is not wired in this build/,
    );
  });

  it("cli - the bin entry runs under node and prints the package version", async () => {
    const bin = fileURLToPath(new URL("../../cli/sumac.ts", import.meta.url));
    const { stdout } = await run(process.execPath, [bin, "--version"], { timeout: 30_000 });
    assert.match(stdout, /^\d+\.\d+\.\d+\n$/);
  });
});
