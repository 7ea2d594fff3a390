import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { HostLockError, type HostLock } from "../../base/host-lock.ts";
import {
  createNftRunner,
  deregisterAgentPort,
  LIST_ARGS,
  registerAgentPort,
  registerRuleset,
  removeRuleset,
  ruleComment,
  ruleHandles,
  type NftOutcome,
} from "../../agent/server/firewall.ts";

const rule = { runId: "run-7", targetId: "web01", port: 62288, source: "10.0.0.1" };

/** Answers nft calls from a script and records them. */
function scripted(...answers: NftOutcome[]) {
  const calls: Array<{ args: readonly string[]; stdin: string | undefined }> = [];
  const runner = (args: readonly string[], stdin?: string): Promise<NftOutcome> => {
    calls.push({ args, stdin });
    const answer = answers.shift();
    if (answer === undefined) throw new Error(`unexpected nft call ${args.join(" ")}`);
    return Promise.resolve(answer);
  };
  return { runner, calls };
}

const ok = (stdout = ""): NftOutcome => ({ exitCode: 0, stdout, stderr: "" });

// As `nft -j -a list chain inet sumac_agent input` prints it (nftables 1.0.6), trimmed.
const listed = JSON.stringify({
  nftables: [
    { metainfo: { version: "1.0.6", json_schema_version: 1 } },
    { chain: { family: "inet", table: "sumac_agent", name: "input", handle: 1, hook: "input" } },
    {
      rule: {
        family: "inet",
        table: "sumac_agent",
        chain: "input",
        handle: 2,
        comment: "sumac run=run-7 target=web01 port=62288",
        expr: [],
      },
    },
    {
      rule: {
        family: "inet",
        table: "sumac_agent",
        chain: "input",
        handle: 3,
        comment: "sumac run=run-8 target=db01 port=62286",
        expr: [],
      },
    },
  ],
});

describe("firewall", () => {
  it("firewall - the comment names run, target and port, without quotes or spaces from the ids", () => {
    assert.equal(ruleComment(rule), "sumac run=run-7 target=web01 port=62288");
    assert.equal(
      ruleComment({ ...rule, runId: 'a "b"\nc', targetId: "x\\y" }),
      "sumac run=a__b__c target=x_y port=62288",
    );
    assert.ok(ruleComment({ ...rule, runId: "r".repeat(300) }).length <= 128);
  });

  it("firewall - the register ruleset declares sumac's table and chain and adds the tagged accept for the workstation and drop for the rest", () => {
    assert.equal(
      registerRuleset(rule),
      "table inet sumac_agent {\n" +
        "\tchain input {\n" +
        "\t\ttype filter hook input priority filter; policy accept;\n" +
        "\t}\n" +
        "}\n" +
        'add rule inet sumac_agent input ip saddr 10.0.0.1 tcp dport 62288 accept comment "sumac run=run-7 target=web01 port=62288"\n' +
        'add rule inet sumac_agent input tcp dport 62288 drop comment "sumac run=run-7 target=web01 port=62288"\n',
    );
    assert.match(registerRuleset({ ...rule, source: "fd00::1" }), /ip6 saddr fd00::1 tcp dport 62288 accept/);
  });

  it("firewall - the register ruleset refuses a bad port or a source that is not an address", () => {
    assert.throws(() => registerRuleset({ ...rule, port: 0 }), RangeError);
    assert.throws(() => registerRuleset({ ...rule, port: 65536 }), RangeError);
    assert.throws(() => registerRuleset({ ...rule, source: "10.0.0.1; flush ruleset" }), RangeError);
  });

  it("firewall - handles are read from nft's JSON listing by comment", () => {
    assert.deepEqual(ruleHandles(listed, ruleComment(rule)), { mine: [2], all: [2, 3] });
    assert.deepEqual(ruleHandles(listed, "other"), { mine: [], all: [2, 3] });
  });

  it("firewall - the remove ruleset deletes by handle, and the table only when it empties", () => {
    assert.equal(removeRuleset([2], false), "delete rule inet sumac_agent input handle 2\n");
    assert.equal(
      removeRuleset([2, 5], true),
      "delete rule inet sumac_agent input handle 2\n" +
        "delete rule inet sumac_agent input handle 5\n" +
        "delete table inet sumac_agent\n",
    );
  });

  it("firewall - register feeds the ruleset to nft -f - on stdin", async () => {
    const { runner, calls } = scripted(ok());
    assert.deepEqual(await registerAgentPort(rule, runner), {
      status: "registered",
      comment: ruleComment(rule),
    });
    assert.deepEqual(calls, [{ args: ["-f", "-"], stdin: registerRuleset(rule) }]);
  });

  it("firewall - deregister keeps the table while another agent's rule is in it", async () => {
    const { runner, calls } = scripted(ok(listed), ok());
    assert.deepEqual(await deregisterAgentPort(rule, runner), {
      status: "removed",
      comment: ruleComment(rule),
    });
    assert.deepEqual(calls, [
      { args: LIST_ARGS, stdin: undefined },
      { args: ["-f", "-"], stdin: "delete rule inet sumac_agent input handle 2\n" },
    ]);
  });

  it("firewall - deregister of the last rule deletes the table; a missing table is absent", async () => {
    const only = ruleHandles(listed, "");
    assert.equal(only.all.length, 2);
    const mineOnly = JSON.stringify({
      nftables: [{ rule: { handle: 4, comment: ruleComment(rule) } }],
    });
    const { runner, calls } = scripted(ok(mineOnly), ok());
    assert.equal((await deregisterAgentPort(rule, runner)).status, "removed");
    assert.equal(
      calls[1]?.stdin,
      "delete rule inet sumac_agent input handle 4\ndelete table inet sumac_agent\n",
    );

    const gone = scripted({
      exitCode: 1,
      stdout: "",
      stderr: "Error: No such file or directory\nlist chain inet sumac_agent input\n",
    });
    assert.equal((await deregisterAgentPort(rule, gone.runner)).status, "absent");
  });

  it("firewall - missing nft and a refused netlink are unavailable, other errors failed", async () => {
    const missing = scripted({ exitCode: null, stdout: "", stderr: "spawn nft ENOENT", missing: true });
    assert.deepEqual(await registerAgentPort(rule, missing.runner), {
      status: "unavailable",
      reason: "nft-missing",
      detail: "nft -f - (register): spawn nft ENOENT",
    });
    const eperm = scripted({
      exitCode: 1,
      stdout: "",
      stderr: "netlink: Error: cache initialization failed: Operation not permitted\n",
    });
    const refused = await registerAgentPort(rule, eperm.runner);
    assert.equal(refused.status === "unavailable" && refused.reason, "not-permitted");
    const syntax = scripted({ exitCode: 1, stdout: "", stderr: "Error: syntax error\n" });
    const failed = await registerAgentPort(rule, syntax.runner);
    assert.equal(failed.status === "failed" && failed.reason, "nft-error");
  });

  it("firewall - the runner reports a missing binary and kills nft at its deadline", async () => {
    const missing = await createNftRunner({ command: ["/nonexistent/sumac-nft"] })(["list", "ruleset"]);
    assert.equal(missing.missing, true);
    const t0 = performance.now();
    const slow = await createNftRunner({ command: ["sh", "-c", "sleep 5", "sh"], timeoutMs: 100 })([]);
    assert.equal(slow.timedOut, true);
    assert.ok(performance.now() - t0 < 2_000);
    const echoed = await createNftRunner({ command: ["cat"] })([], "ruleset text");
    assert.deepEqual(echoed, { exitCode: 0, stdout: "ruleset text", stderr: "", timedOut: false });
  });

  it("firewall - register and deregister run nft only while they hold the lock, and release it after", async () => {
    const events: string[] = [];
    let held = false;
    const lock: HostLock = {
      acquire: () => {
        assert.equal(held, false, "taken twice");
        held = true;
        events.push("lock");
        return Promise.resolve(() => {
          held = false;
          events.push("unlock");
          return Promise.resolve();
        });
      },
    };
    const mineOnly = JSON.stringify({ nftables: [{ rule: { handle: 4, comment: ruleComment(rule) } }] });
    const answers = [ok(), ok(mineOnly), ok(), { exitCode: 1, stdout: "", stderr: "Error: syntax error\n" }];
    const runner = (args: readonly string[]): Promise<NftOutcome> => {
      assert.equal(held, true, `nft ${args.join(" ")} run without the lock`);
      events.push(`nft ${args[0] === "-f" ? "-f" : "list"}`);
      const answer = answers.shift();
      if (answer === undefined) throw new Error("unexpected nft call");
      return Promise.resolve(answer);
    };
    assert.equal((await registerAgentPort(rule, runner, lock)).status, "registered");
    assert.equal((await deregisterAgentPort(rule, runner, lock)).status, "removed");
    assert.equal((await registerAgentPort(rule, runner, lock)).status, "failed");
    assert.deepEqual(events, [
      "lock",
      "nft -f",
      "unlock",
      "lock",
      "nft list",
      "nft -f",
      "unlock",
      "lock",
      "nft -f",
      "unlock",
    ]);
  });

  it("firewall - a lock not free in time runs no nft; a lock that cannot be had runs nft unlocked and says why", async () => {
    const { runner, calls } = scripted(ok());
    const busy: HostLock = {
      acquire: () =>
        Promise.reject(new HostLockError("TIMEOUT", "the agents' firewall lock /x was not free")),
    };
    assert.deepEqual(await deregisterAgentPort(rule, runner, busy), {
      status: "failed",
      reason: "lock-timeout",
      detail: "the agents' firewall lock /x was not free",
    });
    assert.deepEqual(calls, []);
    const missing: HostLock = {
      acquire: () =>
        Promise.reject(new HostLockError("HOST_LOCK_TOOL_MISSING", "flock (util-linux) is not installed")),
    };
    assert.deepEqual(await registerAgentPort(rule, runner, missing), {
      status: "registered",
      comment: ruleComment(rule),
      unlocked: "flock (util-linux) is not installed",
    });
    assert.equal(calls.length, 1);
  });
});
