#!/usr/bin/env node
// Entry point of the `sumac` command: the logic is in main.ts, the real step implementations of a
// run in actors/target/compose.ts.
import { createRunSteps } from "../actors/target/compose.ts";
import { main } from "./main.ts";

const code = await main(
  process.argv.slice(2),
  {
    out: (s) => void process.stdout.write(s),
    err: (s) => void process.stderr.write(s),
    isTTY: process.stdout.isTTY === true,
    columns: process.stdout.columns,
    rows: process.stdout.rows,
    env: process.env,
    onInterrupt(handler) {
      // While a run lasts, Ctrl-C cancels it (cleanup runs) instead of killing the process.
      process.on("SIGINT", handler);
      return () => void process.off("SIGINT", handler);
    },
  },
  createRunSteps,
);
process.exitCode = code;
// Everything a run opens is closed by now; should a handle still hold the event loop, do not hang
// the operator's shell (stdout and stderr are synchronous on Linux, so nothing is lost).
setTimeout(() => process.exit(code), 2_000).unref();
