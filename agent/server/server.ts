/**
 * The agent's server: `soap` behind our own `https.Server` with mutual TLS 1.3 against the run's
 * CA, a message-security session per connection, the request pipeline (`request-pipeline.ts`),
 * orphan protection, and the stop that removes the agent and keeps its log.
 */
import { mutualTlsServerOptions } from "../protocol/signed-http.ts";
import { createServer, type Server as HttpsServer } from "node:https";
import type { TLSSocket } from "node:tls";
import { X509Certificate } from "node:crypto";
import { oneLine } from "../../base/text.ts";
import { type AgentLog, openAgentLog } from "./agent-log.ts";
import { DEFAULT_MAX_BODY_BYTES } from "../protocol/body-reader.ts";
import { type ConnectionSession, openConnectionSession } from "../protocol/connection-session.ts";
import { CallbackClient } from "./callback-client.ts";
import type { CallbackTarget } from "../protocol/start-up.ts";
import { withDeadline } from "../../base/deadline.ts";
import { DeadlineExceededError } from "../protocol/errors.ts";
import { IdleWatch, type IdleTimers } from "./idle-watch.ts";
import { DEFAULT_HEARTBEAT_MS, DEFAULT_LOST_AFTER_MS, WorkstationWatch } from "./workstation-watch.ts";
import type { BindListener } from "./listen.ts";
import {
  type AgentLimits,
  DEFAULT_LIMITS,
  type InstallSlot,
  type OperationContext,
} from "./operations/context.ts";
import { helloOperation } from "./operations/hello.ts";
import { installOperation } from "./operations/install.ts";
import { inventoryOperation } from "./operations/inventory.ts";
import { logsOperation } from "./operations/logs.ts";
import { shutdownOperation } from "./operations/shutdown.ts";
import { stageOperation } from "./operations/stage.ts";
import type { OperationName } from "../protocol/wire.ts";
import { handleAgentRequest } from "./request-pipeline.ts";
import { removeAgentFiles } from "./self-removal.ts";
import { createAgentSoapService } from "./soap-service.ts";
import { loadAgentWsdl } from "../protocol/wsdl.ts";

/** The agent's version, reported by Hello. */
export const AGENT_VERSION = "0.1.0";

/** Everything the server needs; `main.ts` reads it from the agent's config. */
export interface AgentServerOptions {
  readonly runId: string;
  readonly targetId: string;
  /** The run CA's certificate: the only issuer of client certificates accepted. */
  readonly caCertPem: string;
  /** The agent's own key (made on the target) and the leaf the run CA issued for it. */
  readonly keyPem: string;
  readonly certPem: string;
  readonly stagingDir: string;
  /** Removed at stop with the staging directory; the log is kept. */
  readonly programFiles: readonly string[];
  /** This run's log directory; the log is `<logDir>/<targetId>.log`. */
  readonly logDir: string;
  /** No authenticated request for this long: the agent stops and removes itself. */
  readonly idleTimeoutMs: number;
  readonly maxBodyBytes?: number;
  readonly maxSkewMs?: number;
  readonly limits?: Partial<AgentLimits>;
  readonly now?: () => number;
  readonly idleTimers?: IdleTimers;
  /** Also receives every log line. */
  readonly logMirror?: (line: string) => void;
  /**
   * The workstation's callback listener: install output lines and results are sent there, best
   * effort. The agent's leaf must then allow clientAuth too (usage "server-and-client").
   */
  readonly callback?: CallbackTarget;
  /** Runs once the listener has closed, before the agent's files go (e.g. its firewall rule). */
  readonly onClosed?: () => Promise<void>;
}

/** A created agent server; {@link AgentServer.start} binds it. */
export interface AgentServer {
  readonly log: AgentLog;
  readonly https: HttpsServer;
  /** SHA-256 fingerprint of the agent's certificate, for the workstation to pin. */
  readonly fingerprint256: string;
  /** Binds and starts the idle clock; resolves with the port. */
  start(bind: BindListener): Promise<number>;
  /** Stops serving, removes the agent's files, keeps the log; idempotent. Resolves when done. */
  stop(reason: string): Promise<void>;
  /** Resolves with the stop reason once the agent has stopped and removed itself. */
  readonly stopped: Promise<string>;
  /** Once stopped: whether every program file and the staging directory were removed. */
  filesRemoved(): boolean;
}

/** Creates the agent's server (not yet listening). */
export async function createAgentServer(options: AgentServerOptions): Promise<AgentServer> {
  const limits: AgentLimits = { ...DEFAULT_LIMITS, ...options.limits };
  const log = openAgentLog({
    dir: options.logDir,
    targetId: options.targetId,
    maxBytes: limits.maxLogFileBytes,
    ...(options.logMirror === undefined ? {} : { mirror: options.logMirror }),
  });
  const installs: InstallSlot = { current: undefined };
  const callback =
    options.callback === undefined
      ? undefined
      : new CallbackClient({
          target: options.callback,
          runId: options.runId,
          caCertPem: options.caCertPem,
          certPem: options.certPem,
          keyPem: options.keyPem,
          log,
          ...(options.now === undefined ? {} : { now: options.now }),
        });
  const context: OperationContext = {
    settings: {
      agentVersion: AGENT_VERSION,
      runId: options.runId,
      targetId: options.targetId,
      stagingDir: options.stagingDir,
      limits,
    },
    log,
    installs,
    ...(callback === undefined ? {} : { callback }),
  };

  let port = 0;
  let stopping = false;
  let stopReason: string | undefined;
  let resolveStopped!: (reason: string) => void;
  const stopped = new Promise<string>((resolve) => (resolveStopped = resolve));
  let stopRun: Promise<void> | undefined;
  let removed = false;

  const handlers = {
    Hello: helloOperation(context),
    Inventory: inventoryOperation(context),
    Stage: stageOperation(context),
    Install: installOperation(context),
    Logs: logsOperation(context),
    Shutdown: shutdownOperation(context, (reason) => {
      stopping = true;
      stopReason ??= reason;
    }),
  };
  const soap = await createAgentSoapService(loadAgentWsdl(), handlers, (operation, handler, args, facts) => {
    const ms = operationDeadline(operation, limits);
    const timeout = new DeadlineExceededError(`${operation} did not finish within ${ms} ms`);
    return withDeadline({ ms, timeout }, (signal) => handler(args, facts, signal));
  });

  const sessions = new WeakMap<TLSSocket, ConnectionSession>();
  const https = createServer(mutualTlsServerOptions(options));
  // The session outlives idle gaps between calls: keep the connection as long as the agent would.
  https.keepAliveTimeout = options.idleTimeoutMs + 1000;
  https.requestTimeout = 60_000;
  https.headersTimeout = 30_000;

  https.on("secureConnection", (socket: TLSSocket) => {
    try {
      const session = openConnectionSession(socket, {
        runId: options.runId,
        targetId: options.targetId,
        side: "agent",
        ...(options.maxSkewMs === undefined ? {} : { maxSkewMs: options.maxSkewMs }),
        ...(options.now === undefined ? {} : { now: options.now }),
      });
      sessions.set(socket, session);
      log.write("info", `connection from ${session.peer}`);
      socket.once("close", () => session.verifier.close());
    } catch (error) {
      log.write("error", `connection refused: ${(error as Error).message}`);
      socket.destroy();
    }
  });
  https.on("tlsClientError", (error: NodeJS.ErrnoException, socket: TLSSocket) => {
    // Node drops these connections silently; the reason (no certificate, unknown CA, protocol
    // version) is on the error and the socket's authorizationError.
    const reason = socket.authorizationError as unknown;
    const authorization =
      reason instanceof Error ? ` (${reason.message})` : typeof reason === "string" ? ` (${reason})` : "";
    log.write(
      "warn",
      `rejected TLS_CLIENT from ${socket.remoteAddress ?? "?"}:${socket.remotePort ?? "?"}: ${error.code ?? "TLS"} ${oneLine(error.message, 300)}${authorization}`,
    );
  });

  const idle = new IdleWatch(
    options.idleTimeoutMs,
    () =>
      void stop(
        `no authenticated request for ${options.idleTimeoutMs} ms (idle timeout): the workstation is presumed gone`,
      ),
    options.idleTimers,
  );

  const watch =
    callback === undefined
      ? undefined
      : new WorkstationWatch(
          callback,
          {
            heartbeatMs: options.callback?.heartbeatMs ?? DEFAULT_HEARTBEAT_MS,
            lostAfterMs: options.callback?.lostAfterMs ?? DEFAULT_LOST_AFTER_MS,
            ...(options.now === undefined ? {} : { now: options.now }),
            ...(options.idleTimers === undefined ? {} : { timers: options.idleTimers }),
          },
          (silentMs) =>
            void stop(
              `the workstation's callback listener has acknowledged nothing for ${silentMs} ms: the workstation is presumed gone`,
            ),
        );

  https.on("request", (req, res) => {
    void handleAgentRequest(req, res, {
      sessionOf: (socket) => sessions.get(socket),
      soap,
      maxBodyBytes: options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES,
      log,
      port: () => port,
      stopping: () => stopping,
      busy: () => idle.busy(),
      onShutdownAnswered: () => void stop(stopReason ?? "Shutdown"),
    });
  });

  function stop(reason: string): Promise<void> {
    stopRun ??= (async () => {
      stopping = true;
      idle.stop();
      watch?.stop();
      log.write("info", `stopping: ${reason}`);
      if (installs.current !== undefined) {
        log.write("info", "stopping: waiting for the install in progress");
        await installs.current;
      }
      if (callback !== undefined) {
        await callback.flush(2000);
        callback.close();
      }
      await closeServer(https);
      await options
        .onClosed?.()
        .catch((error: unknown) =>
          log.write("error", `stopping: ${error instanceof Error ? error.message : String(error)}`),
        );
      removed = await removeAgentFiles([...options.programFiles, options.stagingDir], log);
      log.write("info", `stopped: ${reason}; the log stays at ${log.path}`);
      resolveStopped(reason);
    })();
    return stopRun;
  }

  return {
    log,
    https,
    fingerprint256: new X509Certificate(options.certPem).fingerprint256,
    async start(bind) {
      port = await bind(https);
      log.write("info", `listening on port ${port}, run ${options.runId}, target ${options.targetId}`);
      idle.start();
      watch?.start();
      return port;
    },
    stop,
    stopped,
    filesRemoved: () => removed,
  };
}

/** Each operation's deadline: its own work's longest allowed time, plus a margin for the rest. */
export function operationDeadline(operation: OperationName, limits: AgentLimits): number {
  switch (operation) {
    case "Install":
      return limits.maxInstallTimeoutMs + 10_000;
    case "Shutdown":
      // Waits for the install in progress to finish.
      return limits.maxInstallTimeoutMs + limits.operationTimeoutMs;
    case "Inventory":
      return Math.max(limits.operationTimeoutMs, 10 * limits.detectTimeoutMs);
    default:
      return limits.operationTimeoutMs;
  }
}

/** Stops listening and closes every connection: idle ones now, busy ones once they answer. */
function closeServer(server: HttpsServer): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) {
      resolve();
      return;
    }
    server.close(() => resolve());
    server.closeIdleConnections();
    setTimeout(() => server.closeAllConnections(), 1000).unref();
  });
}
