/**
 * The steps of the exchange with a target's agent: `hello` (the TLS session, from the leased
 * workstation port, the agent's certificate pinned), `inventory` (component files staged first,
 * then the detect commands), `stage` (each staged file checked by the agent), `install` (one
 * component) and `logs` (the agent's log files copied here). Transport-independent: the agent is
 * reached by its address, files go through the session's file channel. Every call takes the step's
 * signal and waits as long as the agent allows the operation; a step that finds the session lost
 * opens a new one (agent-link.ts). See docs/target-steps.md.
 */
import { writeFile } from "node:fs/promises";
import { basename, join } from "node:path";
import type { RunCa } from "../../agent/client/credentials.ts";
import type { LeaseClient } from "../lease/client.ts";
import type { ConnectAgent } from "./agent-session.ts";
import { liveClient, openAgentSession } from "./agent-link.ts";
import { AgentFaultError } from "../../agent/protocol/errors.ts";
import { AgentStateError, ComponentFailedError } from "./errors.ts";
import type { SessionRegistry, TargetSession } from "./session.ts";
import type { StepImpls } from "./steps.ts";
import type { StepLog } from "./transport.ts";
import { oneLine, printableLines } from "../../base/text.ts";

/** A component as the exchange needs it (the job's components are these). */
export interface ExchangeComponent {
  readonly id: string;
  readonly version: string;
  /** Files staged for it: read from `source` here, put as `name` in the staging directory there. */
  readonly files: readonly { readonly source: string; readonly name: string }[];
  /** Prints the installed version and exits 0, or exits `absentExitCode` when absent. */
  readonly detect: string;
  readonly absentExitCode: number;
  readonly install: string;
  /** A reboot is needed once it is installed. */
  readonly reboot: boolean;
  /** The install's own deadline; default 30 minutes. */
  readonly timeoutMs?: number;
}

export interface ExchangeStepsDeps {
  readonly runId: string;
  readonly sessions: SessionRegistry;
  /** The run's CA certificate, which the agent's certificate must chain to. */
  readonly ca: Pick<RunCa, "certPem">;
  /** The workstation's client leaf for agent sessions, and its key. */
  readonly client: { readonly certPem: string; readonly keyPem: string };
  /** Opens a session with an agent (AgentClient.connect). */
  readonly connectAgent: ConnectAgent;
  /** Where a workstation port found taken is reported, for the next one. */
  readonly leases: Pick<LeaseClient, "reportConflict">;
  readonly components: ReadonlyMap<string, ExchangeComponent>;
  /** Where a target's logs are copied on this machine (created by the call). */
  readonly logDir: (targetId: string) => Promise<string>;
  readonly log: StepLog;
  /** An install's progress, 0 and 100 here (the agent's own on the callback channel). */
  readonly progress: (targetId: string, componentId: string, percent: number) => void;
}

/** A target's clock this far from ours is mentioned when hello succeeds. */
const CLOCK_NOTE_MS = 5_000;
/** An install's deadline when its component names none. */
const INSTALL_MS = 30 * 60_000;

export function createExchangeSteps(
  deps: ExchangeStepsDeps,
): Pick<StepImpls, "hello" | "inventory" | "stage" | "install" | "logs"> {
  const componentOf = (id: string): ExchangeComponent => {
    const component = deps.components.get(id);
    if (component === undefined) throw new AgentStateError(`no component ${id} in the job`);
    return component;
  };

  /** Puts a component's files into the staging directory; returns what Stage must check. */
  async function uploadFiles(
    session: TargetSession,
    component: ExchangeComponent,
    signal: AbortSignal,
  ): Promise<{ name: string; size: number; sha256: string }[]> {
    const stagingDir = session.pushed?.stagingDir;
    if (stagingDir === undefined) throw new AgentStateError(`${session.targetId}: no staging directory`);
    const staged = [];
    for (const file of component.files) {
      // Stage checks each file's SHA-256 on the target: no check of its own after the upload.
      const put = await session.files.put(file.source, `${stagingDir}/${file.name}`, {
        mode: 0o644,
        signal,
        checkOnTarget: false,
      });
      staged.push({ name: file.name, size: put.bytes, sha256: put.sha256 });
    }
    return staged;
  }

  return {
    async hello({ target, agentPort }, signal) {
      const session = deps.sessions.of(target.id);
      const client = await openAgentSession(deps, session, agentPort, signal);
      const hello = await client.call("Hello", {}, { signal });
      // Measured on Hello's answer: the two clocks need not agree (message timestamps are judged
      // against this offset), but a target far off is worth a line.
      const offset = client.clockOffsetMs;
      const skew =
        offset !== undefined && Math.abs(offset) >= CLOCK_NOTE_MS
          ? `, its clock ${Math.round(Math.abs(offset) / 1000)} s ${offset > 0 ? "ahead of" : "behind"} this workstation's`
          : "";
      // What the agent says of itself is its target's word: one line, escaped (each field was cut
      // to 256 characters when its answer was read; escaped it may be four times as long).
      const said = (field: string) => oneLine(field, 2048);
      deps.log(
        target.id,
        "info",
        `agent ${said(hello.agentVersion)} on ${said(hello.hostname)} (${said(hello.os)} ${said(hello.arch)}, Node ${said(hello.nodeVersion)})${skew}`,
      );
      return { agentVersion: hello.agentVersion };
    },

    async inventory({ target, componentIds }, signal) {
      const session = deps.sessions.of(target.id);
      // The component files go first, so that detect commands can use them (they run in the
      // staging directory, as installs do).
      const uploaded = new Map<string, { name: string; size: number; sha256: string }[]>();
      await Promise.all(
        componentIds.map(async (id) => uploaded.set(id, await uploadFiles(session, componentOf(id), signal))),
      );
      session.uploaded = uploaded;
      const client = await liveClient(session, signal);
      const result = await client.call(
        "Inventory",
        {
          component: componentIds.map((id) => {
            const c = componentOf(id);
            return { id, detectCommand: c.detect, absentExitCode: c.absentExitCode };
          }),
        },
        { signal },
      );
      const installed: Record<string, string | null> = {};
      // Only the components asked about, each once: an agent answering more is not heard on them.
      const asked = new Set(componentIds);
      for (const c of result.components) {
        if (!asked.delete(c.id)) continue;
        if (c.status === "failed")
          deps.log(
            target.id,
            "warn",
            `detect of ${oneLine(c.id, 256)} exited ${c.exitCode}: taken as not installed`,
          );
        installed[c.id] = c.status === "installed" ? c.version : null;
      }
      return { installed };
    },

    async stage({ target, components }, signal) {
      const session = deps.sessions.of(target.id);
      await liveClient(session, signal);
      let files = 0;
      let bytes = 0;
      for (const spec of components) {
        // Put there by inventory already (same run, same session); otherwise put them now.
        const toStage =
          session.uploaded?.get(spec.id) ?? (await uploadFiles(session, componentOf(spec.id), signal));
        for (const staged of toStage) {
          const client = await liveClient(session, signal);
          const answer = await client.call("Stage", staged, { signal });
          files++;
          bytes += answer.size;
        }
      }
      return { files, bytes };
    },

    async install({ target, component: spec }, signal) {
      const session = deps.sessions.of(target.id);
      const component = componentOf(spec.id);
      const client = await liveClient(session, signal);
      const timeoutMs = component.timeoutMs ?? INSTALL_MS;
      session.installing = spec.id;
      deps.progress(target.id, spec.id, 0);
      try {
        // Abandoned (a forced cancel), the call closes its session; stopAgent opens a new one to
        // have the agent stop this install.
        const result = await client
          .call("Install", { componentId: spec.id, command: component.install, timeoutMs }, { signal })
          .catch((error: unknown) => {
            // No answer (abandoned, or the connection lost): the install may still run there.
            if (!(error instanceof AgentFaultError)) session.installAbandoned = spec.id;
            throw error;
          });
        session.installAbandoned = undefined;
        if (result.exitCode !== 0)
          throw new ComponentFailedError(
            `${spec.id} ${spec.version}: the install command exited ${result.exitCode} (see the target's log)`,
          );
        deps.progress(target.id, spec.id, 100);
        return { rebootNeeded: component.reboot || result.rebootRequired };
      } finally {
        session.installing = undefined;
      }
    },

    async logs({ target }, signal) {
      const client = await liveClient(deps.sessions.of(target.id), signal);
      const result = await client.call("Logs", {}, { signal });
      const dir = await deps.logDir(target.id);
      let bytes = 0;
      for (const file of result.files) {
        // Escaped line by line: an operator will read these files on a terminal.
        const text = printableLines(file.content.toString("utf8"));
        await writeFile(join(dir, basename(file.name)), text, { mode: 0o600 });
        bytes += file.content.byteLength;
      }
      return { location: dir, files: result.files.length, bytes };
    },
  };
}
