#!/usr/bin/env node
// Entry point of the `sumac` command: the logic is in main.ts.
import { main } from "./main.ts";

process.exitCode = await main(
  process.argv.slice(2),
  (s) => process.stdout.write(s),
  (s) => process.stderr.write(s),
);
