/**
 * Test support for the port-lease tests: a Bus for unit tests (the real in-process adapter when
 * `bus/memory.ts` exists, else a small stand-in with the same request/reply and KV behaviour), and
 * the child processes the integration tests spawn, run as
 * `node test/support/lease-fixtures.ts ROLE ARGS` (see `roles` below). Each child prints one JSON
 * line per report on stdout.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { createInterface } from "node:readline";
import { existsSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { fileURLToPath } from "node:url";
import {
  BusError,
  type Bus,
  type BusMessage,
  type KvEntry,
  type KvStore,
  type Subscription,
} from "../../bus/bus.ts";
import { bindLeased } from "../../actors/lease/bind.ts";
import { createLeaseClient } from "../../actors/lease/client.ts";
import { startLeaseService } from "../../actors/lease/service.ts";

/** This file's path, for spawning it as a child. */
export const FIXTURES = fileURLToPath(import.meta.url);

/** The in-process Bus: `bus/memory.ts` once it exists, else {@link openStandInBus}. */
export async function openTestBus(): Promise<Bus> {
  const memory = fileURLToPath(new URL("../../bus/memory.ts", import.meta.url));
  if (existsSync(memory)) {
    const module = (await import(memory)) as { openMemoryBus: () => Promise<Bus> };
    return module.openMemoryBus();
  }
  return openStandInBus();
}

function matches(pattern: readonly string[], subject: readonly string[]): boolean {
  for (let i = 0; i < pattern.length; i++) {
    if (pattern[i] === ">") return subject.length > i;
    if (i >= subject.length || (pattern[i] !== "*" && pattern[i] !== subject[i])) return false;
  }
  return pattern.length === subject.length;
}

interface Handler {
  readonly pattern: string[];
  readonly onMessage: (message: BusMessage) => void;
  readonly serve?: (message: BusMessage) => Promise<Uint8Array>;
}

/** A small Bus stand-in: pub/sub, request/reply and KV only (what the lease service uses). */
export function openStandInBus(): Bus {
  const handlers = new Set<Handler>();
  const buckets = new Map<string, KvStore>();
  let closed = false;
  const check = (): void => {
    if (closed) throw new BusError("BUS_CLOSED", "bus closed");
  };
  const add = (handler: Handler): Subscription => {
    handlers.add(handler);
    return { unsubscribe: () => Promise.resolve(void handlers.delete(handler)) };
  };
  return {
    publish(subject, data) {
      check();
      const tokens = subject.split(".");
      for (const h of handlers)
        if (!h.serve && matches(h.pattern, tokens)) queueMicrotask(() => h.onMessage({ subject, data }));
      return Promise.resolve();
    },
    subscribe(pattern, handler) {
      check();
      return Promise.resolve(add({ pattern: pattern.split("."), onMessage: handler }));
    },
    serve(subject, serve) {
      check();
      return Promise.resolve(add({ pattern: subject.split("."), onMessage: () => undefined, serve }));
    },
    request(subject, data, deadline) {
      check();
      const tokens = subject.split(".");
      const server = [...handlers].find((h) => h.serve && matches(h.pattern, tokens));
      if (!server?.serve) return Promise.reject(new BusError("NO_RESPONDERS", `no responders on ${subject}`));

      return new Promise((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new BusError("TIMEOUT", `request on ${subject} timed out`)),
          deadline.timeoutMs,
        );
        server.serve!({ subject, data }).then(
          (reply) => {
            clearTimeout(timer);
            resolve({ subject, data: reply });
          },
          () => undefined,
        );
      });
    },
    kv(bucket) {
      check();
      let store = buckets.get(bucket);
      if (store === undefined) buckets.set(bucket, (store = standInKv()));
      return Promise.resolve(store);
    },
    stream: () => Promise.reject(new BusError("BUS_UNAVAILABLE", "the stand-in bus has no streams")),
    workQueue: () => Promise.reject(new BusError("BUS_UNAVAILABLE", "the stand-in bus has no work queues")),
    close() {
      closed = true;
      handlers.clear();
      return Promise.resolve();
    },
  };
}

function standInKv(): KvStore {
  const entries = new Map<string, KvEntry>();
  let revision = 0;
  const write = (key: string, value: Uint8Array): number => {
    entries.set(key, { key, value, revision: ++revision });
    return revision;
  };
  const mismatch = (key: string): BusError => new BusError("REVISION_MISMATCH", `wrong revision for ${key}`);
  return {
    get: (key) => Promise.resolve(entries.get(key)),
    put: (key, value) => Promise.resolve(write(key, value)),
    create: (key, value) =>
      entries.has(key) ? Promise.reject(mismatch(key)) : Promise.resolve(write(key, value)),
    update: (key, value, expected) =>
      entries.get(key)?.revision === expected
        ? Promise.resolve(write(key, value))
        : Promise.reject(mismatch(key)),
    delete(key, expected) {
      if (expected !== undefined && entries.get(key)?.revision !== expected)
        return Promise.reject(mismatch(key));
      entries.delete(key);
      return Promise.resolve();
    },
    keys(filter) {
      const pattern = filter?.split(".");
      return Promise.resolve([...entries.keys()].filter((k) => !pattern || matches(pattern, k.split("."))));
    },
    writeMany(writes) {
      for (const [key, value] of writes)
        if (value === undefined) entries.delete(key);
        else write(key, value);
      return Promise.resolve();
    },
  };
}

/** A child running one of the roles below; its JSON reports are collected as they come. */
export interface RoleProcess {
  readonly proc: ChildProcess;
  readonly reports: unknown[];
  /** Resolves with the first report matching `test`, or rejects when the child exits or at the deadline. */
  waitFor<T>(what: string, test: (report: unknown) => report is T, timeoutMs?: number): Promise<T>;
  /** SIGKILL, and waits for the exit. */
  kill(): Promise<void>;
}

/** Spawns `node lease-fixtures.ts ROLE ARGS`, optionally inside a network namespace. */
export function spawnRole(
  role: string,
  args: readonly string[],
  options: { netns?: string } = {},
): RoleProcess {
  const command = [process.execPath, FIXTURES, role, ...args];
  const proc = options.netns
    ? spawn("ip", ["netns", "exec", options.netns, ...command], { stdio: ["ignore", "pipe", "pipe"] })
    : spawn(command[0]!, command.slice(1), { stdio: ["ignore", "pipe", "pipe"] });
  const reports: unknown[] = [];
  const listeners = new Set<() => void>();
  let stderr = "";
  proc.stderr.on("data", (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4_000)));
  createInterface({ input: proc.stdout }).on("line", (line) => {
    try {
      reports.push(JSON.parse(line));
    } catch {
      stderr += `\n(stdout) ${line}`;
    }
    for (const l of listeners) l();
  });
  let exited = false;
  proc.once("exit", () => {
    exited = true;
    for (const l of listeners) l();
  });
  return {
    proc,
    reports,
    waitFor<T>(what: string, test: (report: unknown) => report is T, timeoutMs = 30_000): Promise<T> {
      // Made when the timer is armed, so its stack names the wait (STYLE.md item 7).
      const timeout = new Error(`${role}: no report of ${what} within ${timeoutMs} ms`);
      return new Promise<T>((resolve, reject) => {
        const check = (): void => {
          const found = reports.find(test);
          if (found !== undefined) return done(() => resolve(found));
          if (exited)
            done(() =>
              reject(new Error(`${role} exited (${proc.exitCode}) before ${what}: ${stderr.trim()}`)),
            );
        };
        const timer = setTimeout(() => {
          timeout.message += `; stderr: ${stderr.trim()}`;
          done(() => reject(timeout));
        }, timeoutMs);
        const done = (settle: () => void): void => {
          clearTimeout(timer);
          listeners.delete(check);
          settle();
        };
        listeners.add(check);
        check();
      });
    },
    async kill() {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      const gone = once(proc, "exit");
      proc.kill("SIGKILL");
      await gone;
    },
  };
}

function report(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value)}\n`);
}

async function natsBus(url: string): Promise<Bus> {
  const { openNatsBus } = await import("../../bus/nats.ts");
  return openNatsBus({ servers: url, timeoutMs: 5_000 });
}

function listen(port: number, host: string): Promise<Server> {
  const server = createServer();
  server.listen({ host, port, exclusive: true });
  return Promise.race([
    once(server, "listening").then(() => server),
    once(server, "error").then(([err]) => Promise.reject(err as Error)),
  ]);
}

/** Child roles. Each runs until killed unless it says otherwise. */
const roles: Record<string, (args: string[]) => Promise<void>> = {
  /** `block HOST PORT...`: holds the ports, reports `{ bound }`. */
  async block([host = "127.0.0.1", ...ports]) {
    for (const port of ports) await listen(Number(port), host);
    report({ bound: ports.map(Number) });
  },
  /** `service NATS_URL INSTANCE LOCK_MS`: a lease service; reports state changes. */
  async service([url = "", instance = "", lockMs = "1500"]) {
    const bus = await natsBus(url);
    const service = await startLeaseService({ bus, instance, lockMs: Number(lockMs), tickMs: 100 });
    report({ instance, state: service.state() === "active" ? "starting" : service.state() });
    await service.whenActive();
    report({ instance, state: "active" });
  },
  /** `holder NATS_URL HOST COUNT LEASE_MS`: acquires COUNT leases, renews them, reports them. */
  async holder([url = "", host = "", count = "1", leaseMs = "2000"]) {
    const bus = await natsBus(url);
    const client = createLeaseClient({ bus, workerHost: host, leaseMs: Number(leaseMs) });
    const leases = [];
    for (let i = 0; i < Number(count); i++)
      leases.push(await client.acquire("workstation", { run: "holder", target: `t${i}` }));
    report({ leases });
    setInterval(() => undefined, 60_000);
  },
  /**
   * `conflict`: run inside a fresh network namespace. Holds 60000-60003 in a child of its own, then
   * leases and binds a workstation port for `w1` through an in-process service; reports the port,
   * the conflicts met and the service's status.
   */
  async conflict() {
    const blocker = spawnRole("block", ["127.0.0.1", "60000", "60001", "60002", "60003"]);
    try {
      await blocker.waitFor(
        "bound",
        (r): r is { bound: number[] } => typeof r === "object" && r !== null && "bound" in r,
      );
      const bus = await openTestBus();
      const service = await startLeaseService({ bus });
      await service.whenActive();
      const client = createLeaseClient({ bus, workerHost: "w1" });
      const bound = await bindLeased(client, {
        range: "workstation",
        holder: { run: "conflict", target: "t1" },
        host: "127.0.0.1",
        server: () => createServer(),
      });
      const status = await client.status();
      report({ port: bound.lease.port, conflicts: bound.conflicts, status });
      bound.server.close();
      await client.close({ release: true });
      await service.stop();
      await bus.close();
    } finally {
      await blocker.kill();
    }
  },
  /** `stress NATS_URL HOST COUNT`: COUNT concurrent acquires; reports `{ leases }` and exits. */
  async stress([url = "", host = "", count = "250"]) {
    const bus = await natsBus(url);
    const client = createLeaseClient({ bus, workerHost: host, leaseMs: 120_000, timeoutMs: 60_000 });
    const holder = { run: "stress", target: String(process.pid) };
    const leases = await Promise.all(
      Array.from({ length: Number(count) }, () => client.acquire("workstation", holder)),
    );
    report({ leases: leases.map(({ leaseId, port, workerHost }) => ({ leaseId, port, workerHost })) });
    await client.close();
    await bus.close();
  },
};

if (import.meta.main) {
  const [role = "", ...args] = process.argv.slice(2);
  const run = roles[role];
  if (run === undefined) {
    console.error(`lease-fixtures: unknown role ${role}; roles: ${Object.keys(roles).join(", ")}`);
    process.exit(2);
  }
  await run(args);
}
