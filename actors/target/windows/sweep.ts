/**
 * The sweep of what an earlier run left on a Windows target: its services. sumac deletes its
 * agent's service as soon as the agent has started, so a `sumac-*` service is left only by a
 * workstation that died in those seconds. At the start of every run on a target (and by
 * `sumac clean`), every service named `sumac-<run>-<n>` of another run whose binary path carries
 * that run's marker is deleted if it is stopped (its launcher ended: nothing of it runs), and
 * reported; one still starting is another workstation's start in progress, reported and left; a
 * `sumac-*` service without the marker is not sumac's, reported and left.
 */
import { ServiceState } from "../../scmr/constants.ts";
import type { ScmCallOptions } from "../../scmr/client.ts";
import { oneLine } from "../../../base/text.ts";
import { runOfServiceName, SERVICE_PREFIX } from "./commands.ts";
import { isWin32, type ServiceControl } from "./service-control.ts";
import { Win32Error } from "../../scmr/win32-errors.ts";

/** What the sweep found and did, one entry per `sumac-*` service. */
export interface SweptService {
  readonly name: string;
  readonly run: string | undefined;
  /** `deleted` (or `marked`: Windows deletes it when its last handle closes), or why it was left. */
  readonly outcome: "deleted" | "marked" | "running" | "not-sumac" | "current-run";
}

/**
 * The binary path names the run: the agent service's marker or run directory, or the kill
 * service's firewall rule (`name=sumac run=<run> target=`).
 */
function carriesMarker(binaryPath: string, run: string): boolean {
  return (
    binaryPath.includes(`sumac-run=${run}:`) ||
    binaryPath.includes(`\\${run}"`) ||
    binaryPath.includes(`"name=sumac run=${run} target=`)
  );
}

/** A sweep looks at this many `sumac-*` services at most (each costs a few calls). */
const MAX_SWEPT = 256;

/** Sweeps the services of runs other than `currentRun` (none: every run's). */
export async function sweepServices(
  control: ServiceControl,
  currentRun: string | undefined,
  options: ScmCallOptions,
): Promise<SweptService[]> {
  const found = await control.scm.enumServices({}, options);
  const swept: SweptService[] = [];
  for (const service of found
    .filter((s) => s.name.toLowerCase().startsWith(SERVICE_PREFIX))
    .slice(0, MAX_SWEPT)) {
    const run = runOfServiceName(service.name);
    if (run === undefined) {
      swept.push({ name: service.name, run, outcome: "not-sumac" });
      continue;
    }
    if (run === currentRun) {
      swept.push({ name: service.name, run, outcome: "current-run" });
      continue;
    }
    let handle: Buffer;
    try {
      handle = await control.scm.openService(service.name, options);
    } catch (error) {
      // Gone since the listing (another workstation's start, a few seconds long): nothing to do.
      if (isWin32(error, Win32Error.ERROR_SERVICE_DOES_NOT_EXIST)) continue;
      throw error;
    }
    let binaryPath: string;
    try {
      binaryPath = (await control.scm.queryConfig(handle, options)).binaryPath ?? "";
    } finally {
      await control.scm.closeHandle(handle, options).catch(() => undefined);
    }
    if (!carriesMarker(binaryPath, run)) {
      swept.push({ name: service.name, run, outcome: "not-sumac" });
      continue;
    }
    if (service.status.currentState !== ServiceState.STOPPED) {
      swept.push({ name: service.name, run, outcome: "running" });
      continue;
    }
    const removal = await control.remove(service.name, options);
    if (removal !== "absent") swept.push({ name: service.name, run, outcome: removal });
  }
  return swept;
}

/** One line per swept service for the target's log (none when there was nothing). */
export function describeSweep(swept: readonly SweptService[]): { level: "info" | "warn"; line: string }[] {
  return swept
    .filter((s) => s.outcome !== "current-run")
    .map(({ outcome, run, name: raw }) => {
      // The server's own words: one line, escaped, capped.
      const s = { outcome, run, name: oneLine(raw, 300) };
      switch (s.outcome) {
        case "deleted":
        case "marked":
          return {
            level: "warn" as const,
            line: `swept service ${s.name}, left by run ${s.run ?? "?"} (a workstation that stopped during its agent's start): ${s.outcome}`,
          };
        case "running":
          return {
            level: "warn" as const,
            line: `service ${s.name} of run ${s.run ?? "?"} is starting (another workstation's run?): left alone`,
          };
        default:
          return {
            level: "info" as const,
            line: `service ${s.name} is named like sumac's but its binary path is not a sumac agent's: left alone`,
          };
      }
    });
}
