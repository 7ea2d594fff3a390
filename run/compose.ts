/**
 * The one place where a run's step actors are put together (STYLE.md: composition root): the
 * session registry, the agent artifacts, the run's CA and workstation leaf, the lease client, the
 * firewall, and the step groups of connect.ts, push.ts and exchange-steps.ts over them.
 */
import { join } from "node:path";
import { createRunCa, issueLeaf } from "../agent/client/credentials.ts";
import { hostname } from "node:os";
import type { JobComponent, JobTarget } from "./job/types.ts";
import type { RunContext, RunSteps } from "./types.ts";
import { selectFirewall } from "../actors/firewall/select.ts";
import { createLeaseClient, type LeaseClient } from "../actors/lease/client.ts";
import { agentBundleOnce } from "../actors/target/agent-bundle.ts";
import { createConnectSteps } from "../actors/target/connect.ts";
import { createPushSteps } from "../actors/target/push.ts";
import { runtimeOnce } from "../actors/target/runtime.ts";
import { createExchangeSteps } from "../actors/target/exchange-steps.ts";
import { SessionRegistry } from "../actors/target/sessions.ts";

/** The real steps of a run. */
export async function createRunSteps(run: RunContext): Promise<RunSteps> {
  const { job } = run;
  const env = process.env;
  const log = (targetId: string, level: "debug" | "info" | "warn" | "error", line: string) =>
    run.events.log(targetId, level, line);
  // Run-wide notes: the firewall chosen, rules swept.
  const note = (line: string) => run.events.note(line);
  const sessions = new SessionRegistry();
  const leases: LeaseClient = createLeaseClient({
    bus: run.leases.transport,
    workerHost: hostname() || "localhost",
    leaseMs: 60_000,
  });
  const firewall = await selectFirewall({ mode: job.options.firewall, log: note });
  // A crashed earlier run may have left rules: remove those whose leases are gone.
  const live = await leases.status({ allHosts: true }).catch(() => undefined);
  if (live !== undefined) {
    const ids = new Set(live.leases.map((l) => l.leaseId));
    const swept = await firewall
      .sweep((owner) => ids.has(owner.leaseId))
      .catch((error: unknown) => {
        note(`firewall sweep failed: ${(error as Error).message}`);
        return undefined;
      });
    if (swept !== undefined && swept.removed.length > 0)
      note(`firewall: removed ${swept.removed.length} rule(s) left by earlier runs`);
  }
  const ca = createRunCa({ runId: run.runId, validForMs: 24 * 3_600_000 });
  const client = issueLeaf(ca, { commonName: "sumac-workstation", subjectAltNames: [], usage: "client" });
  const targets = new Map<string, JobTarget>(job.targets.map((t) => [t.id, t]));
  const components = new Map<string, JobComponent>(job.package.components.map((c) => [c.id, c]));

  const connect = createConnectSteps({
    targets,
    sessions,
    hostKeyPolicy: job.options.hostKeyPolicy,
    log,
    env,
  });
  const push = createPushSteps({
    sessions,
    agentCache: job.options.agentCache,
    bundle: agentBundleOnce({ outDir: join(run.stateDir, "cache", "agent") }),
    runtime: runtimeOnce(join(run.stateDir, "cache", "runtime")),
    log,
  });
  const exchange = createExchangeSteps({
    runId: run.runId,
    sessions,
    ca,
    client,
    leases,
    firewall,
    components,
    ports: job.options.ports,
    firewallMode: job.options.firewall,
    logDir: (targetId) => run.targetLogDir(targetId),
    log,
    progress: (targetId, componentId, percent) => run.events.progress(targetId, componentId, percent),
  });
  return {
    steps: { ...connect, ...push, ...exchange },
    async close() {
      await leases.close({ release: true, timeoutMs: 5_000 }).catch(() => undefined);
    },
  };
}
