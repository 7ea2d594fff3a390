/**
 * Removing the agent from its target (on Shutdown and on idle): its program files and its staging
 * directory go, its log stays. A path to remove that holds the log is skipped and reported rather
 * than removed: the log is the record of the run, and a config mistake must not erase it.
 */
import { rm } from "node:fs/promises";
import { relative, resolve, isAbsolute } from "node:path";
import type { AgentLog } from "./agent-log.ts";

/**
 * Removes each of `paths` (recursively, missing ones are fine), logging each; never throws.
 * Resolves to whether every one is gone.
 */
export async function removeAgentFiles(paths: readonly string[], log: AgentLog): Promise<boolean> {
  let all = true;
  for (const path of paths) {
    const absolute = resolve(path);
    if (contains(absolute, log.path)) {
      log.write("warn", `removal: kept ${absolute}, it holds the log ${log.path}`);
      all = false;
      continue;
    }
    try {
      await rm(absolute, { recursive: true, force: true, maxRetries: 3 });
      log.write("info", `removal: removed ${absolute}`);
    } catch (error) {
      all = false;
      log.write("error", `removal: could not remove ${absolute}: ${(error as Error).message}`);
    }
  }
  return all;
}

function contains(dir: string, path: string): boolean {
  const rel = relative(dir, path);
  return rel === "" || (!rel.startsWith("..") && !isAbsolute(rel));
}
