/**
 * Whether tests that use network namespaces and nft can run here: they need root, `ip` and `nft`.
 * Elsewhere they skip with the reason; in CI they fail (the engine policy of `engine.ts`).
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { inCI } from "./engine.ts";

const run = promisify(execFile);

/** Undefined when namespaces and nft are usable; else why not. Throws in CI, naming `what`. */
export async function netnsSkipReason(what: string): Promise<string | undefined> {
  let why: string | undefined;
  if (process.getuid?.() !== 0) why = "network namespaces need root";
  else {
    for (const [tool, flag, pkg] of [
      ["ip", "-V", "iproute2"],
      ["nft", "--version", "nftables"],
    ] as const) {
      try {
        await run(tool, [flag], { timeout: 5_000 });
      } catch {
        why = `no \`${tool}\` on PATH (Debian: apt-get install ${pkg})`;
        break;
      }
    }
  }
  if (why !== undefined && inCI()) throw new Error(`${what} cannot run in CI: ${why}`);
  return why;
}
