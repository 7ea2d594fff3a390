import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createCommandRunner } from "../../base/command.ts";

// Real child processes: the Node binary running this test, so nothing else needs to be installed.
const node = process.execPath;

describe("firewall command", () => {
  it("firewall command - gives exit code, stdout and stderr, and feeds stdin", async () => {
    const run = createCommandRunner();
    const script =
      "let s='';process.stdin.on('data',d=>s+=d).on('end',()=>{console.log(s.toUpperCase());console.error('warn');process.exit(3)})";
    assert.deepEqual(await run([node, "-e", script], { stdin: "flush ruleset" }), {
      exitCode: 3,
      stdout: "FLUSH RULESET\n",
      stderr: "warn\n",
    });
  });

  it("firewall command - the prefix goes before every argv", async () => {
    const run = createCommandRunner({ prefix: [node, "-e", "console.log(process.argv.slice(1).join(','))"] });
    assert.equal((await run(["nft", "list", "tables"])).stdout, "nft,list,tables\n");
  });

  it("firewall command - a missing program is reported as missing", async () => {
    const out = await createCommandRunner()(["/nonexistent/sumac-no-such-tool", "x"]);
    assert.equal(out.missing, true);
    assert.equal(out.exitCode, null);
    assert.match(out.stderr, /ENOENT/);
  });

  it("firewall command - at the deadline the process is killed and the outcome says so", async () => {
    const out = await createCommandRunner({ timeoutMs: 300 })([node, "-e", "setInterval(()=>{},1000)"]);
    assert.equal(out.timedOut, true);
    assert.equal(out.exitCode, null);
    assert.match(out.stderr, /did not finish within 300 ms/);
  });

  it("firewall command - aborting kills the process and rejects with the signal's reason", async () => {
    const controller = new AbortController();
    const reason = new Error("target cancelled");
    const pending = createCommandRunner()([node, "-e", "console.log('up');setInterval(()=>{},1000)"], {
      signal: controller.signal,
    });
    setTimeout(() => controller.abort(reason), 100);
    await assert.rejects(pending, (error) => error === reason);
    await assert.rejects(
      createCommandRunner()([node, "-e", ""], { signal: controller.signal }),
      (e) => e === reason,
    );
  });

  it("firewall command - output past the cap kills the process", async () => {
    const run = createCommandRunner({ maxOutputBytes: 64 * 1024 });
    const out = await run([node, "-e", "const b='x'.repeat(65536);for(;;)process.stdout.write(b)"]);
    assert.equal(out.tooLarge, true);
    assert.ok(out.stdout.length <= 64 * 1024);
    assert.match(out.stderr, /printed more than 65536 bytes/);
  });
});
