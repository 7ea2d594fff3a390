import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { ExitCode, main } from "../../cli/main.ts";

const run = promisify(execFile);

function capture(argv: string[]): { code: number; out: string; err: string } {
  let out = "";
  let err = "";
  const code = main(
    argv,
    (s) => (out += s),
    (s) => (err += s),
  );
  return { code, out, err };
}

describe("cli", () => {
  it("cli - --help documents every command and exit code", () => {
    const r = capture(["--help"]);
    assert.equal(r.code, ExitCode.ok);
    for (const word of ["deploy", "inventory", "253", "254", "255"]) assert.ok(r.out.includes(word), word);
  });

  it("cli - an unknown command is bad input (254) with a pointer to --help", () => {
    const r = capture(["depoly"]);
    assert.equal(r.code, 254);
    assert.equal(r.err, "sumac: unknown command 'depoly'; see 'sumac --help'\n");
  });

  it("cli - the bin entry runs under node and prints the package version", async () => {
    const bin = fileURLToPath(new URL("../../cli/sumac.ts", import.meta.url));
    const { stdout } = await run(process.execPath, [bin, "--version"], { timeout: 30_000 });
    assert.match(stdout, /^\d+\.\d+\.\d+\n$/);
  });
});
