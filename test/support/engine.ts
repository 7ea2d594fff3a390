/**
 * Access to the container engine for tests: whether one answers, the policy when it does not
 * (fail in CI, skip elsewhere with the reason), the labels every test container carries, and the
 * images of the test bed, built on demand from `test/targets/`.
 */
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const run = promisify(execFile);

/** Label carried by every container the tests start; `npm run targets:sweep` removes by it. */
export const TEST_LABEL = "sumac.test";

/** The images of the test bed (see `images=` in test/targets/engine.sh). */
export type ImageName = "linux-target" | "linux-target-node" | "windows-standin" | "scm-peer" | "nats";

const engineScript = fileURLToPath(new URL("../targets/engine.sh", import.meta.url));

/** Raised in CI when a container test cannot run: there it must fail, never skip. */
export class EngineUnavailableError extends Error {
  readonly code = "ENGINE_UNAVAILABLE";
  override readonly name = "EngineUnavailableError";
}

/** True when running under CI (the `CI` variable set to anything but empty, 0 or false). */
export function inCI(): boolean {
  const v = process.env.CI ?? "";
  return v !== "" && v !== "0" && v.toLowerCase() !== "false";
}

let probe: Promise<string | undefined> | undefined;

/** Resolves to undefined when `docker info` answers within 10 s, otherwise to why not. */
function probeEngine(): Promise<string | undefined> {
  probe ??= run("docker", ["info", "--format", "{{.ServerVersion}}"], { timeout: 10_000 }).then(
    () => undefined,
    (err: NodeJS.ErrnoException & { stderr?: string }) =>
      err.code === "ENOENT"
        ? "no docker client on PATH"
        : `no container engine answers (${(err.stderr ?? err.message).trim().split("\n")[0]})`,
  );
  return probe;
}

/**
 * The reason to skip container tests, or undefined when they can run. In CI a missing engine is
 * an error, thrown here so that the test file fails.
 *
 * @example
 * const skip = await containerSkipReason();
 * describe("linux-target - fixture", { skip }, () => { ... });
 */
export async function containerSkipReason(): Promise<string | undefined> {
  const why = await probeEngine();
  if (why === undefined) return undefined;
  const advice =
    "run `npm run targets` (installs Debian's docker.io, starts dockerd, builds the test images)";
  if (inCI()) throw new EngineUnavailableError(`container tests cannot run in CI: ${why}; ${advice}`);
  return `${why}; ${advice}`;
}

const built = new Map<ImageName, Promise<string>>();

/**
 * The tag of a test bed image, building it first when the engine does not have it. A rebuild after
 * a Dockerfile change is `npm run targets` (the layer cache makes unchanged images instant).
 */
export function ensureImage(name: ImageName): Promise<string> {
  let p = built.get(name);
  if (!p) {
    const tag = `sumac/${name}:latest`;
    p = run("docker", ["image", "inspect", "--format", "{{.Id}}", tag], { timeout: 30_000 })
      .catch(() => run("bash", [engineScript, "build", name], { timeout: 15 * 60_000 }))
      .then(() => tag);
    built.set(name, p);
  }
  return p;
}

/** Labels for a container started by a test: the sweep label and the process that started it. */
export function testLabels(fixture: string): Record<string, string> {
  return {
    [TEST_LABEL]: "1",
    [`${TEST_LABEL}.fixture`]: fixture,
    [`${TEST_LABEL}.pid`]: String(process.pid),
  };
}
