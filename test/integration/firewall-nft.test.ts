/**
 * agent/server/firewall.ts against the real nft (nftables 1.0.6 on Debian 12) inside a network namespace
 * of its own, so the machine's ruleset is never touched. Needs root, `ip` and `nft`: elsewhere it
 * skips with the reason, and in CI it fails.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import {
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
  after(() => run("ip", ["netns", "del", ns], { timeout: 5_000 }));

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
});
