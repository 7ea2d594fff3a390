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
import { createRunCa, issueLeaf, type IssuedLeafWithKey, type RunCa } from "../agent/client/credentials.ts";
import { FirewallError } from "../actors/firewall/firewall.ts";
import { selectFirewall } from "../actors/firewall/select.ts";
import { sweepStaleRules } from "../actors/firewall/sweep.ts";
import { createLeaseClient, type LeaseClient } from "../actors/lease/client.ts";
import { agentBundleOnce } from "../actors/target/agent-bundle.ts";
import type { StepLog, Transports } from "../actors/target/transport.ts";
import type { Job } from "./job/types.ts";
import { createAgentSteps } from "../actors/target/agent-steps.ts";
import { createConnectSteps } from "../actors/target/connect-steps.ts";
import { createExchangeSteps } from "../actors/target/exchange-steps.ts";
import { createFileSteps } from "../actors/target/file-steps.ts";
import { createPortSteps } from "../actors/target/port-steps.ts";
import { runtimeOnce } from "../actors/target/posix/runtime.ts";
import { SessionRegistry } from "../actors/target/session.ts";
import { localTransport } from "../actors/target/transports/local.ts";
import { sshTransport } from "../actors/target/transports/ssh.ts";
import { windowsTransport } from "../actors/target/transports/windows.ts";
import { windowsRuntimeOnce } from "../actors/target/windows/runtime.ts";
import { withDeadline } from "../base/deadline.ts";
import { jobLifetimeMs } from "./run-lifetime.ts";
import { targetAccess } from "./target-access.ts";
import type { RunContext, RunSteps } from "./types.ts";

/** The whole start-up sweep of stale firewall rules, however many pages the lease listing takes. */
const SWEEP_MS = 60_000;

/**
 * The run's CA and the workstation's client leaf (client-only: it can open sessions with the
 * run's agents, and is the one client they answer, by its fingerprint in their configuration).
 * Both last `validForMs` from `now` (run-lifetime.ts: as long as the run can last), and every leaf
 * the CA issues later is capped at its notAfter.
 */
export function createRunCredentials(
  runId: string,
  validForMs: number,
  now?: number,
): { ca: RunCa; client: IssuedLeafWithKey } {
  const clock = now === undefined ? {} : { now };
  const ca = createRunCa({ runId, validForMs, ...clock });
  const client = issueLeaf(ca, {
    commonName: "sumac-workstation",
    subjectAltNames: [],
    usage: "client",
    ...clock,
  });
  return { ca, client };
}

/**
 * One transport per kind of target, as the job's options shape them (also what `sumac clean`
 * reaches targets with): SSH, this machine, and Windows over SMB.
 */
export function createTransports(
  job: Job,
  stateDir: string,
  log: StepLog,
  env: NodeJS.ProcessEnv = process.env,
): Required<Transports> {
  const agentFiles = {
    agentCache: job.options.agentCache,
    bundle: agentBundleOnce({ outDir: join(stateDir, "cache", "agent") }),
    runtime: runtimeOnce(join(stateDir, "cache", "runtime")),
    log,
  };
  return {
    ssh: sshTransport({ hostKeyPolicy: job.options.hostKeyPolicy, env, agentFiles, log }),
    local: localTransport({ env, agentFiles, log }),
    smb: windowsTransport({
      targetIndex: new Map(job.targets.map((t, i) => [t.id, i])),
      netbios: job.options.netbios,
      ...(job.options.netbiosServer === undefined ? {} : { netbiosServer: job.options.netbiosServer }),
      smb: job.options.smb,
      agentFiles: {
        agentCache: job.options.agentCache,
        bundle: agentFiles.bundle,
        runtime: windowsRuntimeOnce(join(stateDir, "cache", "runtime-windows")),
      },
      log,
    }),
  };
}

/** The real steps of a run. */
export async function createRunSteps(run: RunContext): Promise<RunSteps> {
  const { job } = run;
  const env = process.env;
  const log: StepLog = (targetId, level, line, origin) =>
    run.events.log(targetId, level, line, origin?.source === undefined ? {} : { source: origin.source });
  // Run-wide notes: the firewall chosen, rules swept.
  const note = (line: string) => run.events.note(line);
  const leases: LeaseClient = createLeaseClient({
    bus: run.leases.transport,
    workerHost: hostname() || "localhost",
    leaseMs: 60_000,
  });
  // Tagged with the lease domain: rules of another sumac (another state directory or lease
  // service) are never touched by this run's sweep.
  const firewall = await selectFirewall({
    mode: job.options.firewall,
    owner: run.leases.service.domain,
    log: note,
  });
  // A crashed earlier run of this domain may have left rules: remove those whose leases are gone.
  // One deadline for the whole sweep: each page of the lease listing has its own, and a listing
  // may take many pages. Past it the sweep stops, says so, and removes nothing more.
  const sweepTimeout = new FirewallError(
    "TIMEOUT",
    `the firewall sweep did not finish within ${SWEEP_MS / 1000} s`,
  );
  await withDeadline({ ms: SWEEP_MS, timeout: sweepTimeout, waitForWork: true }, (signal) =>
    sweepStaleRules({
      firewall,
      liveLeaseIds: async () =>
        new Set((await leases.allLeases({ timeoutMs: 10_000, signal })).map((lease) => lease.leaseId)),
      note,
      signal,
    }),
  );
  const { ca, client } = createRunCredentials(run.runId, jobLifetimeMs(job));
  const transports = createTransports(job, run.stateDir, log, env);
  const sessions = new SessionRegistry();
  const progress = (targetId: string, componentId: string, percent: number) =>
    run.events.progress(targetId, componentId, percent);
  const connect = createConnectSteps({
    targets: new Map(job.targets.map((t) => [t.id, targetAccess(t, env)])),
    transports,
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
    workstation: client,
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
