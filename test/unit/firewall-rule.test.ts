import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import {
  checkRef,
  checkRule,
  FirewallError,
  ID_PATTERN,
  type PortRule,
} from "../../actors/firewall/firewall.ts";
import { netshRuleName, parseNetshRuleName } from "../../actors/firewall/netsh.ts";
import { nftTag, parseNftTag } from "../../actors/firewall/nftables.ts";
import { DOMAIN_PATTERN } from "../../actors/lease/store.ts";

const rule: PortRule = { runId: "run-7", leaseId: "lease-42", port: 61004, peer: "10.0.0.7" };

/** Asserts that `fn` throws FirewallError `FIREWALL_BAD_RULE` with a message matching `message`. */
function badRule(fn: () => unknown, message: RegExp): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof FirewallError);
    assert.equal(error.name, "FirewallError");
    assert.equal(error.code, "FIREWALL_BAD_RULE");
    assert.equal(error.retryable, false);
    assert.match(error.message, message);
    return true;
  });
}

describe("firewall rule", () => {
  it("firewall rule - a valid rule is returned with protocol tcp and its peer as given", () => {
    assert.deepEqual(checkRule(rule), { ...rule, protocol: "tcp" });
    assert.equal(checkRule({ ...rule, peer: "FD00::A" }).peer, "fd00::a");
  });

  it("firewall rule - an IPv4-mapped IPv6 peer becomes the IPv4 address the packets carry", () => {
    assert.equal(checkRule({ ...rule, peer: "::ffff:10.0.0.7" }).peer, "10.0.0.7");
    assert.equal(checkRule({ ...rule, peer: "::FFFF:192.168.1.2" }).peer, "192.168.1.2");
  });

  it("firewall rule - a peer that is not one host's address is refused with the value shown", () => {
    badRule(
      () => checkRule({ ...rule, peer: "10.0.0.0/24" }),
      /peer must be an IPv4 or IPv6 address.*"10\.0\.0\.0\/24"/,
    );
    badRule(() => checkRule({ ...rule, peer: "web01.example" }), /peer must be .*"web01\.example"/);
    badRule(() => checkRule({ ...rule, peer: "fe80::1%eth0" }), /without zone, not "fe80::1%eth0"/);
    badRule(() => checkRule({ ...rule, peer: "0.0.0.0" }), /not the unspecified "0\.0\.0\.0"/);
    badRule(() => checkRule({ ...rule, peer: "::" }), /not the unspecified "::"/);
    badRule(() => checkRule({ ...rule, peer: '10.0.0.1" accept' }), /peer must be/);
  });

  it("firewall rule - ports outside 1 to 65535 and non-integers are refused", () => {
    for (const port of [0, 65536, 1.5, Number.NaN, -1])
      badRule(() => checkRule({ ...rule, port }), /port must be an integer from 1 to 65535/);
  });

  it("firewall rule - ids with spaces, quotes, separators or over 40 characters are refused", () => {
    for (const runId of ["", "run 7", 'run"7', "run=7", "run:7", "-run", "r".repeat(41), "run\n7"])
      badRule(() => checkRef({ ...rule, runId }), /runId must be 1 to 40 of/);
    badRule(() => checkRule({ ...rule, leaseId: "lease;drop" }), /leaseId must be 1 to 40 of .*"lease;drop"/);
  });

  it("firewall rule - only tcp is accepted as protocol", () => {
    badRule(() => checkRule({ ...rule, protocol: "udp" as "tcp" }), /protocol must be "tcp", not "udp"/);
  });

  it("firewall rule - only a timeout is retryable, and the cause is chained", () => {
    const cause = new Error("spawn");
    const timeout = new FirewallError("TIMEOUT", "slow", { cause });
    assert.equal(timeout.retryable, true);
    assert.equal(timeout.cause, cause);
    for (const code of [
      "FIREWALL_NOT_PERMITTED",
      "FIREWALL_TOOL_MISSING",
      "FIREWALL_TOOL_FAILED",
      "FIREWALL_BAD_RULE",
    ] as const)
      assert.equal(new FirewallError(code, "x").retryable, false);
  });

  it("firewall rule - every valid owner, run, lease and port round-trips through both backends' tags", () => {
    const id = fc.stringMatching(ID_PATTERN);
    const owner = fc.stringMatching(DOMAIN_PATTERN);
    fc.assert(
      fc.property(owner, id, id, fc.integer({ min: 1, max: 65535 }), (o, runId, leaseId, port) => {
        const ref = { runId, leaseId, port };
        assert.deepEqual(parseNftTag(nftTag(o, ref)), { owner: o, ...ref });
        assert.deepEqual(parseNetshRuleName(netshRuleName(o, ref)), { owner: o, ...ref });
        // nftables keeps at most 128 bytes of a comment.
        assert.ok(Buffer.byteLength(nftTag(o, ref)) <= 128);
      }),
    );
    const longest = { runId: "r".repeat(40), leaseId: "l".repeat(40), port: 65535 };
    assert.equal(Buffer.byteLength(nftTag("o".repeat(14), longest)), 127);
  });

  it("firewall rule - tags of other tools or out-of-range ports are not taken for sumac's", () => {
    assert.equal(parseNftTag("ssh from office"), undefined);
    assert.equal(parseNftTag("sumac run=a lease=b port=70000"), undefined);
    assert.equal(parseNftTag("sumac run=a target=b port=62286"), undefined); // the agent's own
    // The format before lease domains names no owner: never taken for anyone's.
    assert.equal(parseNftTag("sumac run=a lease=b port=61000"), undefined);
    assert.equal(parseNftTag("sumac svc=SHOUTING0000000 run=a lease=b port=61000"), undefined);
    assert.equal(parseNetshRuleName("Core Networking - Teredo (UDP-In)"), undefined);
    assert.equal(parseNetshRuleName("sumac:a:b:0"), undefined);
    assert.equal(parseNetshRuleName("sumac:a:b:c:1"), undefined);
    assert.equal(parseNetshRuleName("sumac:a:b:61000"), undefined);
  });
});
