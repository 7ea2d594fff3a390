import { hostname, platform, arch, release } from "node:os";
import type { OperationContext, OperationHandler } from "./context.ts";

/** Hello: who and where the agent is, and the facts of this session, for the workstation to check. */
export function helloOperation(context: OperationContext): OperationHandler {
  const { settings } = context;
  return (_args, facts) =>
    Promise.resolve({
      agentVersion: settings.agentVersion,
      os: platform(),
      osRelease: release(),
      arch: arch(),
      hostname: hostname(),
      nodeVersion: process.version,
      pid: process.pid,
      sessionId: facts.sessionId,
      port: facts.port,
      stagingDir: settings.stagingDir,
      runId: settings.runId,
      targetId: settings.targetId,
    });
}
