/**
 * The steps `pushAgent` and `removeFiles`: the agent's files on the target, put there and taken
 * away by the target's transport (posix/agent-files.ts for SSH and this machine). removeFiles runs
 * whether or not the push completed, and again is no error. See docs/target-steps.md.
 */
import type { SessionRegistry } from "./session.ts";
import type { StepImpls } from "./steps.ts";

export function createFileSteps(deps: {
  readonly sessions: SessionRegistry;
}): Pick<StepImpls, "pushAgent" | "removeFiles"> {
  return {
    async pushAgent({ runId, target, sessionId }, signal) {
      const session = deps.sessions.get(sessionId, target.id);
      session.pushed = await session.transport.files.push(session, runId, signal);
      return { agentDir: session.pushed.runDir };
    },

    async removeFiles({ runId, target }, signal) {
      const session = deps.sessions.find(target.id);
      if (session === undefined) return;
      await session.transport.files.remove(session, runId, signal);
      delete session.pushed;
    },
  };
}
