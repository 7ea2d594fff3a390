/**
 * agent/server/firewall.ts against the real nft (nftables 1.0.6 on Debian 12) inside a network namespace
 * of its own, so the machine's ruleset is never touched, and the agents' host lock with the real
 * `flock` on a lock file of the test's own. Needs root, `ip`, `nft` and `flock`: elsewhere it
 * skips with the reason, and in CI it fails.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import {
  createAgentNftLock,
  createNftRunner,
  deregisterAgentPort,
  registerAgentPort,
  ruleComment,
  type AgentPortRule,
} from "../../agent/server/firewall.ts";
import { netnsSkipReason } from "../support/netns.ts";

const run = promisify(execFile);

const skip = await netnsSkipReason("the nft test");
const ns = `sumac-fw-${randomBytes(4).toString("hex")}`;
const inNs = ["ip", "netns", "exec", ns];
const nft = createNftRunner({ command: [...inNs, "nft"] });

async function ruleset(): Promise<string> {
  const { stdout } = await run("ip", ["netns", "exec", ns, "nft", "list", "ruleset"], { timeout: 5_000 });
  return stdout;
}

describe("firewall nft", { skip }, () => {
  before(async () => {
    await run("ip", ["netns", "add", ns], { timeout: 5_000 });
    // A table the administrator owns: sumac must leave it as it is.
    const admin =
      "table inet admin_fw {\n\tchain input {\n\t\ttype filter hook input priority 10; policy accept;\n\t\ttcp dport 22 accept\n\t}\n}\n";
    const out = await nft(["-f", "-"], admin);
    assert.equal(out.exitCode, 0, out.stderr);
  });
  let dir = "";
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "sumac-afw-"));
  });
  after(async () => {
    await run("ip", ["netns", "del", ns], { timeout: 5_000 });
    await rm(dir, { recursive: true, force: true });
  });

  const a: AgentPortRule = { runId: "run-a", targetId: "web01", port: 62288, source: "10.0.0.1" };
  const b: AgentPortRule = { runId: "run-b", targetId: "web01", port: 62289, source: "fd00::1" };

  it("firewall nft - registers each agent's port with a tagged accept and drop pair in sumac's table", async () => {
    assert.deepEqual(await registerAgentPort(a, nft), { status: "registered", comment: ruleComment(a) });
    assert.deepEqual(await registerAgentPort(b, nft), { status: "registered", comment: ruleComment(b) });
    const text = await ruleset();
    assert.match(
      text,
      /table inet sumac_agent \{\n\tchain input \{\n\t\ttype filter hook input priority filter; policy accept;/,
    );
    assert.match(
      text,
      /ip saddr 10\.0\.0\.1 tcp dport 62288 accept comment "sumac run=run-a target=web01 port=62288"/,
    );
    assert.match(
      text,
      /ip6 saddr fd00::1 tcp dport 62289 accept comment "sumac run=run-b target=web01 port=62289"/,
    );
    assert.match(text, /tcp dport 62288 drop comment "sumac run=run-a target=web01 port=62288"/);
  });

  it("firewall nft - removing one agent's rule keeps the other's and the table", async () => {
    assert.equal((await deregisterAgentPort(a, nft)).status, "removed");
    const text = await ruleset();
    assert.doesNotMatch(text, /dport 62288/);
    assert.match(text, /dport 62289/);
  });

  it("firewall nft - removing the last rule deletes sumac's table and leaves the administrator's", async () => {
    assert.equal((await deregisterAgentPort(b, nft)).status, "removed");
    assert.equal((await deregisterAgentPort(b, nft)).status, "absent");
    const text = await ruleset();
    assert.doesNotMatch(text, /sumac_agent/);
    assert.match(text, /table inet admin_fw[\s\S]*tcp dport 22 accept/);
  });

  it("firewall nft - without CAP_NET_ADMIN the result says not permitted", async () => {
    const unprivileged = createNftRunner({
      command: [...inNs, "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "nft"],
    });
    const result = await registerAgentPort(a, unprivileged);
    assert.equal(result.status, "unavailable");
    assert.equal(result.status === "unavailable" && result.reason, "not-permitted");
    assert.doesNotMatch(await ruleset(), /sumac_agent/);
  });

  it("firewall nft - two agents registering and deregistering at once under the lock never lose each other's rule, and no table stays", async () => {
    const ROUNDS = 200;
    // nsenter joins the network namespace only: quicker than ip netns exec for 1,200 runs of nft.
    const fast = createNftRunner({
      command: ["nsenter", `--net=/run/netns/${ns}`, "nft"],
      timeoutMs: 10_000,
    });
    const lockPath = join(dir, "agent-nft.lock");
    /** One agent's loop: how its rounds ended (`removed` each, when no rule was lost). */
    async function agentLoop(rule: AgentPortRule): Promise<Map<string, number>> {
      // A lock each, as two agent processes have: two open files of one path.
      const lock = createAgentNftLock({ path: lockPath, waitMs: 30_000 });
      const ends = new Map<string, number>();
      const count = (what: string): void => void ends.set(what, (ends.get(what) ?? 0) + 1);
      for (let i = 0; i < ROUNDS; i += 1) {
        const registered = await registerAgentPort(rule, fast, lock);
        assert.equal(registered.status, "registered", JSON.stringify(registered));
        const removed = await deregisterAgentPort(rule, fast, lock);
        assert.equal(removed.unlocked, undefined);
        count(removed.status);
      }
      return ends;
    }
    const x: AgentPortRule = { runId: "run-x", targetId: "web01", port: 62290, source: "10.0.0.1" };
    const y: AgentPortRule = { runId: "run-y", targetId: "web01", port: 62291, source: "10.0.0.2" };
    const [ex, ey] = await Promise.all([agentLoop(x), agentLoop(y)]);
    // A rule taken with the other's table shows as `absent` when its agent comes to remove it.
    assert.deepEqual([...ex], [["removed", ROUNDS]]);
    assert.deepEqual([...ey], [["removed", ROUNDS]]);
    assert.doesNotMatch(await ruleset(), /sumac_agent/);
  });

  it("firewall nft - without flock the agent registers and deregisters unlocked and says why", async () => {
    const lock = createAgentNftLock({ path: join(dir, "none.lock"), flock: "sumac-no-such-flock" });
    const registered = await registerAgentPort(a, nft, lock);
    assert.equal(registered.status, "registered");
    assert.match(registered.unlocked ?? "", /^flock \(util-linux\) is not installed: sumac's agents lock/);
    const removed = await deregisterAgentPort(a, nft, lock);
    assert.equal(removed.status, "removed");
    assert.match(removed.unlocked ?? "", /flock \(util-linux\) is not installed/);
    assert.doesNotMatch(await ruleset(), /sumac_agent/);
  });

  it("firewall nft - a lock held past the deadline fails the call and runs no nft", async () => {
    const path = join(dir, "held.lock");
    const release = await createAgentNftLock({ path }).acquire();
    try {
      const result = await registerAgentPort(a, nft, createAgentNftLock({ path, waitMs: 300 }));
      assert.equal(result.status, "failed");
      assert.equal(result.status === "failed" && result.reason, "lock-timeout");
      assert.match(
        result.status === "failed" ? result.detail : "",
        /the agents' firewall lock .*held\.lock was not free within 300 ms/,
      );
      assert.doesNotMatch(await ruleset(), /sumac_agent/);
    } finally {
      await release();
    }
  });
});
