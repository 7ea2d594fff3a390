/**
 * What the parts of the NATS adapter share: the size check (with headers and the server's limit),
 * deadlines, and the mapping of the nats.js 3.x error classes to `BusError` codes; the rules on
 * names and subjects come from `subject-rules.ts`, shared with the in-process adapter.
 */
import {
  ClosedConnectionError,
  ConnectionError,
  DrainingConnectionError,
  InvalidSubjectError,
  NoRespondersError,
  RequestError,
  TimeoutError,
} from "@nats-io/transport-node";
import { JetStreamApiCodes, JetStreamApiError } from "@nats-io/jetstream";
import { BusError } from "./bus.ts";
import { MAX_PAYLOAD } from "./subject-rules.ts";

export {
  checkKey,
  checkName,
  checkPattern,
  checkSubject,
  MAX_PAYLOAD,
  settle,
  subjectMatches,
} from "./subject-rules.ts";

/** JetStream API error 10054: "message size exceeds maximum allowed". */
const MESSAGE_TOO_LARGE = 10054;

/** `MESSAGE_TOO_LARGE` before anything is sent. */
export function checkSize(data: Uint8Array, headerBytes = 0, serverMax = MAX_PAYLOAD): void {
  if (data.length > MAX_PAYLOAD) {
    throw new BusError(
      "MESSAGE_TOO_LARGE",
      `payload of ${data.length} bytes is over the ${MAX_PAYLOAD}-byte limit`,
    );
  }
  if (data.length + headerBytes > serverMax) {
    // JetStream writes carry headers (message id, expected revision) that count against the
    // server's max_payload; a server configured with a larger max_payload leaves room for them.
    throw new BusError(
      "MESSAGE_TOO_LARGE",
      `payload of ${data.length} bytes plus ${headerBytes} bytes of JetStream headers is over the server's ${serverMax}-byte max_payload`,
    );
  }
}

/** Milliseconds left until `at` (an absolute `performance.now()` time), at least 0. */
export function remaining(at: number): number {
  return Math.max(0, at - performance.now());
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Whether an error says "the server (or the path to it) is away for now": worth a retry. */
export function isTransient(err: unknown): boolean {
  // nats.js wraps a JetStream request that met no responders (JetStream not up yet after a
  // restart) in an error whose class is not exported; its cause is the RequestError.
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 4; e = e.cause, depth++) {
    if (
      e instanceof TimeoutError ||
      e instanceof ConnectionError ||
      e instanceof NoRespondersError ||
      (e instanceof RequestError && e.isNoResponders()) ||
      (e instanceof BusError && (e.code === "BUS_UNAVAILABLE" || e.code === "TIMEOUT"))
    ) {
      return true;
    }
  }
  return false;
}

/** Whether `err` is the JetStream API error `code` (e.g. `JetStreamApiCodes.StreamNotFound`). */
export function isApiError(err: unknown, code: number): boolean {
  return err instanceof JetStreamApiError && err.code === code;
}

/** Maps an error of nats.js 3.x to a `BusError`, by class and API error code. */
export function toBusError(what: string, err: unknown, closedByUs: boolean): BusError {
  if (err instanceof BusError) return err;
  const message = `${what}: ${err instanceof Error ? err.message : String(err)}`;
  if (err instanceof ClosedConnectionError || err instanceof DrainingConnectionError) {
    return new BusError(closedByUs ? "BUS_CLOSED" : "BUS_UNAVAILABLE", message, { cause: err });
  }
  if (err instanceof InvalidSubjectError) return new BusError("BAD_SUBJECT", message, { cause: err });
  if (err instanceof TimeoutError) return new BusError("TIMEOUT", message, { cause: err });
  if (err instanceof RequestError && err.isNoResponders()) {
    return new BusError("NO_RESPONDERS", message, { cause: err });
  }
  if (err instanceof JetStreamApiError) {
    if (
      err.code === JetStreamApiCodes.StreamWrongLastSequence ||
      err.code === JetStreamApiCodes.StreamWrongLastSequenceUnknown
    ) {
      return new BusError("REVISION_MISMATCH", message, { cause: err });
    }
    if (err.code === MESSAGE_TOO_LARGE) return new BusError("MESSAGE_TOO_LARGE", message, { cause: err });
  }
  return new BusError("BUS_UNAVAILABLE", message, { cause: err });
}
