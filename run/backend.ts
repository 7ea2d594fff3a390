/**
 * What a run runs on: the Bus (NATS when a URL is given, else the in-process bus kept in the state
 * directory) and a lease service started for the run. With NATS the service takes the lock or
 * stands by while another instance serves; embedded it is the only one and serves at once.
 */
import { errorClass } from "../base/errors.ts";
import { withDeadline } from "../base/deadline.ts";
import { startLeaseService, type LeaseService } from "../actors/lease/service.ts";
import { busTransport, type LeaseTransport } from "../actors/lease/transport.ts";
import { redactUrlCredentials, type Bus, type EventStream, type KvStore } from "../bus/bus.ts";
import { openBus, type NatsSecurity } from "../bus/open.ts";
import { EVENT_STREAM } from "./events/subjects.ts";
import type { Job } from "./job/types.ts";
import { EMBEDDED_SNAPSHOT_RUNS, pruneSnapshots, SNAPSHOT_BUCKET } from "./snapshot-store.ts";

/** Events the embedded bus keeps in its state directory (the oldest are dropped beyond it). */
export const EMBEDDED_EVENT_LIMIT = 100_000;
/** And the bytes of them it keeps, in memory and on disk. */
export const EMBEDDED_EVENT_BYTES = 32 * 1024 * 1024;

/** A run could not start: the bus, the lease service or the steps could not be set up. */
export class RunSetupError extends errorClass("RUN_SETUP_FAILED") {}

export interface Backend {
  readonly mode: "embedded" | "nats";
  readonly bus: Bus;
  readonly snapshots: KvStore;
  /** The durable stream of run and target events (created when missing). */
  readonly events: EventStream;
  readonly leaseService: LeaseService;
  readonly leaseTransport: LeaseTransport;
  /** Stops the lease service and closes the bus; never throws (problems go to `warn`). */
  close(warn: (what: string, error: unknown) => void): Promise<void>;
}

export interface BackendOptions {
  readonly job: Job;
  readonly stateDir: string;
  readonly natsUrl?: string;
  /** TLS and credentials for NATS; used with `natsUrl` only. */
  readonly natsSecurity?: NatsSecurity;
  /** How long the embedded lease service may take to become active (a crashed run's lock expires). */
  readonly leaseActiveMs?: number;
}

/** An error's message with the credentials of any URL in it (`nats://user:pass@host`) hidden. */
const messageOf = (error: unknown): string =>
  redactUrlCredentials(error instanceof Error ? error.message : String(error));

/** Opens the bus and starts the lease service for a run. */
export async function openBackend(options: BackendOptions): Promise<Backend> {
  const natsUrl = options.natsUrl?.trim() || undefined;
  const mode = natsUrl === undefined ? "embedded" : "nats";
  let bus: Bus;
  try {
    bus = await openBus(
      natsUrl === undefined
        ? { stateDir: options.stateDir }
        : { natsUrl, ...(options.natsSecurity === undefined ? {} : { natsSecurity: options.natsSecurity }) },
    );
  } catch (error) {
    const where = mode === "nats" ? "the NATS server" : `the state directory ${options.stateDir}`;
    throw new RunSetupError(`cannot open the bus on ${where}: ${messageOf(error)}`, { cause: error });
  }
  let service: LeaseService | undefined;
  try {
    const snapshots = await bus.kv(SNAPSHOT_BUCKET);
    // On NATS, retention is the server operator's to set, as for the event stream.
    if (mode === "embedded") await pruneSnapshots(snapshots, EMBEDDED_SNAPSHOT_RUNS);
    // Embedded, the stream lives in the state directory and in this process's memory: keep the
    // latest events only. On NATS its limits are the server operator's to set.
    const events = await bus.stream(EVENT_STREAM.name, {
      subjects: EVENT_STREAM.subjects,
      ...(mode === "embedded" ? { maxEvents: EMBEDDED_EVENT_LIMIT, maxBytes: EMBEDDED_EVENT_BYTES } : {}),
    });
    const { ports } = options.job.options;
    service = await startLeaseService({
      bus,
      ranges: { workstation: ports.workstation, callback: ports.callback, agent: ports.agent },
      // The embedded bus is this process's alone: a lock in it is a crashed run's.
      exclusive: mode === "embedded",
    });
    // Embedded, nobody else can serve: wait for it. With NATS another instance may be serving,
    // and clients retry until one answers.
    if (mode === "embedded") {
      const ms = options.leaseActiveMs ?? 30_000;
      const timeout = new RunSetupError(`the lease service becoming active did not happen within ${ms} ms`);
      const active = service;
      await withDeadline({ ms, timeout }, () => active.whenActive());
    }
    const leaseService = service;
    return {
      mode,
      bus,
      snapshots,
      events,
      leaseService,
      leaseTransport: mode === "embedded" ? leaseService.transport() : busTransport(bus),
      async close(warn) {
        await leaseService.stop().catch((error: unknown) => warn("stopping the lease service", error));
        await bus.close().catch((error: unknown) => warn("closing the bus", error));
      },
    };
  } catch (error) {
    await service?.stop().catch(() => undefined);
    await bus.close().catch(() => undefined);
    if (error instanceof RunSetupError) throw error;
    throw new RunSetupError(`cannot set up the run on the ${mode} bus: ${messageOf(error)}`, {
      cause: error,
    });
  }
}
