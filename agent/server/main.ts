/**
 * The agent's entry point (bundled by `build.ts`). The start-up dialogue on stdin/stdout, one JSON
 * document per line, over the push channel that started the agent:
 *
 * 1. stdin: the config (`config.ts`);
 * 2. stdout: `{"event":"publicKey","publicKeyPem":...}`: the key is made here and its private half
 *    never leaves the target;
 * 3. stdin: `{"certPem":...,"callbackCertPem":...}`: the leaves the workstation issued on that key
 *    with the run CA: the server leaf of the agent's listener, and the client leaf it presents to
 *    the callback listener (needed with `callback`);
 * 4. stdout: `{"event":"listening","port":N,"busy":[...],"fingerprint256":...}` (`busy`: the ports
 *    found taken on the way), then the agent serves until Shutdown or the idle timeout, removes
 *    itself (and its firewall rule), keeps its log, prints `{"event":"stopped","reason":...,
 *    "removed":true|false}` and exits: 0 when every program file and the staging directory are
 *    gone (the workstation then has nothing left to remove), 4 when something could not be
 *    removed, 1 when start-up failed.
 *
 * Kept light: node:crypto makes the key, no ASN.1 library is imported here.
 */
import { createInterface } from "node:readline";
import { parseAgentConfig } from "./config.ts";
import { createKeyPair } from "../protocol/key-pair.ts";
import {
  createAgentNftLock,
  createNftRunner,
  deregisterAgentPort,
  registerAgentPort,
  type AgentPortRule,
  type FirewallResult,
} from "./firewall.ts";
import { listenOn } from "./listen.ts";
import { bindByStrategy } from "../protocol/port-binding.ts";
import { withDeadline } from "../../base/deadline.ts";
import { DeadlineExceededError } from "../protocol/errors.ts";
import { createAgentServer } from "./server.ts";

/** The start-up dialogue is two short lines: more than this on stdin is not a workstation. */
const DIALOGUE_MAX_BYTES = 256 * 1024;
/** A workstation that started the agent answers at once; without it the agent must not linger. */
const DIALOGUE_LINE_DEADLINE_MS = 60_000;

/** Exit status of an agent that stopped but could not remove all of its files. */
const EXIT_FILES_LEFT = 4;

async function main(): Promise<number> {
  // A stop by signal (the workstation gave up, or an operator) is the same stop as a forced
  // Shutdown: the install in progress is stopped (its process group would otherwise outlive an
  // agent that its launcher kills after a grace), the program files and the firewall rule go, the
  // log stays. Before the server exists there is
  // nothing registered yet, so the process just ends; while the port is being registered the stop
  // waits until it is, so that it is removed again.
  const stopper: { stop?: (reason: string) => void } = {};
  // A workstation that gave up closes the channel: writing the listening or stopped line then
  // fails with EPIPE, which must not crash the agent before it has removed its files and rule.
  process.stdout.on("error", () => undefined);
  let pendingStop: string | undefined;
  let serverStarting = false;
  for (const signal of ["SIGTERM", "SIGINT", "SIGHUP"] as const)
    process.once(signal, () => {
      if (stopper.stop !== undefined) stopper.stop(`signal ${signal}`);
      else if (serverStarting) pendingStop = `signal ${signal}`;
      else process.exit(143);
    });
  const lines = createInterface({ input: process.stdin, crlfDelay: Infinity })[Symbol.asyncIterator]();
  let seen = 0;
  let onData: ((chunk: Buffer) => void) | undefined;
  const overflow = new Promise<never>((_, reject) => {
    onData = (chunk) => {
      seen += chunk.byteLength;
      if (seen > DIALOGUE_MAX_BYTES)
        reject(new Error(`over ${DIALOGUE_MAX_BYTES} bytes on stdin during start-up`));
    };
    process.stdin.on("data", onData);
  });
  overflow.catch(() => undefined);
  const next = async (what: string): Promise<unknown> => {
    const ms = DIALOGUE_LINE_DEADLINE_MS;
    const timeout = new DeadlineExceededError(`the ${what} line did not finish within ${ms} ms`);
    const line = await withDeadline({ ms, timeout }, () => Promise.race([lines.next(), overflow]));
    if (line.done === true) throw new Error(`stdin closed before the ${what}`);
    try {
      return JSON.parse(line.value) as unknown;
    } catch (cause) {
      throw new Error(`the ${what} is not one line of JSON`, { cause });
    }
  };

  const config = parseAgentConfig(await next("config"));
  const keys = createKeyPair();
  emit({ event: "publicKey", publicKeyPem: keys.publicKeyPem });
  const issued = (await next("certificate")) as { certPem?: unknown; callbackCertPem?: unknown };
  if (typeof issued.certPem !== "string") throw new Error("the certificate line has no certPem");
  const callbackCertPem = issued.callbackCertPem;
  if (config.callback !== undefined && typeof callbackCertPem !== "string")
    throw new Error("the certificate line has no callbackCertPem, which callbacks need");
  if (onData !== undefined) process.stdin.off("data", onData);

  const nft = createNftRunner();
  // Shared with the other agents on this host (other runs): see firewall.ts.
  const nftLock = createAgentNftLock();
  let rule: AgentPortRule | undefined;
  serverStarting = true;
  const agent = await createAgentServer({
    runId: config.runId,
    targetId: config.targetId,
    caCertPem: config.caCertPem,
    workstationFingerprint256: config.workstationFingerprint256,
    keyPem: keys.privateKeyPem,
    certPem: issued.certPem,
    ...(typeof callbackCertPem === "string" ? { callbackCertPem } : {}),
    stagingDir: config.stagingDir,
    programFiles: config.programFiles,
    logDir: config.logDir,
    idleTimeoutMs: config.idleTimeoutMs,
    ...(config.maxBodyBytes === undefined ? {} : { maxBodyBytes: config.maxBodyBytes }),
    ...(config.limits === undefined ? {} : { limits: config.limits }),
    ...(config.callback === undefined ? {} : { callback: config.callback }),
    onClosed: async () => {
      if (rule !== undefined) {
        const result = await deregisterAgentPort(rule, nft, nftLock);
        agent.log.write(firewallLevel(result), `firewall: ${JSON.stringify(result)}`);
      }
    },
  });
  let busy: readonly number[] = [];
  const { host, port: exact, ...strategy } = config.listen;
  const bind =
    exact === undefined
      ? bindByStrategy({ host, ...strategy }, (taken) => {
          busy = taken;
          agent.log.write("info", `ports found busy: ${taken.join(", ")}`);
        })
      : listenOn({ host, port: exact });
  const port = await agent.start(bind);
  if (config.firewall === "none") agent.log.write("info", "firewall: not asked to register the port");
  else if (config.workstationAddress === undefined)
    agent.log.write("info", "firewall: no workstation address given, port not registered");
  else {
    const wanted = {
      runId: config.runId,
      targetId: config.targetId,
      port,
      source: config.workstationAddress,
    };
    const result = await registerAgentPort(wanted, nft, nftLock);
    if (result.status === "registered") rule = wanted;
    // Missing nft, flock or permission is said and the agent goes on: the port may be open already.
    agent.log.write(firewallLevel(result), `firewall: ${JSON.stringify(result)}`);
  }
  stopper.stop = (reason) => void agent.stop(reason, { force: true });
  if (pendingStop !== undefined) stopper.stop(pendingStop);
  emit({ event: "listening", port, busy, fingerprint256: agent.fingerprint256 });
  const reason = await agent.stopped;
  const removed = agent.filesRemoved();
  emit({ event: "stopped", reason, removed });
  return removed ? 0 : EXIT_FILES_LEFT;
}

/** A warning when the rule's change failed or ran without the agents' host lock. */
function firewallLevel(result: FirewallResult): "info" | "warn" {
  const done = result.status === "registered" || result.status === "removed" || result.status === "absent";
  return done && result.unlocked === undefined ? "info" : "warn";
}

function emit(event: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(event)}\n`);
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    emit({ event: "failed", message: error instanceof Error ? error.message : String(error) });
    process.exit(1);
  },
);
