/**
 * The central port-lease machine (DESIGN.md "Shape", docs/port-leases.md). It owns the life cycle
 * of a lease service instance and the lease table:
 *
 * `standby` (another instance holds the lock) → `recovering` (this one won the lock and loads the
 * persisted state through the `restore` actor) → `active` (serves requests) → back to `standby` when
 * the lock is lost; `stopped` at the end.
 *
 * Requests reach it as `requests` events, each holding the requests that arrived since the previous
 * one, in arrival order. XState's mailbox processes events one at a time, to completion, in the
 * order sent, and the action runs a batch's requests one by one in array order: so requests are
 * handled one at a time in arrival order. Each event is answered by one emitted `outcome` with a
 * reply per request and the changes to persist; the service replies only once those are durable.
 *
 * Pure: no I/O and no clock or random source. Every event carries `now` (ms since the epoch), and
 * requests that choose a port carry a `random` draw in [0, 1). The table is a mutable object
 * owned by the context and changed only by this machine's actions, in event order: copying it per
 * event would cost O(leases) per grant.
 */
import { assign, emit, fromPromise, setup } from "xstate";
import type {
  AcquireRequest,
  ConflictRequest,
  LeaseFailure,
  ReleaseRequest,
  RenewRequest,
  StatusRequest,
} from "../../bus/schemas/lease.ts";
import { STATUS_LIMIT } from "../../bus/schemas/lease.ts";
import { LeaseTable, type LeaseChange, type LeaseState, type LeaseTableConfig } from "./table.ts";

/** One request as the machine receives it, already validated against its schema. */
export type LeaseRequest =
  | { readonly op: "acquire"; readonly body: AcquireRequest }
  | { readonly op: "renew"; readonly body: RenewRequest }
  | { readonly op: "conflict"; readonly body: ConflictRequest }
  | { readonly op: "release"; readonly body: ReleaseRequest }
  | { readonly op: "status"; readonly body: StatusRequest };

/** One queued request: its arrival number (echoed in the reply) and its random draw in [0, 1). */
export type QueuedRequest = LeaseRequest & { readonly seq: number; readonly random: number };

export type PortLeaseEvent =
  | { readonly type: "lock.acquired" }
  | { readonly type: "lock.lost" }
  /**
   * Requests in arrival order, handled one at a time in that order. The service sends what arrived
   * since its last send as one event: XState's per-event cost would otherwise bound throughput.
   */
  | { readonly type: "requests"; readonly now: number; readonly requests: readonly QueuedRequest[] }
  | { readonly type: "tick"; readonly now: number }
  | { readonly type: "stop" };

/** The reply to one request: matches its op's reply schema (`GrantReply`, `RenewReply`, ...). */
export interface LeaseReply {
  readonly seq: number;
  readonly reply: unknown;
}

/** Emitted for every `requests` event, tick and restore: the replies and what to persist. */
export interface LeaseOutcome {
  readonly type: "outcome";
  readonly replies: readonly LeaseReply[];
  readonly changes: readonly LeaseChange[];
}

export interface RestoreFailed {
  readonly type: "restore-failed";
  readonly error: unknown;
}

export interface PortLeaseInput {
  /** This instance's id, reported by `status`. */
  readonly instance: string;
  readonly table: LeaseTableConfig;
}

export interface PortLeaseContext {
  readonly instance: string;
  readonly table: LeaseTable;
}

const notActive: LeaseFailure = {
  ok: false,
  error: { code: "not-active", message: "this lease service instance is not active" },
};

/** Runs one request against the table. */
function handleOne(
  table: LeaseTable,
  instance: string,
  request: QueuedRequest,
  now: number,
  changes: LeaseChange[],
): unknown {
  switch (request.op) {
    case "acquire":
      return table.acquire(request.body, now, request.random, changes);
    case "renew":
      return table.renew(request.body, now, changes);
    case "conflict":
      return table.conflict(request.body, now, request.random, changes);
    case "release":
      return table.release(request.body, changes);
    case "status": {
      const { workerHost, after } = request.body;
      const { leases, busy } = table.snapshot(workerHost);
      const busyPart = busy.slice(0, STATUS_LIMIT);
      const reply = { ok: true, instance, busy: busyPart, conflicts: table.conflicts };
      if (after === undefined)
        return {
          ...reply,
          leases: leases.slice(0, STATUS_LIMIT),
          truncated: leases.length > STATUS_LIMIT || busy.length > STATUS_LIMIT,
        };
      // Lease ids never change, so a lease that lives through the whole paging is on one page.
      const rest = leases.filter((l) => l.leaseId > after).sort((a, b) => (a.leaseId < b.leaseId ? -1 : 1));
      const page = rest.slice(0, STATUS_LIMIT);
      const more = rest.length > STATUS_LIMIT;
      return {
        ...reply,
        leases: page,
        truncated: more || busy.length > STATUS_LIMIT,
        ...(more ? { next: page[page.length - 1]!.leaseId } : {}),
      };
    }
  }
}

/** Reclaims what expired by `now`, then runs the requests one by one in arrival order. */
function handle(context: PortLeaseContext, event: PortLeaseEvent): LeaseOutcome {
  const changes: LeaseChange[] = [];
  const replies: LeaseReply[] = [];
  if (event.type === "requests" || event.type === "tick") context.table.advance(event.now, changes);
  if (event.type === "requests")
    for (const request of event.requests)
      replies.push({
        seq: request.seq,
        reply: handleOne(context.table, context.instance, request, event.now, changes),
      });
  return { type: "outcome", replies, changes };
}

export const portLeaseMachine = setup({
  types: {
    context: {} as PortLeaseContext,
    events: {} as PortLeaseEvent,
    input: {} as PortLeaseInput,
    emitted: {} as LeaseOutcome | RestoreFailed,
  },
  actors: {
    /** Loads the persisted state; the service provides the KV-backed one. Default: nothing stored. */
    restore: fromPromise<LeaseState>(() => Promise.resolve({ leases: [], busy: [], conflicts: 0 })),
  },
  actions: {
    refuse: emit(({ event }) => ({
      type: "outcome" as const,
      replies: event.type === "requests" ? event.requests.map(({ seq }) => ({ seq, reply: notActive })) : [],
      changes: [],
    })),
    handle: emit(({ context, event }) => handle(context, event)),
    forget: assign({ table: ({ context }) => new LeaseTable(context.table.config) }),
  },
}).createMachine({
  id: "portLease",
  context: ({ input }) => ({ instance: input.instance, table: new LeaseTable(input.table) }),
  initial: "standby",
  on: { stop: ".stopped" },
  states: {
    standby: {
      on: { "lock.acquired": "recovering", requests: { actions: "refuse" } },
    },
    recovering: {
      invoke: {
        src: "restore",
        onDone: {
          target: "active",
          actions: emit(({ context, event }) => {
            const changes: LeaseChange[] = [];
            context.table.restore(event.output, changes);
            return { type: "outcome" as const, replies: [], changes };
          }),
        },
        onError: {
          target: "standby",
          actions: emit(({ event }) => ({ type: "restore-failed" as const, error: event.error })),
        },
      },
      on: { requests: { actions: "refuse" }, "lock.lost": { target: "standby", actions: "forget" } },
    },
    active: {
      on: {
        requests: { actions: "handle" },
        tick: { actions: "handle" },
        "lock.lost": { target: "standby", actions: "forget" },
      },
    },
    stopped: { type: "final", entry: "forget" },
  },
});
