/**
 * This machine itself (`host: local`, HP SUM's local deployment), composed in one place: the shell
 * and file channel are this machine's processes and files (actors/local), under a run root of its
 * own; the agent's files are the POSIX push; the agent is a local process, stopped by signals. No
 * firewall rule is opened: the agent listens on loopback.
 */
import { LocalSession, localRoots } from "../../local/session.ts";
import { localAgentLauncher } from "../posix/agent-process.ts";
import { cleanPosixTarget } from "../posix/clean.ts";
import { posixAgentFiles, type PosixFilesDeps } from "../posix/agent-files.ts";
import type { LocalAccess, StepLog, TargetTransport } from "../transport.ts";

export interface LocalTransportDeps {
  /** Run root; default {@link localRoots}. */
  readonly runRoot?: string;
  /** Where the default run root is read from (`XDG_STATE_HOME`); default `process.env`. */
  readonly env?: NodeJS.ProcessEnv;
  /** The agent's files here. */
  readonly agentFiles: PosixFilesDeps;
  readonly log: StepLog;
}

export function localTransport(deps: LocalTransportDeps): TargetTransport<LocalAccess> {
  return {
    open() {
      const local = new LocalSession(deps.runRoot ?? localRoots(deps.env ?? process.env).runRoot);
      return Promise.resolve({
        shell: local,
        files: local,
        remoteAddress: "127.0.0.1",
        localAddress: "127.0.0.1",
        local: true,
        description: `using this machine (run root ${local.runRoot})`,
      });
    },
    files: posixAgentFiles(deps.agentFiles),
    launcher: localAgentLauncher(deps.log),
    clean: (connection, _targetId, signal) => cleanPosixTarget(connection, signal),
  };
}
