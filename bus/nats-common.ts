/**
 * What the parts of the NATS adapter share: input checks (names, subjects, sizes), deadlines, and
 * the mapping of the nats.js 3.x error classes to `BusError` codes.
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

/** The payload limit of both adapters (NATS' default `max_payload`). */
export const MAX_PAYLOAD = 1024 * 1024;

const NAME = /^[A-Za-z0-9_-]+$/;
const TOKEN = /^[A-Za-z0-9_-]+$/;
const KEY_TOKEN = /^[A-Za-z0-9_=-]+$/;
/** JetStream API error 10054: "message size exceeds maximum allowed". */
const MESSAGE_TOO_LARGE = 10054;

/** Stream, bucket and queue names. */
export function checkName(kind: string, name: string): void {
  if (!NAME.test(name))
    throw new BusError("bad-subject", `${kind} name ${JSON.stringify(name)} is not [A-Za-z0-9_-]+`);
}

function checkTokens(what: string, value: string, token: RegExp, wildcards: boolean): void {
  const parts = value.split(".");
  parts.forEach((t, i) => {
    if (token.test(t)) return;
    if (wildcards && (t === "*" || (t === ">" && i === parts.length - 1))) return;
    throw new BusError(
      "bad-subject",
      `${what} ${JSON.stringify(value)} has an invalid token ${JSON.stringify(t)}`,
    );
  });
}

/** A concrete subject: tokens of `[A-Za-z0-9_-]` separated by dots. */
export function checkSubject(subject: string): void {
  checkTokens("subject", subject, TOKEN, false);
}

/** A subject pattern: like a subject, and `*` tokens or a last `>` token. */
export function checkPattern(pattern: string): void {
  checkTokens("subject pattern", pattern, TOKEN, true);
}

/** A KV key (`wildcards` for a key filter). */
export function checkKey(key: string, wildcards = false): void {
  checkTokens("key", key, KEY_TOKEN, wildcards);
}

/** Whether `subject` matches the NATS pattern `pattern`. */
export function subjectMatches(pattern: string, subject: string): boolean {
  const p = pattern.split(".");
  const s = subject.split(".");
  for (let i = 0; i < p.length; i++) {
    if (p[i] === ">") return s.length > i;
    if (i >= s.length || (p[i] !== "*" && p[i] !== s[i])) return false;
  }
  return p.length === s.length;
}

/** `too-large` before anything is sent. */
export function checkSize(data: Uint8Array, headerBytes = 0, serverMax = MAX_PAYLOAD): void {
  if (data.length > MAX_PAYLOAD) {
    throw new BusError("too-large", `payload of ${data.length} bytes is over the ${MAX_PAYLOAD}-byte limit`);
  }
  if (data.length + headerBytes > serverMax) {
    // JetStream writes carry headers (message id, expected revision) that count against the
    // server's max_payload; a server configured with a larger max_payload leaves room for them.
    throw new BusError(
      "too-large",
      `payload of ${data.length} bytes plus ${headerBytes} bytes of JetStream headers is over the server's ${serverMax}-byte max_payload`,
    );
  }
}

/** Milliseconds left until `at` (an absolute `performance.now()` time), at least 0. */
export function remaining(at: number): number {
  return Math.max(0, at - performance.now());
}

/** Runs `fn` now and turns what it returns or throws into a promise. */
export function settle<T>(fn: () => T): Promise<T> {
  return new Promise((resolve) => resolve(fn()));
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Races `work` against a timer; the `timeout` error is created when the timer is armed so that its
 * stack names the operation.
 */
export async function withDeadline<T>(
  what: string,
  ms: number,
  work: Promise<T>,
  signal?: AbortSignal,
): Promise<T> {
  const timeout = new BusError("timeout", `${what}: no answer within ${Math.round(ms)} ms`);
  let timer: NodeJS.Timeout | undefined;
  let onAbort: (() => void) | undefined;
  try {
    return await Promise.race([
      work,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(timeout), ms);
        if (signal) {
          onAbort = () =>
            reject(signal.reason instanceof Error ? signal.reason : new Error(String(signal.reason)));
          if (signal.aborted) onAbort();
          else signal.addEventListener("abort", onAbort, { once: true });
        }
      }),
    ]);
  } finally {
    clearTimeout(timer);
    if (onAbort) signal?.removeEventListener("abort", onAbort);
  }
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
      (e instanceof BusError && (e.code === "unavailable" || e.code === "timeout"))
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
    return new BusError(closedByUs ? "closed" : "unavailable", message, { cause: err });
  }
  if (err instanceof InvalidSubjectError) return new BusError("bad-subject", message, { cause: err });
  if (err instanceof TimeoutError) return new BusError("timeout", message, { cause: err });
  if (err instanceof RequestError && err.isNoResponders()) {
    return new BusError("no-responders", message, { cause: err });
  }
  if (err instanceof JetStreamApiError) {
    if (
      err.code === JetStreamApiCodes.StreamWrongLastSequence ||
      err.code === JetStreamApiCodes.StreamWrongLastSequenceUnknown
    ) {
      return new BusError("revision-mismatch", message, { cause: err });
    }
    if (err.code === MESSAGE_TOO_LARGE) return new BusError("too-large", message, { cause: err });
  }
  return new BusError("unavailable", message, { cause: err });
}
