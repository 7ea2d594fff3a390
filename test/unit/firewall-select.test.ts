import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { CommandOutcome, CommandRunner } from "../../base/command.ts";
import { NFT_PROBE_ARGV } from "../../actors/firewall/nftables.ts";
import { createNoneFirewall } from "../../actors/firewall/none.ts";
import { selectFirewall, type FirewallMode } from "../../actors/firewall/select.ts";

/** A runner answering every call with `answer`, recording argv. */
function answering(answer: CommandOutcome) {
  const calls: Array<readonly string[]> = [];
  const run: CommandRunner = (argv) => {
    calls.push(argv);
    return Promise.resolve(answer);
  };
  return { run, calls };
}

const OK: CommandOutcome = { exitCode: 0, stdout: "table inet admin_fw\n", stderr: "" };
const EPERM: CommandOutcome = {
  exitCode: 1,
  stdout: "",
  stderr:
    "Operation not permitted (you must be root)\nnetlink: Error: cache initialization failed: Operation not permitted\n",
};
const ENOENT: CommandOutcome = { exitCode: null, stdout: "", stderr: "spawn nft ENOENT", missing: true };
const SLOW: CommandOutcome = {
  exitCode: null,
  stdout: "",
  stderr: "nft did not finish within 10000 ms",
  timedOut: true,
};

async function pick(mode: FirewallMode, platform: NodeJS.Platform, answer: CommandOutcome) {
  const lines: string[] = [];
  const { run, calls } = answering(answer);
  const firewall = await selectFirewall({
    mode,
    platform,
    run,
    owner: "own3r0wn3r0wn3",
    log: (m) => lines.push(m),
  });
  return { backend: firewall.backend, lines, calls };
}

describe("firewall select", () => {
  it("firewall select - auto picks netsh on Windows without probing", async () => {
    const { backend, lines, calls } = await pick("auto", "win32", EPERM);
    assert.equal(backend, "netsh");
    assert.deepEqual(lines, ["firewall: using netsh (auto: platform is win32)"]);
    assert.equal(calls.length, 0);
  });

  it("firewall select - auto picks nftables on Linux when nft list tables works", async () => {
    const { backend, lines, calls } = await pick("auto", "linux", OK);
    assert.equal(backend, "nftables");
    assert.deepEqual(calls, [NFT_PROBE_ARGV]);
    assert.deepEqual(lines, ["firewall: using nftables (auto: linux, and nft list tables works)"]);
  });

  it("firewall select - auto falls back to none on Linux and says why", async () => {
    const denied = await pick("auto", "linux", EPERM);
    assert.equal(denied.backend, "none");
    assert.deepEqual(denied.lines, [
      "firewall: using none (auto: linux, but nft list tables: Operation not permitted (you must be root); needs root or CAP_NET_ADMIN)",
    ]);
    const missing = await pick("auto", "linux", ENOENT);
    assert.equal(missing.backend, "none");
    assert.match(missing.lines[0] ?? "", /ENOENT; install nftables\)$/);
    const slow = await pick("auto", "linux", SLOW);
    assert.equal(slow.backend, "none");
    assert.match(slow.lines[0] ?? "", /did not finish within 10000 ms; nft did not answer as expected\)$/);
  });

  it("firewall select - auto on another platform is none", async () => {
    const { backend, lines, calls } = await pick("auto", "darwin", OK);
    assert.equal(backend, "none");
    assert.deepEqual(lines, ["firewall: using none (auto: no backend for platform darwin)"]);
    assert.equal(calls.length, 0);
  });

  it("firewall select - a configured backend is used as configured", async () => {
    assert.equal((await pick("netsh", "linux", EPERM)).backend, "netsh");
    assert.equal((await pick("none", "linux", OK)).backend, "none");
    assert.deepEqual((await pick("none", "win32", OK)).lines, [
      "firewall: using none (configured; ports are not registered)",
    ]);
    assert.deepEqual((await pick("nftables", "linux", OK)).lines, [
      "firewall: using nftables (configured; nft list tables works)",
    ]);
  });

  it("firewall select - configured nftables that cannot run is an error, not a quiet none", async () => {
    await assert.rejects(pick("nftables", "linux", EPERM), {
      name: "FirewallError",
      code: "FIREWALL_NOT_PERMITTED",
    });
    await assert.rejects(pick("nftables", "linux", ENOENT), { code: "FIREWALL_TOOL_MISSING" });
    await assert.rejects(pick("nftables", "linux", SLOW), { code: "TIMEOUT", retryable: true });
  });

  it("firewall select - the none backend registers nothing and logs each port it did not register", async () => {
    const lines: string[] = [];
    const fw = createNoneFirewall({ log: (m) => lines.push(m) });
    const rule = { runId: "run-7", leaseId: "lease-42", port: 61004, peer: "::ffff:10.0.0.7" };
    assert.deepEqual(await fw.open(rule), {
      backend: "none",
      registered: false,
      tag: "run=run-7 lease=lease-42 port=61004",
    });
    assert.deepEqual(lines, [
      "firewall: none, port 61004/tcp for peer 10.0.0.7 not registered (run=run-7 lease=lease-42 port=61004)",
    ]);
    assert.deepEqual(await fw.close(rule), { backend: "none", removed: false });
    assert.deepEqual(await fw.sweep(() => false), { removed: [], kept: [], foreign: 0 });
    await assert.rejects(fw.open({ ...rule, port: 0 }), { code: "FIREWALL_BAD_RULE" });
  });
});
