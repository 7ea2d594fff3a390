/**
 * actors/firewall's nftables backend against the real nft (nftables 1.0.6 on Debian 12), checked
 * with real TCP connections. Two network namespaces joined by a veth pair: "server" runs a TCP
 * listener and sumac's rules, "client" holds the peer's address and another one on the same link,
 * so a connection can come from either. The machine's own ruleset is never touched. Needs root,
 * `ip` and `nft`: elsewhere it skips with the reason, and in CI it fails.
 */
import assert from "node:assert/strict";
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { createCommandRunner } from "../../base/command.ts";
import { FirewallError, type PortRule } from "../../actors/firewall/firewall.ts";
import { createNftablesFirewall, nftTag } from "../../actors/firewall/nftables.ts";
import { selectFirewall } from "../../actors/firewall/select.ts";
import { netnsSkipReason } from "../support/netns.ts";

const run = promisify(execFile);

const skip = await netnsSkipReason("the firewall backend test");
const id = randomBytes(4).toString("hex");
const server = `sumac-fwb-${id}-s`;
const client = `sumac-fwb-${id}-c`;
const SERVER4 = "10.231.0.1";
const SERVER6 = "fd31::1";
const PEER4 = "10.231.0.2";
const OTHER4 = "10.231.0.3";
const PEER6 = "fd31::2";
const OTHER6 = "fd31::3";
const PORT_A = 61004;
const PORT_B = 61005;
/** How long a probe waits for the handshake; a dropped SYN never gets one. */
const CONNECT_MS = 1_500;

const inServer = ["ip", "netns", "exec", server];
const nsRun = createCommandRunner({ prefix: inServer, timeoutMs: 10_000 });
const OWNER = "fwb0wn3rfwb0wn";
const firewall = createNftablesFirewall({ run: nsRun, owner: OWNER });

async function sh(argv: string[]): Promise<void> {
  const [file = "", ...args] = argv;
  await run(file, args, { timeout: 10_000 });
}

async function ruleset(): Promise<string> {
  const { stdout } = await run("ip", ["netns", "exec", server, "nft", "list", "ruleset"], {
    timeout: 10_000,
  });
  return stdout;
}

/** One real TCP connection from `from` (an address of the client namespace): its outcome. */
async function connect(from: string, to: string, port: number): Promise<string> {
  const script = `
    const [host, port, localAddress, ms] = process.argv.slice(1);
    const s = require("node:net").connect({ host, port: Number(port), localAddress });
    const done = (what) => { console.log(what); s.destroy(); process.exit(0); };
    s.setTimeout(Number(ms), () => done("timeout"));
    s.on("connect", () => done("connected"));
    s.on("error", (e) => done(e.code === "ECONNREFUSED" ? "refused" : e.code));`;
  const { stdout } = await run(
    "ip",
    ["netns", "exec", client, process.execPath, "-e", script, to, String(port), from, String(CONNECT_MS)],
    { timeout: CONNECT_MS + 10_000 },
  );
  return stdout.trim();
}

const lease = (leaseId: string, port: number, peer: string): PortRule => ({
  runId: "run-fw",
  leaseId,
  port,
  peer,
});

describe("firewall backends", { skip }, () => {
  let listener: ChildProcess | undefined;

  before(async () => {
    await sh(["ip", "netns", "add", server]);
    await sh(["ip", "netns", "add", client]);
    await sh([...inServer, "ip", "link", "add", "vs", "type", "veth", "peer", "name", "vc", "netns", client]);
    const setup: Array<[string, string[]]> = [
      [server, ["addr", "add", `${SERVER4}/24`, "dev", "vs"]],
      [server, ["addr", "add", `${SERVER6}/64`, "dev", "vs", "nodad"]],
      [client, ["addr", "add", `${PEER4}/24`, "dev", "vc"]],
      [client, ["addr", "add", `${OTHER4}/24`, "dev", "vc"]],
      [client, ["addr", "add", `${PEER6}/64`, "dev", "vc", "nodad"]],
      [client, ["addr", "add", `${OTHER6}/64`, "dev", "vc", "nodad"]],
      [server, ["link", "set", "vs", "up"]],
      [client, ["link", "set", "vc", "up"]],
      [server, ["link", "set", "lo", "up"]],
    ];
    for (const [ns, args] of setup) await sh(["ip", "netns", "exec", ns, "ip", ...args]);
    // The listener: both ports, both families; it says when it listens.
    const script = `
      const net = require("node:net");
      let up = 0;
      for (const port of [${PORT_A}, ${PORT_B}])
        net.createServer((s) => s.end()).listen(port, "::", () => { if (++up === 2) console.log("listening"); });`;
    listener = spawn("ip", ["netns", "exec", server, process.execPath, "-e", script], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    const ready = once(listener.stdout!, "data");
    const early = once(listener, "exit").then(() =>
      Promise.reject(new Error("the listener exited before listening")),
    );
    const late = new Promise((_, reject) =>
      setTimeout(() => reject(new Error("no listener within 10 s")), 10_000).unref(),
    );
    await Promise.race([ready, early, late]);
  });

  after(async () => {
    listener?.kill("SIGKILL");
    for (const ns of [client, server]) await sh(["ip", "netns", "del", ns]).catch(() => undefined);
  });

  it("firewall backends - before any rule both client addresses reach the listener", async () => {
    assert.equal(await connect(PEER4, SERVER4, PORT_A), "connected");
    assert.equal(await connect(OTHER4, SERVER4, PORT_A), "connected");
    assert.equal(await connect(OTHER6, SERVER6, PORT_A), "connected");
  });

  it("firewall backends - open admits the IPv4 peer and not another address, of either family", async () => {
    const result = await firewall.open(lease("lease-a", PORT_A, PEER4));
    assert.deepEqual(result, {
      backend: "nftables",
      registered: true,
      tag: nftTag(OWNER, lease("lease-a", PORT_A, PEER4)),
    });
    assert.equal(await connect(PEER4, SERVER4, PORT_A), "connected");
    assert.equal(await connect(OTHER4, SERVER4, PORT_A), "timeout");
    assert.equal(await connect(PEER6, SERVER6, PORT_A), "timeout");
    // The other port is not affected.
    assert.equal(await connect(OTHER4, SERVER4, PORT_B), "connected");
    const text = await ruleset();
    assert.match(
      text,
      /ip saddr 10\.231\.0\.2 tcp dport 61004 accept comment "sumac svc=fwb0wn3rfwb0wn run=run-fw lease=lease-a port=61004"/,
    );
    assert.match(
      text,
      /tcp dport 61004 drop comment "sumac svc=fwb0wn3rfwb0wn run=run-fw lease=lease-a port=61004"/,
    );
  });

  it("firewall backends - open admits an IPv6 peer and not another address", async () => {
    await firewall.open(lease("lease-b", PORT_B, PEER6));
    assert.equal(await connect(PEER6, SERVER6, PORT_B), "connected");
    assert.equal(await connect(OTHER6, SERVER6, PORT_B), "timeout");
    assert.equal(await connect(PEER4, SERVER4, PORT_B), "timeout");
  });

  it("firewall backends - opening a lease twice leaves one pair of rules", async () => {
    await firewall.open(lease("lease-a", PORT_A, PEER4));
    const count = (await ruleset()).match(/lease=lease-a /g)?.length;
    assert.equal(count, 2);
  });

  it("firewall backends - close removes the rules, the port is open again, and closing twice is fine", async () => {
    assert.deepEqual(await firewall.close(lease("lease-a", PORT_A, PEER4)), {
      backend: "nftables",
      removed: true,
    });
    assert.doesNotMatch(await ruleset(), /lease=lease-a/);
    assert.equal(await connect(OTHER4, SERVER4, PORT_A), "connected");
    assert.deepEqual(await firewall.close(lease("lease-a", PORT_A, PEER4)), {
      backend: "nftables",
      removed: false,
    });
    assert.match(await ruleset(), /lease=lease-b/);
  });

  it("firewall backends - sweep removes the rules of a dead lease and keeps a live one", async () => {
    // lease-b (port B) is still open; a crashed run left lease-dead on port A.
    await firewall.open(lease("lease-dead", PORT_A, PEER4));
    assert.equal(await connect(OTHER4, SERVER4, PORT_A), "timeout");
    const result = await createNftablesFirewall({ run: nsRun, owner: OWNER }).sweep(
      ({ leaseId }) => leaseId === "lease-b",
    );
    assert.deepEqual(result, {
      removed: [{ owner: OWNER, runId: "run-fw", leaseId: "lease-dead", port: PORT_A }],
      kept: [{ owner: OWNER, runId: "run-fw", leaseId: "lease-b", port: PORT_B }],
      foreign: 0,
    });
    const text = await ruleset();
    assert.doesNotMatch(text, /lease-dead/);
    assert.match(
      text,
      /ip6 saddr fd31::2 tcp dport 61005 accept comment "sumac svc=fwb0wn3rfwb0wn run=run-fw lease=lease-b port=61005"/,
    );
    assert.equal(await connect(OTHER4, SERVER4, PORT_A), "connected");
    assert.equal(await connect(OTHER6, SERVER6, PORT_B), "timeout");
  });

  it("firewall backends - closing the last rule deletes sumac's table", async () => {
    assert.match(await ruleset(), /table inet sumac /);
    assert.deepEqual(await firewall.close(lease("lease-b", PORT_B, PEER6)), {
      backend: "nftables",
      removed: true,
    });
    assert.doesNotMatch(await ruleset(), /table inet sumac /);
    assert.equal(await connect(OTHER6, SERVER6, PORT_B), "connected");
  });

  it("firewall backends - without CAP_NET_ADMIN open fails as not permitted and auto picks none", async () => {
    const unprivileged = createCommandRunner({
      prefix: [...inServer, "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"],
    });
    await assert.rejects(
      createNftablesFirewall({ run: unprivileged, owner: OWNER }).open(lease("lease-c", PORT_A, PEER4)),
      (e: unknown) => {
        assert.ok(e instanceof FirewallError);
        assert.equal(e.code, "FIREWALL_NOT_PERMITTED");
        assert.match(e.message, /Operation not permitted/);
        return true;
      },
    );
    const lines: string[] = [];
    const chosen = await selectFirewall({
      mode: "auto",
      platform: "linux",
      run: unprivileged,
      owner: OWNER,
      log: (m) => lines.push(m),
    });
    assert.equal(chosen.backend, "none");
    assert.match(
      lines[0] ?? "",
      /using none \(auto: linux, but nft list tables: Operation not permitted.*CAP_NET_ADMIN/,
    );
    const privileged = await selectFirewall({
      mode: "auto",
      platform: "linux",
      run: nsRun,
      owner: OWNER,
      log: (m) => lines.push(m),
    });
    assert.equal(privileged.backend, "nftables");
    assert.doesNotMatch(await ruleset(), /lease-c/);
  });
});
