/**
 * Starting a test bed container: the image is built on demand, the container is labelled for the
 * sweep, and a readiness check that really talks to the service decides when it is up.
 */
import { ensureImage, testLabels, type ImageName } from "./engine.ts";
import { GenericContainer, type StartedTestContainer } from "./testcontainers.ts";

export interface ContainerSpec {
  /** Fixture name, recorded in a label so leftovers can be traced to the test that made them. */
  fixture: string;
  image: ImageName;
  /** TCP ports to publish on loopback; `"137/udp"` style strings publish UDP ports. */
  ports?: (number | `${number}/${"tcp" | "udp"}`)[];
  env?: Record<string, string>;
  /** Linux capabilities to add (e.g. NET_ADMIN for nftables inside the container). */
  capAdd?: string[];
  /** How long the container may take to be running (default 60 s). */
  startupTimeoutMs?: number;
}

/** Starts a container of the test bed; the caller stops it (`await c.stop()`) in an `after` hook. */
export async function startContainer(spec: ContainerSpec): Promise<StartedTestContainer> {
  const tag = await ensureImage(spec.image);
  let c = new GenericContainer(tag)
    .withLabels(testLabels(spec.fixture))
    .withStartupTimeout(spec.startupTimeoutMs ?? 60_000);
  if (spec.ports?.length) c = c.withExposedPorts(...spec.ports);
  if (spec.env) c = c.withEnvironment(spec.env);
  if (spec.capAdd?.length) c = c.withAddedCapabilities(...spec.capAdd);
  return c.start();
}

/**
 * Polls `check` until it resolves, or fails after `timeoutMs` with the last error as the cause.
 * Used for readiness: a published port accepting TCP is not a server that answers.
 */
export async function waitUntil(
  what: string,
  check: (signal: AbortSignal) => Promise<unknown>,
  timeoutMs = 30_000,
  intervalMs = 100,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    const attempt = AbortSignal.timeout(Math.max(1, Math.min(5_000, deadline - Date.now())));
    try {
      await check(attempt);
      return;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  throw new Error(`${what} did not become ready within ${timeoutMs} ms`, { cause: last });
}

/** The container's address on the engine's bridge network (for UDP and NetBIOS tests). */
export async function containerAddress(c: StartedTestContainer): Promise<string> {
  const ip = c.getIpAddress(c.getNetworkNames()[0] ?? "bridge");
  if (!ip) throw new Error(`container ${c.getId().slice(0, 12)} has no bridge address`);
  return Promise.resolve(ip);
}
