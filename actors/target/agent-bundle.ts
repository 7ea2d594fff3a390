/**
 * The agent bundle of a run: built once by agent/build.ts (one `.js` file named by its hash) into
 * the workstation's state directory, and shared by every target's push. A failed build is not
 * kept, so a later target tries again.
 */
import { buildAgent, type BuiltAgent } from "../../agent/build.ts";

export type { BuiltAgent };

/**
 * A function giving the run's bundle, building it on first call into `outDir`
 * (`<stateDir>/cache/agent` in a run).
 *
 * @example
 * const bundle = agentBundleOnce({ outDir: join(stateDir, "cache", "agent") });
 * const { path, sha256 } = await bundle();
 */
export function agentBundleOnce(options: { outDir: string; entry?: string }): () => Promise<BuiltAgent> {
  let built: Promise<BuiltAgent> | undefined;
  return () => {
    built ??= buildAgent({
      outDir: options.outDir,
      ...(options.entry === undefined ? {} : { entry: options.entry }),
    });
    built.catch(() => (built = undefined));
    return built;
  };
}
