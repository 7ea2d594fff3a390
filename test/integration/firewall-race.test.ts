/**
 * Two sumac processes on one host share the table `inet sumac`: the close that empties the chain
 * deletes the table, and must never take another process's rules with it. Real nft (nftables
 * 1.0.6 on Debian 12) in a network namespace of its own (the machine's ruleset is never touched),
 * two nftables backends of two lease domains with the real host lock (a lock file of the test's
 * own, so that sumac processes of the machine are not held up), each opening and closing in a
 * loop while the other does. Needs root, `ip`, `nft` and `flock`: elsewhere it skips with the
 * reason, and in CI it fails.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { createCommandRunner } from "../../base/command.ts";
import type { PortRule } from "../../actors/firewall/firewall.ts";
import { createFlockLock } from "../../actors/firewall/host-lock.ts";
import { createNftablesFirewall, nftTag } from "../../actors/firewall/nftables.ts";
import { netnsSkipReason } from "../support/netns.ts";

const run = promisify(execFile);

const skip = await netnsSkipReason("the firewall race test");
const ns = `sumac-fwr-${randomBytes(4).toString("hex")}`;
// nsenter joins the namespace only (ip netns exec also makes a mount namespace): 1,600 runs of nft.
const nsRun = createCommandRunner({ prefix: ["nsenter", `--net=/run/netns/${ns}`], timeoutMs: 10_000 });
const ITERATIONS = 200;

/** The comments of the rules in sumac's chain; none when the table is not there. */
async function comments(): Promise<string[]> {
  const out = await nsRun(["nft", "-j", "list", "chain", "inet", "sumac", "input"]);
  if (out.exitCode !== 0) return [];
  const doc = JSON.parse(out.stdout) as { nftables: Array<{ rule?: { comment?: string } }> };
  return doc.nftables.flatMap((item) => (item.rule?.comment === undefined ? [] : [item.rule.comment]));
}

async function tables(): Promise<string> {
  const out = await nsRun(["nft", "list", "tables"]);
  assert.equal(out.exitCode, 0, out.stderr);
  return out.stdout;
}

describe("firewall race", { skip }, () => {
  let dir = "";
  before(async () => {
    await run("ip", ["netns", "add", ns], { timeout: 10_000 });
    dir = await mkdtemp(join(tmpdir(), "sumac-fwr-"));
  });
  after(async () => {
    await run("ip", ["netns", "del", ns], { timeout: 10_000 });
    await rm(dir, { recursive: true, force: true });
  });

  it("firewall race - two lease domains opening and closing at once never lose each other's rules, and no table stays", async () => {
    const lockPath = join(dir, "nft.lock");
    /** One backend's loop, and how many of its closes have begun and ended. */
    interface Worker {
      readonly owner: string;
      readonly port: number;
      closesBegun: number;
      closesEnded: number;
      /** Settles the wait for the close now running, when one waits. */
      onCloseEnded?: () => void;
    }
    let checked = 0;
    const lost: string[] = [];

    async function loop(me: Worker, other: Worker): Promise<void> {
      const firewall = createNftablesFirewall({
        run: nsRun,
        owner: me.owner,
        lock: createFlockLock({ path: lockPath }),
      });
      for (let i = 0; i < ITERATIONS; i++) {
        const rule: PortRule = { runId: "run-1", leaseId: `lease-${i}`, port: me.port, peer: "10.0.0.7" };
        await firewall.open(rule);
        // A close of the other's that was running as this open ended may have listed the chain
        // before this rule was there: once it has ended, this rule must be there in full.
        if (other.closesBegun > other.closesEnded) {
          await new Promise<void>((resolve) => (other.onCloseEnded = resolve));
          const tag = nftTag(me.owner, rule);
          const count = (await comments()).filter((c) => c === tag).length;
          checked++;
          if (count !== 2) lost.push(`${tag}: ${count} of its 2 rules after ${other.owner}'s close`);
        }
        me.closesBegun++;
        try {
          await firewall.close(rule);
        } finally {
          me.closesEnded++;
          me.onCloseEnded?.();
          me.onCloseEnded = undefined;
        }
      }
    }

    const a: Worker = { owner: "r4c3a0wn3ra0wn", port: 61010, closesBegun: 0, closesEnded: 0 };
    const b: Worker = { owner: "r4c3b0wn3rb0wn", port: 61011, closesBegun: 0, closesEnded: 0 };
    await Promise.all([loop(a, b), loop(b, a)]);
    assert.deepEqual(lost, [], `rules lost to the other's close (${lost.length} of ${checked} checks)`);
    assert.ok(checked >= 20, `only ${checked} opens ended while the other's close ran`);
    assert.doesNotMatch(await tables(), /table inet sumac\b/, "the table goes with the last rule");
    console.log(`firewall race: ${2 * ITERATIONS} opens and closes, ${checked} opens ended during a close`);
  });
});
