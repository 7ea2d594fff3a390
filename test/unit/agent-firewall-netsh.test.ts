/** The agent's Windows Firewall backend (agent/server/firewall-netsh.ts): argv, listing, results. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { CommandOutcome } from "../../base/command.ts";
import {
  deleteNetshRule,
  deregisterNetshPort,
  listNetshRules,
  NETSH_SHOW_ARGV,
  netshAddArgv,
  netshDeleteArgv,
  netshPath,
  parseShowRuleNames,
  registerNetshPort,
  type NetshRunner,
} from "../../agent/server/firewall-netsh.ts";
import { ruleComment } from "../../agent/protocol/firewall-rule.ts";
import { ruleComment as reexported } from "../../agent/server/firewall.ts";

const rule = { runId: "run-7", targetId: "web01", port: 62288, source: "10.0.0.1" };
const NAME = "sumac run=run-7 target=web01 port=62288";

/** Answers netsh calls from a script and records their argv. */
function scripted(...answers: CommandOutcome[]) {
  const calls: Array<readonly string[]> = [];
  const run: NetshRunner = (args) => {
    calls.push(args);
    const answer = answers.shift();
    if (answer === undefined) return Promise.reject(new Error(`unexpected netsh call ${args.join(" ")}`));
    return Promise.resolve(answer);
  };
  return { run, calls };
}

/** netsh prints CRLF lines, and its messages on stdout, errors included. */
const crlf = (lines: string[]): string => lines.map((l) => `${l}\r\n`).join("");
const said = (exitCode: number, lines: string[]): CommandOutcome => ({
  exitCode,
  stdout: crlf(lines),
  stderr: "",
});
const OK = said(0, ["Ok.", ""]);
const DELETED = said(0, ["", "Deleted 1 rule(s).", "Ok.", ""]);
const NO_MATCH = said(1, ["", "No rules match the specified criteria.", ""]);
const ELEVATION = said(1, ["The requested operation requires elevation (Run as administrator).", ""]);

const DASHES = "-".repeat(70);
const pad = (key: string): string => `${key}:`.padEnd(38);

/** `show rule name=all dir=in` of an English Windows Server, trimmed to three rules. */
const SHOW = crlf([
  "",
  `${pad("Rule Name")}Core Networking - Destination Unreachable (ICMPv6-In)`,
  DASHES,
  `${pad("Enabled")}Yes`,
  `${pad("Direction")}In`,
  `${pad("Protocol")}ICMPv6`,
  "                                      Type    Code",
  "                                      1       Any ",
  `${pad("Action")}Allow`,
  "",
  `${pad("Rule Name")}${NAME}`,
  DASHES,
  `${pad("Enabled")}Yes`,
  `${pad("RemoteIP")}10.0.0.1/32`,
  `${pad("LocalPort")}62288`,
  "",
  `${pad("Rule Name")}sumac run=r:1 target=t port=1`,
  DASHES,
  `${pad("RemoteIP")}fd00::7/128`,
  "",
  "Ok.",
  "",
]);

describe("agent firewall netsh", () => {
  it("agent firewall netsh - add rule is the contract's argv, the name one argument with its spaces", () => {
    assert.deepEqual(netshAddArgv(rule), [
      "advfirewall",
      "firewall",
      "add",
      "rule",
      `name=${NAME}`,
      "dir=in",
      "action=allow",
      "protocol=TCP",
      "localport=62288",
      "remoteip=10.0.0.1",
      "profile=any",
    ]);
    assert.equal(netshAddArgv({ ...rule, source: "fd00::7" })[9], "remoteip=fd00::7");
    assert.throws(() => netshAddArgv({ ...rule, port: 0 }), RangeError);
    assert.throws(() => netshAddArgv({ ...rule, source: "10.0.0.1 dir=out" }), RangeError);
  });

  it("agent firewall netsh - delete and show are argv too", () => {
    assert.deepEqual(netshDeleteArgv(NAME), ["advfirewall", "firewall", "delete", "rule", `name=${NAME}`]);
    assert.deepEqual(NETSH_SHOW_ARGV, ["advfirewall", "firewall", "show", "rule", "name=all", "dir=in"]);
  });

  it("agent firewall netsh - netsh is run by its full path under SystemRoot, C:\\Windows without it", () => {
    assert.equal(netshPath({ SystemRoot: "/tmp/win" }), "/tmp/win/System32/netsh.exe");
    assert.match(netshPath({}), /^C:\\Windows[\\/]System32[\\/]netsh\.exe$/);
  });

  it("agent firewall netsh - the rule's name is ruleComment, shared with the workstation and still exported by firewall.ts", () => {
    assert.equal(reexported, ruleComment);
    assert.equal(ruleComment(rule), NAME);
    assert.equal(ruleComment({ runId: "a b", targetId: "t", port: 1 }), "sumac run=a_b target=t port=1");
  });

  it("agent firewall netsh - show rule output gives the names of the lines before the dashes, in any language", () => {
    assert.deepEqual(parseShowRuleNames(SHOW), [
      "Core Networking - Destination Unreachable (ICMPv6-In)",
      NAME,
      "sumac run=r:1 target=t port=1",
    ]);
    // A German Windows calls the key "Regelname"; LF lines parse the same.
    const german = [`${"Regelname:".padEnd(38)}${NAME}`, DASHES, `${"Aktiviert:".padEnd(38)}Ja`, ""].join(
      "\n",
    );
    assert.deepEqual(parseShowRuleNames(german), [NAME]);
    assert.deepEqual(parseShowRuleNames(NO_MATCH.stdout), []);
    // Dashes without a name before them, or a short line of dashes, are no rule.
    assert.deepEqual(parseShowRuleNames(`no colon here\r\n${DASHES}\r\nx\r\n-----\r\n`), []);
  });

  it("agent firewall netsh - register adds the rule; deregister deletes it by name, absent when netsh matches none", async () => {
    const { run, calls } = scripted(OK, DELETED, NO_MATCH);
    assert.deepEqual(await registerNetshPort(rule, run), { status: "registered", comment: NAME });
    assert.deepEqual(await deregisterNetshPort(rule, run), { status: "removed", comment: NAME });
    assert.deepEqual(await deregisterNetshPort(rule, run), { status: "absent", comment: NAME });
    assert.deepEqual(calls, [netshAddArgv(rule), netshDeleteArgv(NAME), netshDeleteArgv(NAME)]);
  });

  it("agent firewall netsh - elevation and a missing netsh are unavailable; a deadline, a cap or another error failed", async () => {
    const missing: CommandOutcome = {
      exitCode: null,
      stdout: "",
      stderr: "spawn netsh.exe ENOENT",
      missing: true,
    };
    const slow: CommandOutcome = {
      exitCode: null,
      stdout: "",
      stderr: "netsh.exe did not finish within 10000 ms",
      timedOut: true,
    };
    const large: CommandOutcome = { exitCode: null, stdout: "x", stderr: "printed more", tooLarge: true };
    const odd = said(1, ["The parameter is incorrect.", ""]);
    const { run } = scripted(ELEVATION, missing, slow, odd, large, ELEVATION);
    assert.deepEqual(await registerNetshPort(rule, run), {
      status: "unavailable",
      reason: "not-permitted",
      detail: "netsh add rule: The requested operation requires elevation (Run as administrator).",
    });
    assert.deepEqual(await registerNetshPort(rule, run), {
      status: "unavailable",
      reason: "netsh-missing",
      detail: "netsh add rule: spawn netsh.exe ENOENT",
    });
    assert.deepEqual(await deregisterNetshPort(rule, run), {
      status: "failed",
      reason: "timeout",
      detail: "netsh delete rule: netsh.exe did not finish within 10000 ms",
    });
    assert.deepEqual(await deleteNetshRule(NAME, run), {
      status: "failed",
      reason: "netsh-error",
      detail: "netsh delete rule: The parameter is incorrect.",
    });
    assert.deepEqual(await listNetshRules(run), {
      failed: { status: "failed", reason: "netsh-error", detail: "netsh show rule: x printed more" },
    });
    assert.deepEqual(await listNetshRules(run), {
      failed: {
        status: "unavailable",
        reason: "not-permitted",
        detail: "netsh show rule: The requested operation requires elevation (Run as administrator).",
      },
    });
  });

  it("agent firewall netsh - a listing gives the names; no rule at all is an empty list", async () => {
    const { run } = scripted({ exitCode: 0, stdout: SHOW, stderr: "" }, NO_MATCH);
    assert.deepEqual(await listNetshRules(run), { names: parseShowRuleNames(SHOW) });
    assert.deepEqual(await listNetshRules(run), { names: [] });
  });

  it("agent firewall netsh - a long answer is cut in the result's detail", async () => {
    const { run } = scripted(said(1, ["E".repeat(5000)]));
    const result = await registerNetshPort(rule, run);
    assert.equal(result.status, "failed");
    assert.ok(result.status === "failed" && result.detail.length < 1100, "detail cut");
  });
});
