/**
 * Subjects and message schemas of the central port-lease service (docs/port-leases.md). Requests
 * and replies are UTF-8 JSON validated with zod on both sides; the `v1` in every subject is the
 * schema version, so a later incompatible change gets new subjects next to these.
 *
 * Each lease has a secret that only its holder knows: the acquirer draws it (128 random bits,
 * base64url) and sends it with the acquire, and renew, conflict and release must show it; the
 * service keeps its SHA-256 only ({@link StoredLease}) and shows neither in replies nor events.
 * The acquirer chooses it, as it chooses the lease id, so that a retried acquire (after a lost
 * reply or a failover) is recognised without the service keeping the secret itself. Requests
 * without one (a client from before secrets) are refused as `invalid-request` naming the field,
 * on the same subjects: such a client is told why rather than meeting a silent timeout on new
 * subjects.
 *
 * `bus/subjects.ts` re-exports everything here.
 */
import { z } from "zod";

/** Request subjects (request/reply, served by the one active lease service). */
export const LEASE_SUBJECTS = {
  acquire: "sumac.v1.lease.acquire",
  renew: "sumac.v1.lease.renew",
  conflict: "sumac.v1.lease.conflict",
  release: "sumac.v1.lease.release",
  status: "sumac.v1.lease.status",
} as const;

/** Event subjects (published by the active service, for outside subscribers). */
export const LEASE_EVENT_SUBJECTS = {
  /** A holder found a granted port taken by something outside sumac: {@link LeaseConflictEvent}. */
  conflict: "sumac.v1.lease.event.conflict",
  /** A lease was reclaimed because it was not renewed in time: {@link LeaseExpiredEvent}. */
  expired: "sumac.v1.lease.event.expired",
  /** An instance became the active lease service: {@link LeaseActiveEvent}. */
  active: "sumac.v1.lease.event.active",
} as const;

/** The KV bucket holding the leases, the busy ports and the lock of the active instance. */
export const LEASE_BUCKET = "sumac-leases";

/**
 * Lease ids are chosen by the client (a random per-client prefix starting with a letter, and a
 * counter), so a retried request cannot grant twice.
 */
export const LeaseId = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, "lease id: 1 to 64 of [A-Za-z0-9_-]");
/** A lease's secret: 128 random bits or more, base64url (22 characters for 128 bits). */
export const LeaseSecret = z
  .string()
  .regex(/^[A-Za-z0-9_-]{22,86}$/, "lease secret: 22 to 86 of [A-Za-z0-9_-] (base64url of 128 bits or more)");
/** A configured range of the service (`workstation`, `callback`, ...). */
export const RangeName = z.string().regex(/^[A-Za-z0-9_-]{1,32}$/, "range: 1 to 32 of [A-Za-z0-9_-]");
/** The worker host the port is on: leases are per worker host. */
export const WorkerHost = z.string().min(1).max(253);
/** How long a lease lasts unless renewed, in ms (100 ms to 24 h). */
export const LeaseMs = z.int().min(100).max(86_400_000);
export const Port = z.int().min(1).max(65535);
/** Milliseconds since the epoch. */
export const EpochMs = z.int().min(0);

/** Who holds a lease: the run and the target it serves. */
export const LeaseHolder = z.object({
  run: z.string().min(1).max(128),
  target: z.string().min(1).max(256),
});
export type LeaseHolder = z.infer<typeof LeaseHolder>;

export const AcquireRequest = z.object({
  leaseId: LeaseId,
  workerHost: WorkerHost,
  range: RangeName,
  holder: LeaseHolder,
  leaseMs: LeaseMs,
  /** The lease's secret, drawn by the acquirer; a retry sends the same. */
  secret: LeaseSecret,
});
export type AcquireRequest = z.infer<typeof AcquireRequest>;

/** Renews several leases of one holder process at once (a client renews all it holds together). */
export const RenewRequest = z
  .object({
    leaseIds: z.array(LeaseId).min(1).max(4096),
    /** The secret of each lease, in the order of `leaseIds`. */
    secrets: z.array(LeaseSecret).min(1).max(4096),
    leaseMs: LeaseMs,
  })
  .refine((r) => r.secrets.length === r.leaseIds.length, {
    message: "secrets: one per lease id, in the same order",
    path: ["secrets"],
  });
export type RenewRequest = z.infer<typeof RenewRequest>;

/**
 * The port of `leaseId` was found taken (EADDRINUSE): mark it busy for the cool-down, end that
 * lease and grant the next port under `nextLeaseId` (chosen by the client, for idempotent retries).
 */
export const ConflictRequest = z.object({
  leaseId: LeaseId,
  /** The secret of `leaseId`. */
  secret: LeaseSecret,
  nextLeaseId: LeaseId,
  /** The secret of the next lease, drawn by the client. */
  nextSecret: LeaseSecret,
  leaseMs: LeaseMs,
});
export type ConflictRequest = z.infer<typeof ConflictRequest>;

/**
 * Ends leases; idempotent (an unknown or already released id is not an error). A held lease whose
 * secret does not match fails the whole request (`not-holder`), and nothing is released.
 */
export const ReleaseRequest = z
  .object({
    leaseIds: z.array(LeaseId).min(1).max(4096),
    /** The secret of each lease, in the order of `leaseIds`. */
    secrets: z.array(LeaseSecret).min(1).max(4096),
  })
  .refine((r) => r.secrets.length === r.leaseIds.length, {
    message: "secrets: one per lease id, in the same order",
    path: ["secrets"],
  });
export type ReleaseRequest = z.infer<typeof ReleaseRequest>;

export const StatusRequest = z.object({
  workerHost: WorkerHost.optional(),
  /**
   * Pages through every lease: when given, leases are listed in lease-id order (by UTF-16 code
   * units), those after `after` only (`""`: from the first), and the reply's `next` is where the
   * next page starts.
   */
  after: z.union([LeaseId, z.literal("")]).optional(),
});
export type StatusRequest = z.infer<typeof StatusRequest>;

/** A granted lease, as replied and as persisted (one KV key per lease). */
export const Lease = z.object({
  leaseId: LeaseId,
  workerHost: WorkerHost,
  range: RangeName,
  port: Port,
  holder: LeaseHolder,
  grantedAt: EpochMs,
  expiresAt: EpochMs,
});
export type Lease = z.infer<typeof Lease>;

/** A lease as the service keeps it (the KV value): with the SHA-256 of its secret, base64url. */
export const StoredLease = Lease.extend({ secretHash: z.string().regex(/^[A-Za-z0-9_-]{43}$/) });
export type StoredLease = z.infer<typeof StoredLease>;

/** The lease without its secret's hash, as replies and events show it. */
export function publicLease(lease: StoredLease | Lease): Lease {
  return {
    leaseId: lease.leaseId,
    workerHost: lease.workerHost,
    range: lease.range,
    port: lease.port,
    holder: lease.holder,
    grantedAt: lease.grantedAt,
    expiresAt: lease.expiresAt,
  };
}

/** A port found taken outside sumac: not granted again before `until`. */
export const BusyPort = z.object({
  workerHost: WorkerHost,
  range: RangeName,
  port: Port,
  until: EpochMs,
});
export type BusyPort = z.infer<typeof BusyPort>;

/** Stable error codes of lease replies; clients branch on these. */
export const LeaseErrorCode = z.enum([
  "exhausted",
  "unknown-range",
  "unknown-lease",
  /** The request did not show the lease's secret: it comes from someone else than its holder. */
  "not-holder",
  "not-active",
  "invalid-request",
  "internal",
]);
export type LeaseErrorCode = z.infer<typeof LeaseErrorCode>;

export const LeaseFailure = z.object({
  ok: z.literal(false),
  error: z.object({ code: LeaseErrorCode, message: z.string().max(1000) }),
});
export type LeaseFailure = z.infer<typeof LeaseFailure>;

function reply<T extends z.ZodRawShape>(shape: T) {
  return z.discriminatedUnion("ok", [z.object({ ok: z.literal(true), ...shape }), LeaseFailure]);
}

/** Reply to acquire and to conflict: the lease granted. */
export const GrantReply = reply({ lease: Lease });
export type GrantReply = z.infer<typeof GrantReply>;

export const RenewReply = reply({
  renewed: z.array(z.object({ leaseId: LeaseId, expiresAt: EpochMs })),
  /** Ids the service does not know (expired and reclaimed, or released). */
  unknown: z.array(LeaseId),
});
export type RenewReply = z.infer<typeof RenewReply>;

export const ReleaseReply = reply({ released: z.int().min(0) });
export type ReleaseReply = z.infer<typeof ReleaseReply>;

export const StatusReply = reply({
  /** The id of the instance that answered. */
  instance: z.string(),
  leases: z.array(Lease),
  busy: z.array(BusyPort),
  /** Conflicts reported since the service state was created (survives failover). */
  conflicts: z.int().min(0),
  /** True when more leases exist than the reply lists (at most {@link STATUS_LIMIT}). */
  truncated: z.boolean(),
  /** Paging (`after` given): the `after` of the next page, absent on the last one. */
  next: LeaseId.optional(),
});
export type StatusReply = z.infer<typeof StatusReply>;

/** Most leases a status reply lists, keeping it well under the 1 MiB payload limit. */
export const STATUS_LIMIT = 2000;

export const LeaseConflictEvent = z.object({
  busy: BusyPort,
  leaseId: LeaseId,
  holder: LeaseHolder,
  at: EpochMs,
});
export type LeaseConflictEvent = z.infer<typeof LeaseConflictEvent>;

export const LeaseExpiredEvent = z.object({ lease: Lease, at: EpochMs });
export type LeaseExpiredEvent = z.infer<typeof LeaseExpiredEvent>;

export const LeaseActiveEvent = z.object({ instance: z.string(), leases: z.int().min(0), at: EpochMs });
export type LeaseActiveEvent = z.infer<typeof LeaseActiveEvent>;

/** The value of the lock key: the active instance and when its claim ends unless renewed. */
export const LeaseLock = z.object({ owner: z.string().min(1).max(200), expiresAt: EpochMs });
export type LeaseLock = z.infer<typeof LeaseLock>;

/**
 * The values of the lease keys: `lease.<host base64url>.<port>` holds that port's `Lease`,
 * `busy.<host base64url>.<port>` its `BusyPort` (actors/lease/store.ts).
 */
/** The value of the counters key (state that is not a lease or a busy port). */
export const LeaseCounters = z.object({ conflicts: z.int().min(0) });
export type LeaseCounters = z.infer<typeof LeaseCounters>;
