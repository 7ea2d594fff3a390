/**
 * NATS servers with JetStream for tests: as a container of the test bed, or as a local
 * `nats-server` process on a free port (the engine is not needed for that one). Both wait until the
 * server answers a real client and JetStream is enabled before they return.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import { inCI } from "./engine.ts";
import { startContainer, waitUntil } from "./container.ts";

export interface NatsServer {
  /** `nats://127.0.0.1:PORT` */
  url: string;
  port: number;
  startedInMs: number;
  /** Stops the server (and, for a local process, keeps its store for `restart`). */
  stop(): Promise<void>;
}

export interface LocalNatsServer extends NatsServer {
  /** The JetStream store directory; removed by `dispose`. */
  storeDir: string;
  /** Stops and starts the same server again on the same port and store. */
  restart(): Promise<void>;
  /** Stops the server and removes its store. */
  dispose(): Promise<void>;
}

const binary = process.env.SUMAC_NATS_SERVER ?? "nats-server";

/** Waits until a client connects and JetStream answers account info. */
async function waitForJetStream(url: string, timeoutMs: number): Promise<void> {
  await waitUntil(
    `nats-server at ${url}`,
    async () => {
      const nc = await connect({ servers: url, timeout: 2_000, reconnect: false });
      try {
        const jsm = await jetstreamManager(nc, { timeout: 2_000 });
        await jsm.getAccountInfo();
      } finally {
        await nc.close();
      }
    },
    timeoutMs,
  );
}

/** Starts the `nats` test bed image; the caller stops it. */
export async function startNatsContainer(): Promise<NatsServer> {
  const t0 = performance.now();
  const c = await startContainer({ fixture: "nats", image: "nats", ports: [4222] });
  const port = c.container.getMappedPort(4222);
  const url = `nats://127.0.0.1:${port}`;
  try {
    await waitForJetStream(url, 30_000);
  } catch (err) {
    return c.failStart(err);
  }
  return {
    url,
    port,
    startedInMs: performance.now() - t0,
    stop: c.stop,
  };
}

/**
 * The reason to skip tests that need a local `nats-server`, or undefined when one is on PATH.
 * In CI a missing binary is an error.
 */
export async function natsBinarySkipReason(): Promise<string | undefined> {
  const found = await new Promise<boolean>((resolve) => {
    const p = spawn(binary, ["--version"], { stdio: "ignore", timeout: 10_000 });
    p.on("error", () => resolve(false));
    p.on("exit", (code) => resolve(code === 0));
  });
  if (found) return undefined;
  const why = `no '${binary}' binary found; install Debian's nats-server (apt-get install nats-server)`;
  if (inCI()) throw new Error(`NATS tests cannot run in CI: ${why}`);
  return why;
}

/** Runs nats-server once and resolves with its process and client port, read from its ports file. */
async function launch(storeDir: string, port: number): Promise<{ proc: ChildProcess; port: number }> {
  const portsDir = await mkdtemp(join(tmpdir(), "sumac-nats-ports-"));
  const args = ["--jetstream", "--store_dir", storeDir, "--addr", "127.0.0.1", "--port", String(port)];
  const proc = spawn(binary, [...args, "--ports_file_dir", portsDir], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  proc.stderr?.on("data", (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4_000);
  });
  const exited = new Promise<never>((_, reject) => {
    proc.once("error", reject);
    proc.once("exit", (code) => reject(new Error(`nats-server exited early (${code}): ${stderr.trim()}`)));
  });
  const portsFile = async (): Promise<number> => {
    const name = (await readdir(portsDir)).find((f) => f.endsWith(".ports"));
    if (!name) throw new Error("no ports file yet");
    const info = JSON.parse(await readFile(join(portsDir, name), "utf8")) as { nats?: string[] };
    const m = /:(\d+)$/.exec(info.nats?.[0] ?? "");
    if (!m?.[1]) throw new Error(`ports file without a client port: ${JSON.stringify(info)}`);
    return Number(m[1]);
  };
  try {
    let found = 0;
    await Promise.race([
      waitUntil("nats-server ports file", async () => (found = await portsFile()), 15_000, 25),
      exited,
    ]);
    return { proc, port: found };
  } catch (err) {
    proc.kill("SIGKILL");
    throw err;
  } finally {
    exited.catch(() => undefined);
    await rm(portsDir, { recursive: true, force: true });
  }
}

async function kill(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const gone = new Promise<void>((resolve) => proc.once("exit", () => resolve()));
  proc.kill("SIGTERM");
  const timer = setTimeout(() => proc.kill("SIGKILL"), 5_000);
  await gone;
  clearTimeout(timer);
}

/** Starts a local nats-server with JetStream on a free loopback port and a fresh store. */
export async function startNatsProcess(): Promise<LocalNatsServer> {
  const t0 = performance.now();
  const storeDir = await mkdtemp(join(tmpdir(), "sumac-nats-store-"));
  const first = await launch(storeDir, -1);
  let proc = first.proc;
  const port = first.port;
  const url = `nats://127.0.0.1:${port}`;
  await waitForJetStream(url, 15_000);
  const server: LocalNatsServer = {
    url,
    port,
    storeDir,
    startedInMs: performance.now() - t0,
    stop: () => kill(proc),
    restart: async () => {
      await kill(proc);
      ({ proc } = await launch(storeDir, port));
      await waitForJetStream(url, 15_000);
    },
    dispose: async () => {
      await kill(proc);
      await rm(storeDir, { recursive: true, force: true });
    },
  };
  return server;
}
