/**
 * The agent's side of its start-up dialogue (agent/protocol/start-up.ts), whatever carries it:
 * stdin and stdout on Linux (dialogue-stdio.ts), files beside the bundle on Windows
 * (dialogue-files.ts). main.ts runs the one sequence over either.
 */
import type { AgentEvent } from "../protocol/start-up.ts";

/** How the agent talks with the workstation during its start-up, and after it. */
export interface DialogueChannel {
  /** The config document, parsed from JSON but not yet checked (config.ts checks it). */
  readConfig(): Promise<unknown>;
  /**
   * Says `event` to the workstation. Never throws for a workstation that is gone (a closed pipe):
   * the agent must still remove its files and its rule.
   */
  send(event: AgentEvent): void;
  /** The certificate document (`CertificateLine`), parsed from JSON but not yet checked. */
  readCertificate(): Promise<unknown>;
}

/** Which channel: the workstation says `--dialogue=files` after the bundle; stdio without it. */
export type DialogueMode = "stdio" | "files";

/**
 * The mode named by the agent's arguments (those after the bundle; the run's marker among them
 * is ignored). Throws on a `--dialogue=` that names no mode: talking on the wrong channel would
 * leave the workstation waiting.
 */
export function dialogueModeOf(args: readonly string[]): DialogueMode {
  let mode: DialogueMode = "stdio";
  for (const arg of args) {
    if (!arg.startsWith("--dialogue=")) continue;
    const value = arg.slice("--dialogue=".length);
    if (value !== "stdio" && value !== "files")
      throw new Error(`--dialogue must be stdio or files, not ${JSON.stringify(value)}`);
    mode = value;
  }
  return mode;
}
