import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { CommandOutcome, CommandRunner } from "../../base/command.ts";
import { FirewallError, type PortRule } from "../../actors/firewall/firewall.ts";
import {
  batchRuleset,
  createNftablesFirewall,
  deleteRuleset,
  NFT_LIST_ARGV,
  parseChainListing,
} from "../../actors/firewall/nftables.ts";
import type { HostLock } from "../../actors/firewall/host-lock.ts";

const rule: PortRule = { runId: "run-7", leaseId: "lease-42", port: 61004, peer: "10.0.0.7" };
const OWNER = "own3r0wn3r0wn3";
const OTHER_OWNER = "0th3r0th3r0th3";
const TAG = `sumac svc=${OWNER} run=run-7 lease=lease-42 port=61004`;

/** No other process here: the host's lock is tested with real processes (firewall-race). */
const NO_LOCK: HostLock = { acquire: () => Promise.resolve(() => Promise.resolve()) };

/** Answers tool calls from a script and records them. */
function scripted(...answers: CommandOutcome[]) {
  const calls: Array<{ argv: readonly string[]; stdin: string | undefined }> = [];
  const run: CommandRunner = (argv, options) => {
    calls.push({ argv, stdin: options?.stdin });
    const answer = answers.shift();
    if (answer === undefined) return Promise.reject(new Error(`unexpected call ${argv.join(" ")}`));
    return Promise.resolve(answer);
  };
  return { run, calls };
}

const ok = (stdout = ""): CommandOutcome => ({ exitCode: 0, stdout, stderr: "" });
const failed = (stderr: string, more: Partial<CommandOutcome> = {}): CommandOutcome => ({
  exitCode: 1,
  stdout: "",
  stderr,
  ...more,
});
const NO_TABLE = failed(
  "Error: No such file or directory\nlist chain inet sumac input\n                ^^^^^\n",
);

/** `nft -j -a list chain inet sumac input` as nftables 1.0.6 prints it, expressions trimmed. */
function listing(rules: Array<{ handle: number; comment?: string }>): string {
  return JSON.stringify({
    nftables: [
      { metainfo: { version: "1.0.6", release_name: "Lester Gooch #5", json_schema_version: 1 } },
      {
        chain: {
          family: "inet",
          table: "sumac",
          name: "input",
          handle: 1,
          type: "filter",
          hook: "input",
          prio: 0,
          policy: "accept",
        },
      },
      ...rules.map((r) => ({ rule: { family: "inet", table: "sumac", chain: "input", ...r, expr: [] } })),
    ],
  });
}

async function rejectsWith(p: Promise<unknown>, code: string, message: RegExp): Promise<void> {
  await assert.rejects(p, (error: unknown) => {
    assert.ok(error instanceof FirewallError);
    assert.equal(error.code, code);
    assert.match(error.message, message);
    return true;
  });
}

describe("firewall nftables", () => {
  it("firewall nftables - the open ruleset inserts the peer's accept and appends the port's drop", () => {
    assert.equal(
      batchRuleset(OWNER, [rule], []),
      [
        "table inet sumac {",
        "\tchain input {",
        "\t\ttype filter hook input priority filter; policy accept;",
        "\t}",
        "}",
        `insert rule inet sumac input ip saddr 10.0.0.7 tcp dport 61004 accept comment "${TAG}"`,
        `add rule inet sumac input tcp dport 61004 drop comment "${TAG}"`,
        "",
      ].join("\n"),
    );
  });

  it("firewall nftables - an IPv6 peer is matched with ip6 saddr, and earlier handles are deleted first", () => {
    const text = batchRuleset(OWNER, [{ ...rule, peer: "fd00::7" }], [4, 5]);
    const lines = text.split("\n");
    assert.deepEqual(lines.slice(5), [
      "delete rule inet sumac input handle 4",
      "delete rule inet sumac input handle 5",
      `insert rule inet sumac input ip6 saddr fd00::7 tcp dport 61004 accept comment "${TAG}"`,
      `add rule inet sumac input tcp dport 61004 drop comment "${TAG}"`,
      "",
    ]);
  });

  it("firewall nftables - a mapped IPv4 peer is registered as IPv4", () => {
    assert.match(
      batchRuleset(OWNER, [{ ...rule, peer: "::ffff:10.0.0.7" }], []),
      /insert rule inet sumac input ip saddr 10\.0\.0\.7 /,
    );
  });

  it("firewall nftables - the delete ruleset names each handle, and is empty for none", () => {
    assert.equal(
      deleteRuleset([2, 3]),
      "delete rule inet sumac input handle 2\ndelete rule inet sumac input handle 3\n",
    );
    assert.equal(deleteRuleset([]), "");
  });

  it("firewall nftables - the listing gives handles and comments, and bad output is a tool error", () => {
    assert.deepEqual(parseChainListing(listing([{ handle: 2, comment: TAG }, { handle: 9 }])), [
      { handle: 2, comment: TAG },
      { handle: 9 },
    ]);
    assert.throws(() => parseChainListing("Error: no"), {
      name: "FirewallError",
      code: "FIREWALL_TOOL_FAILED",
    });
    assert.throws(() => parseChainListing("{}"), {
      code: "FIREWALL_TOOL_FAILED",
      message: /no nftables array/,
    });
    assert.throws(() => parseChainListing(" ".repeat(16 * 1024 * 1024 + 1)), {
      code: "FIREWALL_TOOL_FAILED",
      message: /over/,
    });
  });

  it("firewall nftables - open lists the chain then adds the pair in one nft -f - transaction", async () => {
    const { run, calls } = scripted(NO_TABLE, ok());
    const fw = createNftablesFirewall({ lock: NO_LOCK, run, owner: OWNER });
    assert.deepEqual(await fw.open(rule), { backend: "nftables", registered: true, tag: TAG });
    assert.deepEqual(calls, [
      { argv: NFT_LIST_ARGV, stdin: undefined },
      { argv: ["nft", "-f", "-"], stdin: batchRuleset(OWNER, [rule], []) },
    ]);
  });

  it("firewall nftables - opening a lease again replaces its rules rather than adding a second pair", async () => {
    const { run, calls } = scripted(
      ok(listing([{ handle: 2, comment: TAG }, { handle: 3, comment: TAG }, { handle: 7 }])),
      ok(),
    );
    await createNftablesFirewall({ lock: NO_LOCK, run, owner: OWNER }).open(rule);
    assert.equal(calls[1]?.stdin, batchRuleset(OWNER, [rule], [2, 3]));
  });

  it("firewall nftables - close deletes the lease's rules only, and closing again is not an error", async () => {
    const other = `sumac svc=${OWNER} run=run-7 lease=lease-43 port=61005`;
    const { run, calls } = scripted(
      ok(
        listing([
          { handle: 2, comment: TAG },
          { handle: 3, comment: other },
          { handle: 4, comment: TAG },
        ]),
      ),
      ok(),
      ok(listing([{ handle: 3, comment: other }])),
      NO_TABLE,
    );
    const fw = createNftablesFirewall({ lock: NO_LOCK, run, owner: OWNER });
    assert.deepEqual(await fw.close(rule), { backend: "nftables", removed: true });
    assert.equal(calls[1]?.stdin, deleteRuleset([2, 4]));
    assert.deepEqual(await fw.close(rule), { backend: "nftables", removed: false });
    assert.deepEqual(await fw.close(rule), { backend: "nftables", removed: false });
    assert.equal(calls.length, 4);
  });

  it("firewall nftables - sweep removes the rules of dead leases of its domain, keeps live ones and every other sumac's", async () => {
    const dead = `sumac svc=${OWNER} run=run-1 lease=lease-1 port=61000`;
    const live = `sumac svc=${OWNER} run=run-7 lease=lease-42 port=61004`;
    const others = `sumac svc=${OTHER_OWNER} run=run-2 lease=lease-2 port=61001`;
    const older = "sumac run=run-3 lease=lease-3 port=61002";
    const { run, calls } = scripted(
      ok(
        listing([
          { handle: 2, comment: dead },
          { handle: 3, comment: live },
          { handle: 4, comment: dead },
          { handle: 5, comment: live },
          { handle: 6, comment: "admin: ssh" },
          { handle: 7, comment: others },
          { handle: 9, comment: older },
          { handle: 8 },
        ]),
      ),
      // Listed again under the lock once the leases are known: the dead tags' rules go by handle.
      ok(
        listing([
          { handle: 2, comment: dead },
          { handle: 3, comment: live },
          { handle: 4, comment: dead },
          { handle: 5, comment: live },
          { handle: 7, comment: others },
        ]),
      ),
      ok(),
    );
    const asked: string[] = [];
    const result = await createNftablesFirewall({ lock: NO_LOCK, run, owner: OWNER }).sweep(
      ({ runId, leaseId }) => {
        asked.push(`${runId}/${leaseId}`);
        return Promise.resolve(leaseId === "lease-42");
      },
    );
    assert.deepEqual(result, {
      removed: [{ owner: OWNER, runId: "run-1", leaseId: "lease-1", port: 61000 }],
      kept: [{ owner: OWNER, runId: "run-7", leaseId: "lease-42", port: 61004 }],
      foreign: 2,
    });
    assert.deepEqual(
      asked,
      ["run-1/lease-1", "run-7/lease-42"],
      "another domain's leases are not asked about",
    );
    assert.equal(calls[2]?.stdin, deleteRuleset([2, 4]));
  });

  it("firewall nftables - sweep with nothing dead changes nothing, and a failing isLive removes nothing", async () => {
    const { run, calls } = scripted(
      ok(listing([{ handle: 3, comment: TAG }])),
      ok(listing([{ handle: 3, comment: TAG }])),
    );
    const fw = createNftablesFirewall({ lock: NO_LOCK, run, owner: OWNER });
    assert.deepEqual(await fw.sweep(() => true), {
      removed: [],
      kept: [{ owner: OWNER, runId: "run-7", leaseId: "lease-42", port: 61004 }],
      foreign: 0,
    });
    await assert.rejects(
      fw.sweep(() => Promise.reject(new Error("bus down"))),
      /bus down/,
    );
    assert.equal(calls.length, 2);
  });

  it("firewall nftables - the close or sweep that empties the chain deletes sumac's table with its rules", async () => {
    const { run, calls } = scripted(
      ok(
        listing([
          { handle: 2, comment: TAG },
          { handle: 4, comment: TAG },
        ]),
      ),
      ok(),
      ok(listing([])),
      ok(listing([])),
      ok(),
      NO_TABLE,
    );
    const fw = createNftablesFirewall({ lock: NO_LOCK, run, owner: OWNER });
    assert.deepEqual(await fw.close(rule), { backend: "nftables", removed: true });
    assert.equal(
      calls[1]?.stdin,
      [
        "delete rule inet sumac input handle 2",
        "delete rule inet sumac input handle 4",
        "delete table inet sumac",
        "",
      ].join("\n"),
    );
    // An empty chain left behind (by an earlier version) goes at the sweep; no table, nothing to do.
    assert.deepEqual(await fw.sweep(() => true), { removed: [], kept: [], foreign: 0 });
    assert.equal(calls[4]?.stdin, "delete table inet sumac\n");
    assert.deepEqual(await fw.sweep(() => true), { removed: [], kept: [], foreign: 0 });
    assert.equal(calls.length, 6);
  });

  it("firewall nftables - the owner must be a lease domain id", () => {
    assert.throws(() => createNftablesFirewall({ owner: "Not-An-Id" }), {
      code: "FIREWALL_BAD_RULE",
      message: /owner must be a lease domain id/,
    });
  });

  it("firewall nftables - tool failures become errors with stable codes", async () => {
    const perm = failed(
      "Operation not permitted (you must be root)\nnetlink: Error: cache initialization failed: Operation not permitted\n",
    );
    await rejectsWith(
      createNftablesFirewall({ lock: NO_LOCK, run: scripted(perm).run, owner: OWNER }).open(rule),
      "FIREWALL_NOT_PERMITTED",
      /nft list chain: Operation not permitted/,
    );
    const missing: CommandOutcome = { exitCode: null, stdout: "", stderr: "spawn nft ENOENT", missing: true };
    await rejectsWith(
      createNftablesFirewall({ lock: NO_LOCK, run: scripted(missing).run, owner: OWNER }).close(rule),
      "FIREWALL_TOOL_MISSING",
      /ENOENT/,
    );
    const slow: CommandOutcome = {
      exitCode: null,
      stdout: "",
      stderr: "nft did not finish within 10000 ms",
      timedOut: true,
    };
    await assert.rejects(
      createNftablesFirewall({ lock: NO_LOCK, run: scripted(NO_TABLE, slow).run, owner: OWNER }).open(rule),
      {
        code: "TIMEOUT",
        retryable: true,
      },
    );
    const syntax = failed("/dev/stdin:6:1-6: Error: Could not process rule: No such file or directory\n");
    await rejectsWith(
      createNftablesFirewall({ lock: NO_LOCK, run: scripted(NO_TABLE, syntax).run, owner: OWNER }).open(rule),
      "FIREWALL_TOOL_FAILED",
      /nft -f - \(open\): \/dev\/stdin/,
    );
  });

  it("firewall nftables - a bad rule is refused before nft runs", async () => {
    const { run, calls } = scripted();
    await rejectsWith(
      createNftablesFirewall({ lock: NO_LOCK, run, owner: OWNER }).open({ ...rule, peer: "10.0.0.0/8" }),
      "FIREWALL_BAD_RULE",
      /peer/,
    );
    await rejectsWith(
      createNftablesFirewall({ lock: NO_LOCK, run, owner: OWNER }).close({ ...rule, leaseId: "a b" }),
      "FIREWALL_BAD_RULE",
      /leaseId/,
    );
    assert.equal(calls.length, 0);
  });

  it("firewall nftables - calls made while nft runs go together: one listing, one transaction", async () => {
    const other = { ...rule, leaseId: "lease-43", port: 61005 };
    const third = { ...rule, leaseId: "lease-44", port: 61006, peer: "fd00::9" };
    const OTHER = `sumac svc=${OWNER} run=run-7 lease=lease-43 port=61005`;
    const { run, calls } = scripted(
      NO_TABLE,
      ok(),
      // The second batch: lease-42 is there (to close), lease-43 has a stale pair (replaced).
      ok(
        listing([
          { handle: 2, comment: TAG },
          { handle: 5, comment: OTHER },
          { handle: 6, comment: OTHER },
          { handle: 9 },
        ]),
      ),
      ok(),
    );
    const fw = createNftablesFirewall({ lock: NO_LOCK, run, owner: OWNER });
    const first = fw.open(rule);
    // Made while the first open is queued or running: they wait for it, then go as one batch.
    await Promise.resolve();
    const rest = Promise.all([fw.close(rule), fw.open(other), fw.open(third)]);
    assert.deepEqual(await first, { backend: "nftables", registered: true, tag: TAG });
    assert.deepEqual(await rest, [
      { backend: "nftables", removed: true },
      { backend: "nftables", registered: true, tag: OTHER },
      {
        backend: "nftables",
        registered: true,
        tag: `sumac svc=${OWNER} run=run-7 lease=lease-44 port=61006`,
      },
    ]);
    assert.equal(calls.length, 4);
    assert.equal(calls[3]?.stdin, batchRuleset(OWNER, [other, third], [2, 5, 6]));
    const text = calls[3]?.stdin ?? "";
    assert.match(text, /^table inet sumac \{/);
    assert.equal(text.split("\n").filter((l) => l.startsWith("delete rule")).length, 3);
    assert.match(text, /ip6 saddr fd00::9 tcp dport 61006 accept/);
  });

  it("firewall nftables - a batch nft refuses is run again call by call, each with its own outcome", async () => {
    const bad = failed("/dev/stdin:8:1-6: Error: Could not process rule: No such file or directory\n");
    const other = { ...rule, leaseId: "lease-43", port: 61005 };
    const { run, calls } = scripted(
      NO_TABLE,
      bad, // the batch of two
      NO_TABLE,
      ok(), // the first alone
      NO_TABLE,
      bad, // the second alone
    );
    const fw = createNftablesFirewall({ lock: NO_LOCK, run, owner: OWNER });
    const [a, b] = await Promise.allSettled([fw.open(rule), fw.open(other)]);
    assert.deepEqual(a, { status: "fulfilled", value: { backend: "nftables", registered: true, tag: TAG } });
    assert.equal(b.status, "rejected");
    assert.ok(b.status === "rejected" && b.reason instanceof FirewallError);
    assert.equal(b.reason.code, "FIREWALL_TOOL_FAILED");
    assert.match(String(b.reason.message), /nft -f - \(open\)/);
    assert.equal(calls[1]?.stdin, batchRuleset(OWNER, [rule, other], []));
    assert.equal(calls[3]?.stdin, batchRuleset(OWNER, [rule], []));
    assert.equal(calls[5]?.stdin, batchRuleset(OWNER, [other], []));
    assert.equal(calls.length, 6);
  });

  it("firewall nftables - an aborted call ends at once and a waiting one is left out of its batch", async () => {
    const { run, calls } = scripted(NO_TABLE, ok(), NO_TABLE, ok());
    const fw = createNftablesFirewall({ lock: NO_LOCK, run, owner: OWNER });
    const first = fw.open(rule);
    await Promise.resolve();
    const abort = new AbortController();
    const other = { ...rule, leaseId: "lease-43", port: 61005 };
    const dropped = fw.open(other, { signal: abort.signal });
    const kept = fw.open({ ...rule, leaseId: "lease-44", port: 61006 });
    abort.abort(new Error("target cancelled"));
    await assert.rejects(dropped, /target cancelled/);
    await first;
    await kept;
    assert.equal(calls.length, 4);
    assert.equal(calls[3]?.stdin, batchRuleset(OWNER, [{ ...rule, leaseId: "lease-44", port: 61006 }], []));
    await assert.rejects(fw.open(other, { signal: abort.signal }), /target cancelled/);
    assert.equal(calls.length, 4, "an already aborted call runs nothing");
  });

  it("firewall nftables - concurrent calls on one instance run one at a time", async () => {
    let running = 0;
    let most = 0;
    const run: CommandRunner = async (argv) => {
      running += 1;
      most = Math.max(most, running);
      await new Promise((resolve) => setImmediate(resolve));
      running -= 1;
      return argv.includes("list") ? NO_TABLE : ok();
    };
    const fw = createNftablesFirewall({ lock: NO_LOCK, run, owner: OWNER });
    await Promise.all([1, 2, 3, 4].map((i) => fw.open({ ...rule, leaseId: `lease-${i}`, port: 61000 + i })));
    assert.equal(most, 1);
  });

  it("firewall nftables - every listing and change runs under the host lock, and the lease service is asked without it", async () => {
    let held = false;
    const log: string[] = [];
    const lock: HostLock = {
      acquire: () => {
        assert.equal(held, false, "the lock is taken once at a time");
        held = true;
        log.push("lock");
        return Promise.resolve(() => {
          held = false;
          log.push("unlock");
          return Promise.resolve();
        });
      },
    };
    const dead = `sumac svc=${OWNER} run=run-1 lease=lease-1 port=61000`;
    const { run: scriptedRun } = scripted(
      NO_TABLE,
      ok(),
      ok(listing([{ handle: 2, comment: dead }])),
      ok(listing([{ handle: 2, comment: dead }])),
      ok(),
    );
    const run: CommandRunner = (argv, options) => {
      assert.equal(held, true, `${argv.join(" ")} runs under the lock`);
      log.push(argv.includes("list") ? "list" : "apply");
      return scriptedRun(argv, options);
    };
    const fw = createNftablesFirewall({ lock, run, owner: OWNER });
    await fw.open(rule);
    await fw.sweep(() => {
      assert.equal(held, false, "isLive is called without the lock");
      log.push("isLive");
      return false;
    });
    assert.deepEqual(log, [
      ...["lock", "list", "apply", "unlock"],
      ...["lock", "list", "unlock", "isLive", "lock", "list", "apply", "unlock"],
    ]);
  });
});
