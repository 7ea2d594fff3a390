#!/usr/bin/env node
// Entry point of the `sumac` command: the logic is in main.ts, the real step implementations of a
// run in run/compose.ts.
import { mkdirSync, statSync } from "node:fs";
import { enableCompileCache } from "node:module";
import { homedir } from "node:os";
import { join } from "node:path";
import type { StepsFactory } from "../run/types.ts";
import type { CleanFactory } from "./clean.ts";

/**
 * Node's compile cache (compiled code of sumac's modules, TypeScript already stripped), in a
 * directory of this user's only: it took 0.4 to 0.5 s off each start (2.3 s down to 1.8 s for
 * `sumac inventory` of the quick start). Not in the shared temp directory, Node's default, where
 * another account could plant code. `NODE_DISABLE_COMPILE_CACHE=1` turns it off.
 */
function compileCache(): void {
  try {
    const base = process.env.XDG_CACHE_HOME?.startsWith("/")
      ? process.env.XDG_CACHE_HOME
      : join(homedir(), ".cache");
    const dir = join(base, "sumac", "compile-cache");
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const st = statSync(dir);
    if (st.uid !== process.getuid?.() || (st.mode & 0o077) !== 0) return;
    enableCompileCache(dir);
  } catch {
    // A cache is an optimisation: without one, sumac starts as it would anyway.
  }
}

compileCache();
// Loaded after the cache is on: static imports would be compiled before it. The steps (SSH, SMB,
// the agent's client, certificates) only when a run starts: `--help` and a job file's errors are
// answered without them.
const { main } = await import("./main.ts");
const { NATS_SECRET_ENV } = await import("./args.ts");
// The run reads its NATS secrets from this copy; the processes it starts (ssh, a local target's
// commands) get the environment without them.
const env = { ...process.env };
for (const name of NATS_SECRET_ENV) delete process.env[name];
const createRunSteps: StepsFactory = async (run) => (await import("../run/compose.ts")).createRunSteps(run);
const cleanJob: CleanFactory = async (job, options) =>
  (await import("../run/clean.ts")).cleanJob(job, options);

const code = await main(
  process.argv.slice(2),
  {
    out: (s) => void process.stdout.write(s),
    err: (s) => void process.stderr.write(s),
    isTTY: process.stdout.isTTY === true,
    columns: process.stdout.columns,
    rows: process.stdout.rows,
    env,
    onInterrupt(handler) {
      // While a run lasts, Ctrl-C cancels it (cleanup runs) instead of killing the process.
      process.on("SIGINT", handler);
      return () => void process.off("SIGINT", handler);
    },
  },
  createRunSteps,
  cleanJob,
);
process.exitCode = code;
// Everything a run opens is closed by now; should a handle still hold the event loop, do not hang
// the operator's shell (stdout and stderr are synchronous on Linux, so nothing is lost).
setTimeout(() => process.exit(code), 2_000).unref();
