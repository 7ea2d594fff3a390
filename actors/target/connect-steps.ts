/**
 * The steps `connect` and `disconnect`: a target's session, opened by the transport of its kind
 * (transports/: SSH, this machine) and kept in the run's SessionRegistry under the `sessionId` the
 * machine records. Secrets are read by the transport, only when a login needs them. See
 * docs/target-steps.md.
 */
import { withDeadline } from "../../base/deadline.ts";
import { isSumacError } from "../../base/errors.ts";
import { TargetSecretError, TransportUnsupportedError, UnknownTargetError } from "./errors.ts";
import type { SessionRegistry, TargetSession } from "./session.ts";
import type { StepImpls } from "./steps.ts";
import type { Connection, StepLog, TargetAccess, TargetTransport, Transports } from "./transport.ts";

export interface ConnectStepsDeps {
  /** The job's targets by id, as the transports reach them. */
  readonly targets: ReadonlyMap<string, TargetAccess>;
  readonly transports: Transports;
  readonly sessions: SessionRegistry;
  readonly log: StepLog;
}

/** How long a session's close may take before it is left to the transport. */
const CLOSE_MS = 5_000;

/**
 * The error a failed connect reports: the transport's as it is (its code, retryable flag and a
 * message naming host and port); a secret that cannot be read names the target.
 */
export function connectError(targetId: string, error: unknown): unknown {
  if (isSumacError(error) && error.code === "SECRET_UNAVAILABLE")
    return new TargetSecretError(`cannot log in to ${targetId}: ${error.message}`, { cause: error });
  return error;
}

/** Closes a session's shell and file channel, waiting at most {@link CLOSE_MS}; never throws. */
export async function closeQuietly(connection: Connection): Promise<void> {
  const closing = Promise.allSettled([
    connection.shell.close(),
    connection.files === (connection.shell as unknown) ? undefined : connection.files.close(),
  ]);
  await withDeadline({ ms: CLOSE_MS, timeout: new Error("close took too long") }, () => closing).catch(
    () => undefined,
  );
}

/** The transport that serves targets of `access`'s kind, if the run has one. */
function transportOf<A extends TargetAccess>(
  transports: Transports,
  access: A,
): TargetTransport<A> | undefined {
  return transports[access.transport] as TargetTransport<A> | undefined;
}

export function createConnectSteps(deps: ConnectStepsDeps): Pick<StepImpls, "connect" | "disconnect"> {
  /** Closes and forgets the target's session (a stale one from an earlier attempt). */
  async function drop(targetId: string): Promise<void> {
    const stale = deps.sessions.delete(targetId);
    if (stale !== undefined) await closeQuietly(stale);
  }

  return {
    async connect({ runId, target: ref, attempt }, signal) {
      const access = deps.targets.get(ref.id);
      if (access === undefined) throw new UnknownTargetError(`the job has no target ${ref.id}`);
      const transport = transportOf(deps.transports, access);
      if (transport === undefined)
        throw new TransportUnsupportedError(
          `${access.id}: no transport for ${access.transport} targets in this run`,
        );
      signal.throwIfAborted();
      await drop(access.id);
      let connection: Connection;
      try {
        connection = await transport.open(access, signal);
      } catch (error) {
        throw connectError(access.id, error);
      }
      if (signal.aborted) {
        await closeQuietly(connection);
        throw signal.reason as Error;
      }
      const session: TargetSession = {
        ...connection,
        sessionId: `${runId}/${access.id}/${attempt}`,
        targetId: access.id,
        transport,
        ports: {},
      };
      deps.sessions.add(session);
      deps.log(access.id, "info", connection.description);
      return { sessionId: session.sessionId };
    },

    async disconnect({ target }) {
      await drop(target.id);
    },
  };
}
