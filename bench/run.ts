/**
 * Runs one benchmark of this folder: `npm run bench -- NAME [args]`, e.g. `npm run bench -- fixtures 5`.
 * Without a name it lists them. Benchmarks print figures; nothing here asserts a time.
 */
import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { fileURLToPath } from "node:url";

const dir = fileURLToPath(new URL(".", import.meta.url));
const helpers = new Set(["run.ts", "stats.ts"]);
const names = readdirSync(dir)
  .filter((f) => f.endsWith(".ts") && !helpers.has(f))
  .map((f) => f.slice(0, -3))
  .sort();

const [name, ...args] = process.argv.slice(2);
if (name === undefined || !names.includes(name)) {
  if (name !== undefined) console.error(`bench: no benchmark '${name}'`);
  console.error(`usage: npm run bench -- NAME [args]\nbenchmarks: ${names.join(", ")}`);
  process.exit(name === undefined ? 0 : 2);
}
const r = spawnSync(process.execPath, [`${dir}${name}.ts`, ...args], { stdio: "inherit" });
process.exit(r.status ?? 1);
