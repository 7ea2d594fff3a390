/**
 * Removes every container that sumac's tests started and did not stop (by the `sumac.test` label).
 * Run as `npm run targets:sweep`; .ci/run runs it before and after the tests.
 */
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { TEST_LABEL } from "./engine.ts";

const run = promisify(execFile);

/** Removes labelled test containers and returns their ids. */
export async function sweepContainers(): Promise<string[]> {
  const { stdout } = await run("docker", ["ps", "-aq", "--filter", `label=${TEST_LABEL}=1`], {
    timeout: 30_000,
  });
  const ids = stdout.split("\n").filter(Boolean);
  if (ids.length > 0) await run("docker", ["rm", "-f", "-v", ...ids], { timeout: 120_000 });
  return ids;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const ids = await sweepContainers();
  console.log(
    ids.length === 0 ? "sweep: no test containers left" : `sweep: removed ${ids.length} test container(s)`,
  );
}
