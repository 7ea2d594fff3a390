/**
 * The one place where a run's step actors are put together (STYLE.md: composition root): the
 * run's CA and workstation leaf, the lease client, the firewall, the agent's bundle and runtime,
 * one transport per kind of target (actors/target/transports/), and the step groups over them
 * (the `*-steps.ts` files of actors/target/) sharing one session registry.
 */
import { join } from "node:path";
import { hostname } from "node:os";
import { AgentClient } from "../agent/client/client.ts";
import { startCallbackListener } from "../agent/client/callback-listener.ts";
import { createRunCa, issueLeaf } from "../agent/client/credentials.ts";
import { selectFirewall } from "../actors/firewall/select.ts";
import { createLeaseClient, type LeaseClient } from "../actors/lease/client.ts";
import { agentBundleOnce } from "../actors/target/agent-bundle.ts";
import { createAgentSteps } from "../actors/target/agent-steps.ts";
import { createConnectSteps } from "../actors/target/connect-steps.ts";
import { createExchangeSteps } from "../actors/target/exchange-steps.ts";
import { createFileSteps } from "../actors/target/file-steps.ts";
import { createPortSteps } from "../actors/target/port-steps.ts";
import { runtimeOnce } from "../actors/target/posix/runtime.ts";
import { SessionRegistry } from "../actors/target/session.ts";
import { localTransport } from "../actors/target/transports/local.ts";
import { sshTransport } from "../actors/target/transports/ssh.ts";
import { targetAccess } from "./target-access.ts";
import type { RunContext, RunSteps } from "./types.ts";

/** The real steps of a run. */
export async function createRunSteps(run: RunContext): Promise<RunSteps> {
  const { job } = run;
  const env = process.env;
  const log = (targetId: string, level: "debug" | "info" | "warn" | "error", line: string) =>
    run.events.log(targetId, level, line);
  // Run-wide notes: the firewall chosen, rules swept.
  const note = (line: string) => run.events.note(line);
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
  const agentFiles = {
    agentCache: job.options.agentCache,
    bundle: agentBundleOnce({ outDir: join(run.stateDir, "cache", "agent") }),
    runtime: runtimeOnce(join(run.stateDir, "cache", "runtime")),
    log,
  };
  const sessions = new SessionRegistry();
  const progress = (targetId: string, componentId: string, percent: number) =>
    run.events.progress(targetId, componentId, percent);
  const connect = createConnectSteps({
    targets: new Map(job.targets.map((t) => [t.id, targetAccess(t, env)])),
    transports: {
      ssh: sshTransport({ hostKeyPolicy: job.options.hostKeyPolicy, env, agentFiles, log }),
      local: localTransport({ env, agentFiles, log }),
    },
    sessions,
    log,
  });
  const files = createFileSteps({ sessions });
  const ports = createPortSteps({
    runId: run.runId,
    sessions,
    ca,
    leases,
    firewall,
    firewallMode: job.options.firewall,
    agentBasePort: job.options.ports.agent.base,
    startListener: startCallbackListener,
    log,
    progress,
    output: (targetId, line) => run.events.output(targetId, line),
  });
  const agent = createAgentSteps({
    runId: run.runId,
    sessions,
    ca,
    agentPorts: job.options.ports.agent,
    firewallMode: job.options.firewall,
    log,
    agentLogBytes: job.options.output.agentLogBytes,
  });
  const exchange = createExchangeSteps({
    runId: run.runId,
    sessions,
    ca,
    client,
    connectAgent: (options) => AgentClient.connect(options),
    leases,
    components: new Map(job.package.components.map((c) => [c.id, c])),
    logDir: (targetId) => run.targetLogDir(targetId),
    log,
    progress,
  });
  return {
    steps: { ...connect, ...files, ...ports, ...agent, ...exchange },
    async close() {
      await leases.close({ release: true, timeoutMs: 5_000 }).catch(() => undefined);
    },
  };
}
