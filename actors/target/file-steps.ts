/**
 * The steps `pushAgent` and `removeFiles`: the agent's files on the target, put there and taken
 * away by the target's transport (posix/agent-files.ts for SSH and this machine). removeFiles runs
 * whether or not the push completed, and again is no error; it never removes files from under an
 * agent that still runs (stopAgent did not get it to end): it fails instead, and its next attempt
 * looks again. See docs/target-steps.md.
 */
import { AgentStillRunningError } from "./errors.ts";
import type { SessionRegistry } from "./session.ts";
import type { StepImpls } from "./steps.ts";
import { exitWithin } from "./transport.ts";

/** How long removeFiles waits for an agent still known to run before it fails. */
const AGENT_GONE_MS = 5_000;

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
      const agent = session.agent;
      if (agent !== undefined) {
        if ((await exitWithin(agent, AGENT_GONE_MS, signal)) === undefined)
          throw new AgentStillRunningError(
            `${target.id}: the agent has not ended: its files on the target are left in place`,
          );
        session.agent = undefined;
      }
      await session.transport.files.remove(session, runId, signal);
      delete session.pushed;
    },
  };
}
