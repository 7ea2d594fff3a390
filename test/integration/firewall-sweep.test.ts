/**
 * The firewall sweep at a run's start as run/compose.ts wires it (actors/firewall/sweep.ts over the
 * lease client's paged listing), against the real nft in a network namespace of its own and real
 * embedded lease services, each in its own state directory as two embedded runs have: with 2,500
 * live leases the sweep keeps the one rule whose lease lives (past the first page of 2,000) and
 * removes a dead lease's; a listing that cannot be known complete removes nothing and says so; a
 * run in another state directory leaves the first one's rules alone; and once the last rule is
 * closed, no `inet sumac` table stays. Needs root, `ip` and `nft`: elsewhere it skips with the
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
import type { Bus } from "../../bus/bus.ts";
import { openMemoryBus } from "../../bus/memory.ts";
import type { Lease } from "../../bus/schemas/lease.ts";
import { createNftablesFirewall } from "../../actors/firewall/nftables.ts";
import { sweepStaleRules } from "../../actors/firewall/sweep.ts";
import type { Firewall } from "../../actors/firewall/firewall.ts";
import { createLeaseClient, type LeaseClient } from "../../actors/lease/client.ts";
import { startLeaseService, type LeaseService } from "../../actors/lease/service.ts";
import type { LeaseTransport } from "../../actors/lease/transport.ts";
import { netnsSkipReason } from "../support/netns.ts";

const run = promisify(execFile);
const skip = await netnsSkipReason("the firewall sweep test");
const ns = `sumac-fws-${randomBytes(4).toString("hex")}`;
const nsRun = createCommandRunner({ prefix: ["ip", "netns", "exec", ns], timeoutMs: 10_000 });

async function ruleset(): Promise<string> {
  const { stdout } = await run("ip", ["netns", "exec", ns, "nft", "list", "ruleset"], { timeout: 10_000 });
  return stdout;
}

/** One embedded run's parts: its state directory, bus, lease service, client and firewall. */
interface EmbeddedRun {
  readonly dir: string;
  readonly bus: Bus;
  readonly service: LeaseService;
  readonly leases: LeaseClient;
  readonly firewall: Firewall;
  readonly notes: string[];
  /** The sweep as run/compose.ts runs it, listing the leases through `transport`. */
  sweep(transport?: LeaseTransport): ReturnType<typeof sweepStaleRules>;
}

async function embeddedRun(): Promise<EmbeddedRun> {
  const dir = await mkdtemp(join(tmpdir(), "sumac-fws-state-"));
  const bus = await openMemoryBus({ stateDir: dir });
  const service = await startLeaseService({ bus, exclusive: true });
  await service.whenActive();
  const leases = createLeaseClient({ bus: service.transport(), workerHost: "ws", leaseMs: 600_000 });
  const firewall = createNftablesFirewall({ run: nsRun, owner: service.domain });
  const notes: string[] = [];
  return {
    dir,
    bus,
    service,
    leases,
    firewall,
    notes,
    sweep: (transport) => {
      const lister =
        transport === undefined ? leases : createLeaseClient({ bus: transport, workerHost: "ws" });
      return sweepStaleRules({
        firewall,
        liveLeaseIds: async () =>
          new Set((await lister.allLeases({ timeoutMs: 10_000 })).map((l) => l.leaseId)),
        note: (line) => notes.push(line),
      });
    },
  };
}

async function closeRun(r: EmbeddedRun): Promise<void> {
  await r.leases.close();
  await r.service.stop();
  await r.bus.close();
  await rm(r.dir, { recursive: true, force: true });
}

/** A transport to `service` as a lease service that does not page answers (`after` unknown to it). */
function notPaging(service: LeaseService): LeaseTransport {
  const direct = service.transport();
  return {
    trusted: direct.trusted,
    request: (op, body, deadline) => {
      const { after: _ignored, ...rest } = body as { after?: string };
      return direct.request(op, op === "status" ? rest : body, deadline);
    },
  };
}

const rule = (runId: string, lease: Lease, peer: string) => ({
  runId,
  leaseId: lease.leaseId,
  port: lease.port,
  peer,
});

describe("firewall sweep", { skip }, () => {
  let first: EmbeddedRun;
  let second: EmbeddedRun | undefined;
  before(async () => {
    await run("ip", ["netns", "add", ns], { timeout: 10_000 });
    first = await embeddedRun();
  });
  after(async () => {
    if (second !== undefined) await closeRun(second);
    if (first !== undefined) await closeRun(first);
    await run("ip", ["netns", "del", ns], { timeout: 10_000 }).catch(() => undefined);
  });

  let live: Lease;
  let dead: Lease;

  it("firewall sweep - with 2,500 live leases the sweep keeps the live lease's rule and removes a dead one's", async () => {
    const holder = { run: "run-one", target: "t" };
    const granted = await Promise.all(
      Array.from({ length: 2_500 }, (_, i) =>
        first.leases.acquire("callback", { ...holder, target: `t${i}` }, { timeoutMs: 60_000 }),
      ),
    );
    // The last lease granted: after the first 2,000 in port order (what a status reply lists
    // unpaged) and in lease-id order.
    live = granted.reduce((a, b) => (b.port > a.port ? b : a));
    assert.equal(live.port, 61_000 + 2_499);
    dead = await first.leases.acquire("callback", { ...holder, target: "gone" });
    await first.firewall.open(rule("run-one", live, "10.0.0.7"));
    await first.firewall.open(rule("run-one", dead, "10.0.0.8"));
    await first.leases.release(dead.leaseId);
    assert.equal((await first.leases.status({ allHosts: true })).truncated, true);

    // A service that cannot page: its listing is known incomplete, and nothing is removed.
    const refused = await first.sweep(notPaging(first.service));
    assert.equal(refused, undefined);
    assert.match(first.notes.at(-1) ?? "", /^warning: firewall sweep skipped, no rule removed: .*truncated/);
    assert.match(await ruleset(), new RegExp(`lease=${dead.leaseId} `));

    const swept = await first.sweep();
    assert.deepEqual(
      swept?.removed.map((r) => r.leaseId),
      [dead.leaseId],
    );
    assert.deepEqual(
      swept?.kept.map((r) => r.leaseId),
      [live.leaseId],
    );
    const text = await ruleset();
    assert.match(
      text,
      new RegExp(
        `ip saddr 10\\.0\\.0\\.7 tcp dport ${live.port} accept comment "sumac svc=${first.service.domain} run=run-one lease=${live.leaseId} `,
      ),
    );
    assert.doesNotMatch(text, new RegExp(dead.leaseId));
  });

  it("firewall sweep - a second embedded run in another state directory leaves the first run's rules alone", async () => {
    second = await embeddedRun();
    assert.notEqual(second.service.domain, first.service.domain);
    const own = await second.leases.acquire("callback", { run: "run-two", target: "t" });
    assert.equal(own.port, 61_000, "its own lease service knows nothing of the first's leases");
    const before = await ruleset();
    const swept = await second.sweep();
    assert.deepEqual(swept, { removed: [], kept: [], foreign: 2 });
    assert.equal(await ruleset(), before);
    // Its own rules come and go beside the first run's, and its end leaves the first run's be.
    await second.firewall.open(rule("run-two", own, "10.0.0.9"));
    assert.deepEqual(await second.firewall.close(rule("run-two", own, "10.0.0.9")), {
      backend: "nftables",
      removed: true,
    });
    await closeRun(second);
    second = undefined;
    assert.equal(await ruleset(), before);
  });

  it("firewall sweep - once a run's last rule is closed, no inet sumac table stays", async () => {
    await first.firewall.close(rule("run-one", live, "10.0.0.7"));
    assert.doesNotMatch(await ruleset(), /table inet sumac /);
    // A later run that opens nothing leaves none either.
    const later = await first.sweep();
    assert.deepEqual(later, { removed: [], kept: [], foreign: 0 });
    assert.equal(await ruleset(), "");
  });
});
