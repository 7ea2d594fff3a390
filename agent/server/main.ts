/**
 * The agent's entry point (bundled by `build.ts`): `agent.js [marker] [--dialogue=files]`. The
 * start-up dialogue (agent/protocol/start-up.ts), one JSON document per line, runs over stdin and
 * stdout (Linux: the push channel that started the agent), or with `--dialogue=files` over files
 * in the bundle's directory (Windows: agent/protocol/files-dialogue.ts); the sequence is the same:
 *
 * 1. in: the config (`config.ts`); over files, relative paths in it start at the bundle's directory;
 * 2. out: `{"event":"publicKey","publicKeyPem":...}` (over files with `"pid":N`): the key is made
 *    here and its private half never leaves the target;
 * 3. in: `{"certPem":...,"callbackCertPem":...}`: the leaves the workstation issued on that key
 *    with the run CA: the server leaf of the agent's listener, and the client leaf it presents to
 *    the callback listener (needed with `callback`);
 * 4. out: `{"event":"listening","port":N,"busy":[...],"fingerprint256":...}` (`busy`: the ports
 *    found taken on the way), then the agent serves until Shutdown or the idle timeout, removes
 *    itself (and its firewall rule), keeps its log, says `{"event":"stopped","reason":...,
 *    "removed":true|false}` and exits: 0 when every program file and the staging directory are
 *    gone (the workstation then has nothing left to remove), 4 when something could not be
 *    removed, 1 when start-up failed (said as `{"event":"failed","message":...}`).
 *
 * A stop by signal, or over files by the stop file, is a forced stop (see below).
 *
 * Kept light: node:crypto makes the key, no ASN.1 library is imported here.
 */
import { realpathSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { parseAgentConfig } from "./config.ts";
import { createKeyPair } from "../protocol/key-pair.ts";
import { DIALOGUE_FILES } from "../protocol/files-dialogue.ts";
import type { AgentPortRule } from "../protocol/firewall-rule.ts";
import { createAgentFirewall, firewallLevel } from "./agent-firewall.ts";
import { dialogueModeOf, type DialogueChannel } from "./dialogue.ts";
import { createFilesDialogue, watchStopFile } from "./dialogue-files.ts";
import { createStdioDialogue } from "./dialogue-stdio.ts";
import { listenOn } from "./listen.ts";
import { bindByStrategy } from "../protocol/port-binding.ts";
import { createAgentServer } from "./server.ts";

/** Exit status of an agent that stopped but could not remove all of its files. */
const EXIT_FILES_LEFT = 4;
/** Exit status of an agent stopped before its server existed: as a process ended by SIGTERM. */
const EXIT_STOPPED_EARLY = 143;

/** The bundle's directory: where the files dialogue runs, and where relative paths start. */
function bundleDir(): string {
  const script = process.argv[1];
  if (script === undefined) throw new Error("no script path in process.argv");
  return dirname(realpathSync(script));
}

async function main(channelOpened: (channel: DialogueChannel) => void): Promise<number> {
  // A stop by signal (the workstation gave up, or an operator), or over files by the stop file,
  // is the same stop as a forced Shutdown: the install in progress is stopped (its process group
  // would otherwise outlive an agent that its launcher kills after a grace), the program files
  // and the firewall rule go, the log stays. Before the server exists there is nothing
  // registered yet, so the process just ends; while the port is being registered the stop waits
  // until it is, so that it is removed again.
  const stopper: { stop?: (reason: string) => void } = {};
  let pendingStop: string | undefined;
  let serverStarting = false;
  const requestStop = (reason: string): void => {
    if (stopper.stop !== undefined) stopper.stop(reason);
    else if (serverStarting) pendingStop = reason;
    else process.exit(EXIT_STOPPED_EARLY);
  };
  for (const signal of ["SIGTERM", "SIGINT", "SIGHUP"] as const)
    process.once(signal, () => requestStop(`signal ${signal}`));

  const files = dialogueModeOf(process.argv.slice(2)) === "files" ? bundleDir() : undefined;
  const channel = files === undefined ? createStdioDialogue() : createFilesDialogue({ dir: files });
  channelOpened(channel);
  if (files !== undefined) watchStopFile(files, () => requestStop(`the stop file ${DIALOGUE_FILES.stop}`));

  const config = parseAgentConfig(
    await channel.readConfig(),
    files === undefined ? {} : { relativeTo: files },
  );
  const firewall = createAgentFirewall(config.firewall, {
    // Runs' directories are siblings: `../<run>` from the bundle's.
    runRoot: () => resolve(files ?? bundleDir(), ".."),
    runId: config.runId,
  });
  // Netsh: the sweep of gone runs' rules runs while the workstation issues the certificate.
  const swept = firewall?.sweep?.();
  const keys = createKeyPair();
  channel.send({
    event: "publicKey",
    publicKeyPem: keys.publicKeyPem,
    // A forced stop on Windows ends the agent by its process id.
    ...(files === undefined ? {} : { pid: process.pid }),
  });
  const issued = (await channel.readCertificate()) as { certPem?: unknown; callbackCertPem?: unknown };
  if (issued === null || typeof issued !== "object" || typeof issued.certPem !== "string")
    throw new Error("the certificate line has no certPem");
  const callbackCertPem = issued.callbackCertPem;
  if (config.callback !== undefined && typeof callbackCertPem !== "string")
    throw new Error("the certificate line has no callbackCertPem, which callbacks need");

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
      if (rule !== undefined && firewall !== undefined) {
        const result = await firewall.deregister(rule);
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
  if (swept !== undefined) {
    const sweep = await swept;
    const level = sweep.failed.length === 0 ? "info" : "warn";
    agent.log.write(level, `firewall: sweep of gone runs' rules: ${JSON.stringify(sweep)}`);
  }
  if (firewall === undefined) agent.log.write("info", "firewall: not asked to register the port");
  else if (config.workstationAddress === undefined)
    agent.log.write("info", "firewall: no workstation address given, port not registered");
  else {
    const wanted = {
      runId: config.runId,
      targetId: config.targetId,
      port,
      source: config.workstationAddress,
    };
    const result = await firewall.register(wanted);
    if (result.status === "registered") rule = wanted;
    // A missing tool, lock or permission is said and the agent goes on: the port may be open already.
    agent.log.write(firewallLevel(result), `firewall: ${JSON.stringify(result)}`);
  }
  stopper.stop = (reason) => void agent.stop(reason, { force: true });
  if (pendingStop !== undefined) stopper.stop(pendingStop);
  channel.send({ event: "listening", port, busy, fingerprint256: agent.fingerprint256 });
  const reason = await agent.stopped;
  const removed = agent.filesRemoved();
  channel.send({ event: "stopped", reason, removed });
  return removed ? 0 : EXIT_FILES_LEFT;
}

let opened: DialogueChannel | undefined;
main((channel) => (opened = channel)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    const message = error instanceof Error ? error.message : String(error);
    // Without a channel (an out file that could not be created) stderr is all there is.
    if (opened === undefined) process.stderr.write(`${JSON.stringify({ event: "failed", message })}\n`);
    else opened.send({ event: "failed", message });
    process.exit(1);
  },
);
