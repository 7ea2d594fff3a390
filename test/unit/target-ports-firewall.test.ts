/**
 * The callback port's firewall rule in the port steps: closeFirewall removes it even when its
 * open failed (nft may have run before the caller stopped waiting), and a failed open is asked for
 * again on the step's next attempt. Real lease service and callback listener; the firewall is a
 * fake that records its calls.
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { createRunCa } from "../../agent/client/credentials.ts";
import type { PortRule, RuleRef, Firewall } from "../../actors/firewall/firewall.ts";
import { createLeaseClient } from "../../actors/lease/client.ts";
import { startLeaseService } from "../../actors/lease/service.ts";
import { startCallbackListener } from "../../agent/client/callback-listener.ts";
import { createPortSteps } from "../../actors/target/port-steps.ts";
import { testSession } from "../support/target-session.ts";
import { openMemoryBus } from "../../bus/memory.ts";

const cleanup: (() => Promise<unknown>)[] = [];
after(async () => {
  for (const undo of cleanup.reverse()) await undo();
});

describe("target ports - firewall", () => {
  it("target ports - a failed open is closed by closeFirewall and asked for again on the next attempt", async () => {
    const bus = await openMemoryBus();
    cleanup.push(() => bus.close());
    const service = await startLeaseService({ bus });
    cleanup.push(() => service.stop());
    await service.whenActive();
    const leases = createLeaseClient({ bus: service.transport(), workerHost: "w1" });
    cleanup.push(() => leases.close());

    const calls: string[] = [];
    let failNextOpen = true;
    const firewall: Firewall = {
      backend: "nftables",
      open(rule: PortRule) {
        calls.push(`open ${rule.port} ${rule.peer}`);
        if (failNextOpen) {
          failNextOpen = false;
          return Promise.reject(new Error("nft: no answer in time"));
        }
        return Promise.resolve({ backend: "nftables", registered: true, tag: "t" });
      },
      close(rule: RuleRef) {
        calls.push(`close ${rule.port} ${rule.leaseId}`);
        return Promise.resolve({ backend: "nftables", removed: true });
      },
      sweep: () => Promise.reject(new Error("sweep is not used here")),
    };

    // The listener binds on loopback; the rule names the target's address.
    const { sessions } = testSession({ remoteAddress: "127.0.0.2", localAddress: "127.0.0.1" });
    const steps = createPortSteps({
      runId: "r1",
      sessions,
      ca: createRunCa({ runId: "r1", validForMs: 60_000 }),
      leases,
      firewall,
      firewallMode: "nftables",
      agentBasePort: 62286,
      startListener: startCallbackListener,
      log: () => undefined,
      progress: () => undefined,
      output: () => undefined,
    });
    const target = { id: "t1" } as never;
    const signal = new AbortController().signal;
    // Closes the callback listener even when an assertion fails first (it would keep the test alive).
    cleanup.push(() => steps.releaseLeases({ target, leases: null } as never, signal));

    await assert.rejects(steps.allocatePorts({ target } as never, signal), /nft: no answer in time/);
    const [open] = calls;
    const port = open?.split(" ")[1];
    assert.match(open ?? "", /^open 6\d{4} 127\.0\.0\.2$/);
    await steps.closeFirewall({ target } as never, signal);
    assert.equal(calls.length, 2);
    assert.match(calls[1]!, new RegExp(`^close ${port} L\\S+$`), "the rule whose open failed is closed");

    const allocated = (await steps.allocatePorts({ target } as never, signal)) as {
      leases: { callbackPort: number };
    };
    assert.equal(calls[2], `open ${allocated.leases.callbackPort} 127.0.0.2`, "asked for again");
    await steps.allocatePorts({ target } as never, signal);
    assert.equal(calls.length, 3, "an open that succeeded is not asked for again");
    await steps.closeFirewall({ target } as never, signal);
    await steps.closeFirewall({ target } as never, signal);
    assert.deepEqual(
      calls.slice(3).map((c) => c.split(" ").slice(0, 2).join(" ")),
      [`close ${allocated.leases.callbackPort}`],
      "closed once",
    );
  });
});
