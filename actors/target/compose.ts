/**
 * The one place where a run's step actors are put together (STYLE.md: composition root): the
 * session registry, the agent artifacts, the run's CA and workstation leaf, the lease client, the
 * firewall, and the step groups of transport-steps.ts and exchange-steps.ts over them.
 */
import { join } from "node:path";
import { createRunCa, issueLeaf } from "../../agent/credentials.ts";
import type { Bus } from "../../bus/bus.ts";
import type { Job, JobComponent, JobTarget } from "../../cli/job/types.ts";
import { selectFirewall } from "../firewall/select.ts";
import { createLeaseClient, type LeaseClient } from "../lease/client.ts";
import type { LeaseTransport } from "../lease/transport.ts";
import { prepareArtifacts } from "./artifacts.ts";
import { createExchangeSteps } from "./exchange-steps.ts";
import { SessionRegistry } from "./sessions.ts";
import type { StepImpls } from "./steps.ts";
import { createTransportSteps, defaultLocalRunRoot } from "./transport-steps.ts";

export interface RunStepsContext {
  readonly runId: string;
  readonly job: Job;
  /** `<stateDir>/runs/<runId>`: log copies go under it. */
  readonly runDir: string;
  readonly stateDir: string;
  readonly bus: Bus;
  /** A direct transport to an in-process lease service, when there is one (else over the bus). */
  readonly leaseTransport?: LeaseTransport;
  /** This worker host's name for its leases. */
  readonly workerHost: string;
  readonly log: (targetId: string, level: "info" | "warn" | "error", line: string) => void;
  readonly progress: (targetId: string, componentId: string, percent: number) => void;
  /** Run-wide messages (firewall choice, sweep). */
  readonly note: (line: string) => void;
  readonly env?: NodeJS.ProcessEnv;
}

export interface RunSteps {
  readonly steps: StepImpls;
  /** Stops renewing leases and releases what is still held; closes any session left open. */
  close(): Promise<void>;
}

/** The real steps of a run. */
export async function createRunSteps(run: RunStepsContext): Promise<RunSteps> {
  const { job } = run;
  const sessions = new SessionRegistry();
  const leases: LeaseClient = createLeaseClient({
    bus: run.leaseTransport ?? run.bus,
    workerHost: run.workerHost,
    leaseMs: 60_000,
  });
  const firewall = await selectFirewall({ mode: job.options.firewall, log: run.note });
  // A crashed earlier run may have left rules: remove those whose leases are gone.
  const live = await leases.status({ allHosts: true }).catch(() => undefined);
  if (live !== undefined) {
    const ids = new Set(live.leases.map((l) => l.leaseId));
    const swept = await firewall
      .sweep((owner) => ids.has(owner.leaseId))
      .catch((error: unknown) => {
        run.note(`firewall sweep failed: ${(error as Error).message}`);
        return undefined;
      });
    if (swept !== undefined && swept.removed.length > 0)
      run.note(`firewall: removed ${swept.removed.length} rule(s) left by earlier runs`);
  }
  const ca = createRunCa({ runId: run.runId, validForMs: 24 * 3_600_000 });
  const client = issueLeaf(ca, { commonName: "sumac-workstation", subjectAltNames: [], usage: "client" });
  let artifacts: ReturnType<typeof prepareArtifacts> | undefined;
  const targets = new Map<string, JobTarget>(job.targets.map((t) => [t.id, t]));
  const components = new Map<string, JobComponent>(job.package.components.map((c) => [c.id, c]));

  const transport = createTransportSteps({
    targets,
    sessions,
    hostKeyPolicy: job.options.hostKeyPolicy,
    localRunRoot: defaultLocalRunRoot(run.env),
    agentCache: job.options.agentCache,
    artifacts: () =>
      (artifacts ??= prepareArtifacts({
        bundleDir: join(run.stateDir, "cache", "agent"),
        cacheDir: join(run.stateDir, "cache", "runtime"),
      })),
    log: run.log,
    ...(run.env === undefined ? {} : { env: run.env }),
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
    runDir: run.runDir,
    log: run.log,
    progress: run.progress,
  });
  return {
    steps: { ...transport, ...exchange },
    async close() {
      await leases.close({ release: true, timeoutMs: 5_000 }).catch(() => undefined);
    },
  };
}
