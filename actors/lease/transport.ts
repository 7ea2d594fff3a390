/**
 * How a lease client reaches the service: over the Bus (JSON on the `sumac.v1.lease.*` subjects),
 * or, when the service runs in the same process (the embedded default), by a direct call that
 * skips encoding but goes through the same queue, machine and group commit
 * (`LeaseService.transport()`).
 */
import { Buffer } from "node:buffer";
import type { Bus, Deadline } from "../../bus/bus.ts";
import { LEASE_SUBJECTS } from "../../bus/schemas/lease.ts";

export type LeaseOp = keyof typeof LEASE_SUBJECTS;

export interface LeaseTransport {
  /**
   * Sends one request and resolves with the reply as a plain value (still to be validated unless
   * `trusted`). Rejects with a `BusError`; the client retries the retryable ones.
   */
  request(op: LeaseOp, body: unknown, deadline: Deadline): Promise<unknown>;
  /**
   * Both ends are in this process: replies are built by the service itself and need no validation,
   * and the service takes requests as valid (the `LeaseClient` checks what its callers give it).
   */
  readonly trusted: boolean;
}

/** UTF-8 JSON through Buffer: several times faster than TextEncoder for small messages. */
export function toJson(value: unknown): Uint8Array {
  return Buffer.from(JSON.stringify(value));
}

export function fromJson(data: Uint8Array): unknown {
  return JSON.parse(Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString("utf8")) as unknown;
}

/** Requests over the Bus. */
export function busTransport(bus: Bus): LeaseTransport {
  return {
    trusted: false,
    request(op, body, deadline) {
      let data: Uint8Array;
      try {
        data = toJson(body);
      } catch (err) {
        return Promise.reject(err instanceof Error ? err : new Error(String(err)));
      }
      return bus.request(LEASE_SUBJECTS[op], data, deadline).then((m) => fromJson(m.data));
    },
  };
}
