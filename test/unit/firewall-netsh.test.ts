import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { CommandOutcome, CommandRunner } from "../../base/command.ts";
import { FirewallError, type PortRule } from "../../actors/firewall/firewall.ts";
import {
  createNetshFirewall,
  netshAddArgv,
  netshDeleteArgv,
  NETSH_SHOW_ARGV,
  parseShowRule,
} from "../../actors/firewall/netsh.ts";

const rule: PortRule = { runId: "run-7", leaseId: "lease-42", port: 61004, peer: "10.0.0.7" };
const OWNER = "own3r0wn3r0wn3";
const NAME = `sumac:${OWNER}:run-7:lease-42:61004`;
const DEAD = `sumac:${OWNER}:run-1:lease-1:61000`;

/** Answers tool calls from a script and records their argv. */
function scripted(...answers: CommandOutcome[]) {
  const calls: Array<readonly string[]> = [];
  const run: CommandRunner = (argv) => {
    calls.push(argv);
    const answer = answers.shift();
    if (answer === undefined) return Promise.reject(new Error(`unexpected call ${argv.join(" ")}`));
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
function block(name: string, fields: Array<[string, string]>): string[] {
  return [`${pad("Rule Name")}${name}`, DASHES, ...fields.map(([k, v]) => `${pad(k)}${v}`)];
}
const tcpIn = (port: string, remote: string): Array<[string, string]> => [
  ["Enabled", "Yes"],
  ["Direction", "In"],
  ["Profiles", "Domain,Private,Public"],
  ["Grouping", ""],
  ["LocalIP", "Any"],
  ["RemoteIP", remote],
  ["Protocol", "TCP"],
  ["LocalPort", port],
  ["RemotePort", "Any"],
  ["Edge traversal", "No"],
  ["Action", "Allow"],
];

/** `netsh advfirewall firewall show rule name=all dir=in` on an English Windows Server, trimmed. */
const SHOW = crlf([
  "",
  ...block("Core Networking - Destination Unreachable (ICMPv6-In)", [
    ["Enabled", "Yes"],
    ["Direction", "In"],
    ["Profiles", "Domain,Private,Public"],
    ["Grouping", "Core Networking"],
    ["LocalIP", "Any"],
    ["RemoteIP", "Any"],
    ["Protocol", "ICMPv6"],
  ]),
  "                                      Type    Code",
  "                                      1       Any ",
  ...[pad("Edge traversal") + "No", pad("Action") + "Allow"],
  "",
  ...block(DEAD, tcpIn("61000", "10.0.0.9/32")),
  "",
  ...block("Remote Desktop - User Mode (TCP-In)", tcpIn("3389", "Any")),
  "",
  ...block("sumac:0th3r0th3r0th3:run-2:lease-2:61001", tcpIn("61001", "10.0.0.8/32")),
  "",
  ...block("sumac:run-3:lease-3:61002", tcpIn("61002", "10.0.0.8/32")),
  "",
  ...block(NAME, tcpIn("61004", "fd00::7/128")),
  "",
  ...block(DEAD, tcpIn("61000", "10.0.0.9/32")),
  "Ok.",
  "",
]);

describe("firewall netsh", () => {
  it("firewall netsh - add rule is one argv per parameter, the name carrying run, lease and port", () => {
    assert.deepEqual(netshAddArgv(OWNER, rule), [
      "netsh",
      "advfirewall",
      "firewall",
      "add",
      "rule",
      `name=${NAME}`,
      "dir=in",
      "action=allow",
      "protocol=TCP",
      "localport=61004",
      "remoteip=10.0.0.7",
      "profile=any",
      "enable=yes",
    ]);
    assert.equal(netshAddArgv(OWNER, { ...rule, peer: "::ffff:10.0.0.7" })[10], "remoteip=10.0.0.7");
    assert.equal(netshAddArgv(OWNER, { ...rule, peer: "FD00::7" })[10], "remoteip=fd00::7");
  });

  it("firewall netsh - delete and show are argv too, and names need no quoting", () => {
    assert.deepEqual(netshDeleteArgv(NAME), [
      "netsh",
      "advfirewall",
      "firewall",
      "delete",
      "rule",
      `name=${NAME}`,
      "dir=in",
    ]);
    assert.deepEqual(NETSH_SHOW_ARGV, [
      "netsh",
      "advfirewall",
      "firewall",
      "show",
      "rule",
      "name=all",
      "dir=in",
    ]);
    for (const arg of netshAddArgv(OWNER, rule)) assert.doesNotMatch(arg, /[\s"']/);
  });

  it("firewall netsh - show rule output parses into blocks with name and fields", () => {
    const rules = parseShowRule(SHOW);
    assert.deepEqual(
      rules.map((r) => r.name),
      [
        "Core Networking - Destination Unreachable (ICMPv6-In)",
        DEAD,
        "Remote Desktop - User Mode (TCP-In)",
        "sumac:0th3r0th3r0th3:run-2:lease-2:61001",
        "sumac:run-3:lease-3:61002",
        NAME,
        DEAD,
      ],
    );
    const mine = rules[5];
    assert.equal(mine?.fields.LocalPort, "61004");
    assert.equal(mine?.fields.RemoteIP, "fd00::7/128");
    assert.equal(mine?.fields["Edge traversal"], "No");
    assert.equal(rules[0]?.fields.Protocol, "ICMPv6");
    assert.equal(rules[0]?.fields.Action, "Allow");
  });

  it("firewall netsh - no rules, LF endings and another display language still parse", () => {
    assert.deepEqual(parseShowRule(NO_MATCH.stdout), []);
    const german = [
      "",
      "Regelname:                            sumac:run-2:lease-5:61001",
      DASHES,
      "Aktiviert:                            Ja",
      "OK.",
      "",
    ].join("\n");
    assert.deepEqual(parseShowRule(german), [
      { name: "sumac:run-2:lease-5:61001", fields: { Aktiviert: "Ja" } },
    ]);
    assert.throws(() => parseShowRule(" ".repeat(16 * 1024 * 1024 + 1)), {
      name: "FirewallError",
      code: "FIREWALL_TOOL_FAILED",
    });
  });

  it("firewall netsh - open deletes an earlier rule of the lease, then adds it", async () => {
    const { run, calls } = scripted(NO_MATCH, OK);
    assert.deepEqual(await createNetshFirewall({ run, owner: OWNER }).open(rule), {
      backend: "netsh",
      registered: true,
      tag: NAME,
    });
    assert.deepEqual(calls, [netshDeleteArgv(NAME), netshAddArgv(OWNER, rule)]);
  });

  it("firewall netsh - close says whether a rule was removed, so closing twice is not an error", async () => {
    const { run, calls } = scripted(DELETED, NO_MATCH);
    const fw = createNetshFirewall({ run, owner: OWNER });
    assert.deepEqual(await fw.close(rule), { backend: "netsh", removed: true });
    assert.deepEqual(await fw.close(rule), { backend: "netsh", removed: false });
    assert.deepEqual(calls, [netshDeleteArgv(NAME), netshDeleteArgv(NAME)]);
  });

  it("firewall netsh - sweep deletes each dead lease's rule of its domain once and keeps live ones and every other sumac's", async () => {
    const { run, calls } = scripted({ exitCode: 0, stdout: SHOW, stderr: "" }, DELETED);
    const result = await createNetshFirewall({ run, owner: OWNER }).sweep(
      ({ leaseId }) => leaseId === "lease-42",
    );
    assert.deepEqual(result, {
      removed: [{ owner: OWNER, runId: "run-1", leaseId: "lease-1", port: 61000 }],
      kept: [{ owner: OWNER, runId: "run-7", leaseId: "lease-42", port: 61004 }],
      foreign: 2,
    });
    assert.deepEqual(calls, [NETSH_SHOW_ARGV, netshDeleteArgv(DEAD)]);
  });

  it("firewall netsh - sweep on a host with no inbound rules removes nothing", async () => {
    const { run } = scripted(NO_MATCH);
    assert.deepEqual(await createNetshFirewall({ run, owner: OWNER }).sweep(() => false), {
      removed: [],
      kept: [],
      foreign: 0,
    });
  });

  it("firewall netsh - without elevation, without netsh, or past the deadline, errors carry stable codes", async () => {
    const check = async (p: Promise<unknown>, code: string, message: RegExp) =>
      assert.rejects(p, (error: unknown) => {
        assert.ok(error instanceof FirewallError);
        assert.equal(error.code, code);
        assert.match(error.message, message);
        return true;
      });
    await check(
      createNetshFirewall({ run: scripted(NO_MATCH, ELEVATION).run, owner: OWNER }).open(rule),
      "FIREWALL_NOT_PERMITTED",
      /netsh add rule: The requested operation requires elevation/,
    );
    await check(
      createNetshFirewall({ run: scripted(ELEVATION).run, owner: OWNER }).close(rule),
      "FIREWALL_NOT_PERMITTED",
      /netsh delete rule/,
    );
    const missing: CommandOutcome = {
      exitCode: null,
      stdout: "",
      stderr: "spawn netsh ENOENT",
      missing: true,
    };
    await check(
      createNetshFirewall({ run: scripted(missing).run, owner: OWNER }).sweep(() => false),
      "FIREWALL_TOOL_MISSING",
      /netsh show rule: spawn netsh ENOENT/,
    );
    const slow: CommandOutcome = {
      exitCode: null,
      stdout: "",
      stderr: "netsh did not finish within 10000 ms",
      timedOut: true,
    };
    await check(
      createNetshFirewall({ run: scripted(slow).run, owner: OWNER }).close(rule),
      "TIMEOUT",
      /did not finish/,
    );
    const odd = said(1, ["The parameter is incorrect.", ""]);
    await check(
      createNetshFirewall({ run: scripted(NO_MATCH, odd).run, owner: OWNER }).open(rule),
      "FIREWALL_TOOL_FAILED",
      /The parameter is incorrect/,
    );
  });

  it("firewall netsh - a bad rule is refused before netsh runs", async () => {
    const { run, calls } = scripted();
    await assert.rejects(createNetshFirewall({ run, owner: OWNER }).open({ ...rule, peer: "any" }), {
      code: "FIREWALL_BAD_RULE",
    });
    await assert.rejects(createNetshFirewall({ run, owner: OWNER }).close({ ...rule, runId: 'a" dir=out' }), {
      code: "FIREWALL_BAD_RULE",
    });
    assert.equal(calls.length, 0);
  });
});
