/**
 * The steps `allocatePorts`, `closeFirewall` and `releaseLeases`: what a target holds on this
 * workstation. A callback port (range `callback`, 61000+) with the target's callback listener bound
 * on it, opened in the host firewall for that target only; a workstation port (range
 * `workstation`, 60000+), the local end of the TLS session with the agent. See
 * docs/target-steps.md.
 */
import { createServer } from "node:net";
import type { RunCa } from "../../agent/client/credentials.ts";
import { issueLeaf } from "../../agent/client/credentials.ts";
import type { Firewall } from "../firewall/firewall.ts";
import type { FirewallMode } from "../firewall/select.ts";
import { bindLeased } from "../lease/bind.ts";
import type { LeaseClient } from "../lease/client.ts";
import type { StartCallbackListener } from "./agent-session.ts";
import type { SessionRegistry } from "./session.ts";
import type { StepImpls } from "./steps.ts";
import type { StepLog } from "./transport.ts";

export interface PortStepsDeps {
  readonly runId: string;
  readonly sessions: SessionRegistry;
  /** The run's CA: it issues each callback listener's certificate. */
  readonly ca: RunCa;
  readonly leases: LeaseClient;
  readonly firewall: Firewall;
  /** `none`: no rule is opened (the job's `firewall` option). */
  readonly firewallMode: FirewallMode;
  /** The agent's base port on targets (the job's `ports.agent.base`), passed on to startAgent. */
  readonly agentBasePort: number;
  /** Binds a target's callback listener (startCallbackListener). */
  readonly startListener: StartCallbackListener;
  readonly log: StepLog;
  /** An install's progress, as the agent reports it on the callback channel. */
  readonly progress: (targetId: string, componentId: string, percent: number) => void;
  /** A line of install output from the callback channel (the run holds it to a budget). */
  readonly output: (targetId: string, line: string) => void;
}

export function createPortSteps(
  deps: PortStepsDeps,
): Pick<StepImpls, "allocatePorts" | "closeFirewall" | "releaseLeases"> {
  return {
    async allocatePorts({ target }, signal) {
      const session = deps.sessions.of(target.id);
      const held = session.ports;
      const holder = { run: deps.runId, target: target.id };
      // The callback listener: its leaf names the address the target reaches this host at.
      if (held.listener === undefined) {
        const leaf = issueLeaf(deps.ca, {
          commonName: `callback-${target.id}`.slice(0, 64),
          subjectAltNames: [session.localAddress],
          usage: "server",
        });
        held.listener = await deps.startListener({
          host: session.localAddress,
          caCertPem: deps.ca.certPem,
          certPem: leaf.certPem,
          keyPem: leaf.keyPem,
          // This target's agent only, by the client leaf it calls back with (startAgent issues it).
          agentFingerprints: (fp) => fp === session.agentCallbackFingerprint,
          runId: deps.runId,
          onMessage: (message) => {
            if (message.kind === "progress" && session.installing !== undefined)
              deps.progress(target.id, session.installing, message.percent);
            else if (message.kind === "log") deps.output(target.id, message.line);
          },
          // Connections and acknowledgements are detail; refusals (warn, error) are news.
          log: (level, line) =>
            deps.log(target.id, level === "info" ? "debug" : level, `callback listener: ${line}`),
          bind: async (server) => {
            const bound = await bindLeased(deps.leases, {
              range: "callback",
              holder,
              host: session.localAddress,
              server,
              signal,
            });
            held.callbackLease = bound.lease;
            return { port: bound.lease.port, busy: bound.conflicts };
          },
        });
        held.listenerFingerprint = leaf.fingerprint256;
      }
      // The workstation's own end of the agent session: checked free by a bind, then released
      // for the connection to take.
      if (held.workstationLease === undefined) {
        const probe = await bindLeased(deps.leases, {
          range: "workstation",
          holder,
          host: "0.0.0.0",
          server: () => createServer(),
          signal,
        });
        await new Promise<void>((resolve) => probe.server.close(() => resolve()));
        held.workstationLease = probe.lease;
      }
      const callbackLease = held.callbackLease!;
      if (!session.local && deps.firewallMode !== "none" && held.firewallRule?.opened !== true) {
        const rule = { leaseId: callbackLease.leaseId, port: callbackLease.port };
        held.firewallRule = { ...rule, opened: false };
        await deps.firewall.open({ runId: deps.runId, ...rule, peer: session.remoteAddress }, { signal });
        held.firewallRule.opened = true;
      }
      return {
        leases: {
          leaseIds: [callbackLease.leaseId, held.workstationLease.leaseId],
          workstationPort: held.workstationLease.port,
          callbackPort: callbackLease.port,
          agentPort: deps.agentBasePort,
        },
      };
    },

    async closeFirewall({ target }) {
      const held = deps.sessions.find(target.id)?.ports;
      if (held?.firewallRule === undefined) return;
      const { leaseId, port } = held.firewallRule;
      await deps.firewall.close({ runId: deps.runId, leaseId, port });
      held.firewallRule = undefined;
    },

    async releaseLeases({ target, leases }) {
      const held = deps.sessions.find(target.id)?.ports;
      const ids = new Set(leases?.leaseIds ?? []);
      if (held?.callbackLease) ids.add(held.callbackLease.leaseId);
      if (held?.workstationLease) ids.add(held.workstationLease.leaseId);
      if (ids.size > 0) await deps.leases.release([...ids], { timeoutMs: 10_000 });
      await held?.listener?.close();
      if (held !== undefined) {
        held.listener = undefined;
        held.callbackLease = undefined;
        held.workstationLease = undefined;
      }
    },
  };
}
