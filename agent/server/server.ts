/**
 * The agent's server: `soap` behind our own `https.Server` with mutual TLS 1.3 against the run's
 * CA, the workstation's certificate pinned on top (any other client, even one of the same CA such
 * as another target's agent, is refused as soon as its handshake is done, before anything it sent
 * is read), a message-security session per connection, the request pipeline
 * (`request-pipeline.ts`), orphan protection, and the stop that removes the agent and keeps its log.
 */
import { mutualTlsServerOptions } from "../protocol/signed-http.ts";
import { createServer, type Server as HttpsServer } from "node:https";
import type { TLSSocket } from "node:tls";
import { X509Certificate } from "node:crypto";
import { type AgentLog, openAgentLog } from "./agent-log.ts";
import { DEFAULT_MAX_BODY_BYTES } from "../protocol/body-reader.ts";
import { type ConnectionSession, openConnectionSession } from "../protocol/connection-session.ts";
import { CallbackClient } from "./callback-client.ts";
import { ConnectionLimit, guardPinnedServer, HANDSHAKE_TIMEOUT_MS } from "../protocol/connection-limit.ts";
import type { CallbackTarget } from "../protocol/start-up.ts";
import { withDeadline } from "../../base/deadline.ts";
import { DeadlineExceededError, InstallStoppedError, UnknownWorkstationError } from "../protocol/errors.ts";
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
import { operationDeadline } from "../protocol/deadlines.ts";
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
  /** SHA-256 fingerprint (AB:CD:…) of the workstation's client certificate: the one client answered. */
  readonly workstationFingerprint256: string;
  /** The agent's own key (made on the target) and the server leaf the run CA issued for it. */
  readonly keyPem: string;
  readonly certPem: string;
  /** The client leaf on the same key for the callbacks; required with `callback`. */
  readonly callbackCertPem?: string;
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
   * effort, presenting `callbackCertPem`.
   */
  readonly callback?: CallbackTarget;
  /** Deadline of one callback message, its connection included; default 10 s. */
  readonly callbackTimeoutMs?: number;
  /** Runs once the listener has closed, before the agent's files go (e.g. its firewall rule). */
  readonly onClosed?: () => Promise<void>;
  /** Refusals the log writes as they come per 10 s, the rest counted; default 5. */
  readonly rejectionBurst?: number;
  /** Bounds on connections; defaults {@link DEFAULT_AGENT_CONNECTIONS}. */
  readonly connections?: Partial<AgentConnectionLimits>;
}

export interface AgentConnectionLimits {
  /** The workstation's connections kept open at once (beyond: the oldest idle one is dropped). */
  readonly maxWorkstationConnections: number;
  /** Connections taken at all, handshakes in progress included. */
  readonly maxConnections: number;
  /** A connection that sends no request this long after its handshake is closed. */
  readonly firstRequestTimeoutMs: number;
}

export const DEFAULT_AGENT_CONNECTIONS: AgentConnectionLimits = {
  maxWorkstationConnections: 8,
  maxConnections: 32,
  firstRequestTimeoutMs: 15_000,
};

/** A created agent server; {@link AgentServer.start} binds it. */
export interface AgentServer {
  readonly log: AgentLog;
  readonly https: HttpsServer;
  /** SHA-256 fingerprint of the agent's certificate, for the workstation to pin. */
  readonly fingerprint256: string;
  /** Binds and starts the idle clock; resolves with the port. */
  start(bind: BindListener): Promise<number>;
  /**
   * Stops serving, removes the agent's files, keeps the log; idempotent. Resolves when done. The
   * install in progress is waited for, or with `force` stopped (also when the stop is under way).
   */
  stop(reason: string, options?: { force?: boolean }): Promise<void>;
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
    ...(options.rejectionBurst === undefined ? {} : { rejectionBurst: options.rejectionBurst }),
    ...(options.logMirror === undefined ? {} : { mirror: options.logMirror }),
  });
  const installs: InstallSlot = { current: undefined };
  const workstation = options.workstationFingerprint256.toUpperCase();
  if (options.callback !== undefined && options.callbackCertPem === undefined)
    throw new TypeError("callbacks need callbackCertPem, the agent's client leaf");
  const callback =
    options.callback === undefined || options.callbackCertPem === undefined
      ? undefined
      : new CallbackClient({
          target: options.callback,
          runId: options.runId,
          caCertPem: options.caCertPem,
          certPem: options.callbackCertPem,
          keyPem: options.keyPem,
          log,
          ...(options.callbackTimeoutMs === undefined ? {} : { timeoutMs: options.callbackTimeoutMs }),
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
  let stopForced = false;
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
    Shutdown: shutdownOperation(context, (reason, force) => {
      stopping = true;
      stopReason ??= reason;
      if (force) forceStop(reason);
    }),
  };
  const soap = await createAgentSoapService(loadAgentWsdl(), handlers, (operation, handler, args, facts) => {
    const ms = operationDeadline(operation, limits);
    const timeout = new DeadlineExceededError(`${operation} did not finish within ${ms} ms`);
    return withDeadline({ ms, timeout }, (signal) => handler(args, facts, signal));
  });

  const sessions = new WeakMap<TLSSocket, ConnectionSession>();
  const https = createServer({ ...mutualTlsServerOptions(options), handshakeTimeout: HANDSHAKE_TIMEOUT_MS });
  const connectionLimits = { ...DEFAULT_AGENT_CONNECTIONS, ...options.connections };
  const connections = new ConnectionLimit(https, {
    maxPeerConnections: connectionLimits.maxWorkstationConnections,
    maxConnections: connectionLimits.maxConnections,
    firstRequestTimeoutMs: connectionLimits.firstRequestTimeoutMs,
  });
  // The session outlives idle gaps between calls: keep the connection as long as the agent would.
  https.keepAliveTimeout = options.idleTimeoutMs + 1000;
  https.requestTimeout = 60_000;
  https.headersTimeout = 30_000;

  // Only the workstation's certificate is answered (the handshake proved one of the run's CA).
  guardPinnedServer(https, {
    peer: "the workstation",
    limit: connections,
    maxPeerConnections: connectionLimits.maxWorkstationConnections,
    refusal: (presented) =>
      presented?.toUpperCase() === workstation
        ? undefined
        : new UnknownWorkstationError(`the client certificate is not the workstation's ${workstation}`),
    open: (socket) => {
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
    },
    refuse: (line) => log.reject(line),
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
              `no sign of life from the workstation for ${silentMs} ms (no callback acknowledged, no request): the workstation is presumed gone`,
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
      // An authenticated request: the idle clock stops, and it is a sign of life for the watch.
      busy: () => {
        const idleDone = idle.busy();
        const watchDone = watch?.request();
        return () => {
          idleDone();
          watchDone?.();
        };
      },
      onShutdownAnswered: () => void stop(stopReason ?? "Shutdown"),
    });
  });

  /** Stops the install in progress, if any, rather than waiting for it; said once in the log. */
  function forceStop(reason: string): void {
    if (stopForced) return;
    stopForced = true;
    if (installs.stop === undefined) return;
    log.write("warn", `stopping the install in progress: ${reason}`);
    installs.stop(new InstallStoppedError(`the install was stopped: ${reason}`));
  }

  function stop(reason: string, how: { force?: boolean } = {}): Promise<void> {
    if (how.force === true) forceStop(reason);
    stopRun ??= (async () => {
      stopping = true;
      idle.stop();
      watch?.stop();
      log.write("info", `stopping: ${reason}`);
      if (installs.current !== undefined) {
        if (!stopForced) log.write("info", "stopping: waiting for the install in progress");
        await installs.current;
      }
      if (callback !== undefined) {
        const waiting = await callback.flush(2000);
        if (waiting > 0)
          log.write(
            "warn",
            `stopping: ${waiting} callback(s) not delivered within 2000 ms (the workstation's callback listener at ${options.callback?.host}:${options.callback?.port} did not answer): dropped`,
          );
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
