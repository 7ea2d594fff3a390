/**
 * The subjects sumac uses on the Bus and the schema of what travels on each, defined once
 * (docs/bus.md is the description for outside subscribers). Every message is UTF-8 JSON, checked
 * with zod when it is encoded and when it is decoded.
 *
 * Versioning: the `v1` in every subject is the schema version. Within v1, fields may be added
 * (optional ones; decoders drop fields they do not know) but never removed, renamed or given a new
 * meaning. An incompatible change gets new `v2` subjects, published next to the v1 ones for a while.
 *
 * Run and target ids are encoded into one subject token each by {@link subjectToken}: ids made of
 * letters, digits and `-` stay as they are, every other character becomes `_` and two hex digits
 * (`web-01.example.com` becomes `web-01_2Eexample_2Ecom`). Payloads carry the ids as they are.
 */
import type { z } from "zod";
import { decodeJson, encodeJson } from "./bus.ts";
import { RunFinished, RunStarted } from "./schemas/run.ts";
import { TargetLogLine, TargetStateChanged } from "./schemas/target.ts";
import {
  AcquireRequest,
  ConflictRequest,
  GrantReply,
  LEASE_EVENT_SUBJECTS,
  LEASE_SUBJECTS,
  LeaseActiveEvent,
  LeaseConflictEvent,
  LeaseExpiredEvent,
  ReleaseReply,
  ReleaseRequest,
  RenewReply,
  RenewRequest,
  StatusReply,
  StatusRequest,
} from "./schemas/lease.ts";

export * from "./schemas/target.ts";
export * from "./schemas/run.ts";
export * from "./schemas/lease.ts";

/** The schema version in every subject. */
export const SCHEMA_VERSION = "v1";

/** A message that does not match its schema (or is not JSON): the field is named. */
export class MessageSchemaError extends Error {
  override readonly name = "MessageSchemaError";
  readonly code = "bad-message";
  readonly retryable = false;
  /** Each problem: the path of the field (dot-separated, `(root)` for the whole) and what is wrong. */
  readonly issues: readonly { readonly path: string; readonly message: string }[];
  constructor(
    what: string,
    issues: readonly { readonly path: string; readonly message: string }[],
    options?: ErrorOptions,
  ) {
    super(`${what}: ${issues.map((i) => `${i.path}: ${i.message}`).join("; ")}`, options);
    this.issues = issues;
  }
}

const PLAIN = /^[A-Za-z0-9-]+$/;
const MAX_ID_LENGTH = 256;

/** The subject token of a run or target id; see the file comment. */
export function subjectToken(id: string): string {
  if (id.length === 0 || id.length > MAX_ID_LENGTH) {
    throw new MessageSchemaError("subject token", [
      { path: "(id)", message: `1 to ${MAX_ID_LENGTH} characters` },
    ]);
  }
  if (PLAIN.test(id)) return id;
  let out = "";
  for (const byte of new TextEncoder().encode(id)) {
    const c = String.fromCharCode(byte);
    out += byte < 0x80 && /[A-Za-z0-9-]/.test(c) ? c : `_${byte.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}

/** The id a subject token stands for (the inverse of {@link subjectToken}). */
export function fromSubjectToken(token: string): string {
  const bytes: number[] = [];
  for (let i = 0; i < token.length; i++) {
    if (token[i] === "_") {
      const hex = token.slice(i + 1, i + 3);
      if (!/^[0-9A-F]{2}$/.test(hex)) {
        throw new MessageSchemaError("subject token", [
          { path: "(token)", message: `bad escape _${hex} in ${token}` },
        ]);
      }
      bytes.push(Number.parseInt(hex, 16));
      i += 2;
    } else {
      bytes.push(token.charCodeAt(i));
    }
  }
  return new TextDecoder().decode(new Uint8Array(bytes));
}

/** Subjects of run and target events; `*` patterns for subscribers are in {@link EVENT_PATTERNS}. */
export const subjects = {
  /** {@link TargetStateChanged} */
  targetState: (run: string, target: string): string =>
    `sumac.v1.target.${subjectToken(run)}.${subjectToken(target)}.state`,
  /** {@link TargetLogLine} */
  targetLog: (run: string, target: string): string =>
    `sumac.v1.target.${subjectToken(run)}.${subjectToken(target)}.log`,
  /** {@link RunStarted} */
  runStarted: (run: string): string => `sumac.v1.run.${subjectToken(run)}.started`,
  /** {@link RunFinished} */
  runFinished: (run: string): string => `sumac.v1.run.${subjectToken(run)}.finished`,
} as const;

/** Patterns an outside subscriber uses. */
export const EVENT_PATTERNS = {
  /** Every event of every run. */
  all: "sumac.v1.>",
  targetStates: "sumac.v1.target.*.*.state",
  targetLogs: "sumac.v1.target.*.*.log",
  runs: "sumac.v1.run.*.*",
  /** Every event of one run: `sumac.v1.target.<run>.>` and `sumac.v1.run.<run>.*`. */
  ofRun: (run: string): readonly string[] => [
    `sumac.v1.target.${subjectToken(run)}.>`,
    `sumac.v1.run.${subjectToken(run)}.*`,
  ],
} as const;

/** The durable stream that keeps run and target events (read back for reports and replay). */
export const EVENT_STREAM = {
  name: "sumac_events_v1",
  subjects: ["sumac.v1.target.>", "sumac.v1.run.>"],
} as const;

/** Which schema a subject's messages follow. */
const BY_PATTERN: readonly (readonly [string, z.ZodType])[] = [
  ["sumac.v1.target.*.*.state", TargetStateChanged],
  ["sumac.v1.target.*.*.log", TargetLogLine],
  ["sumac.v1.run.*.started", RunStarted],
  ["sumac.v1.run.*.finished", RunFinished],
  [LEASE_SUBJECTS.acquire, AcquireRequest],
  [LEASE_SUBJECTS.renew, RenewRequest],
  [LEASE_SUBJECTS.conflict, ConflictRequest],
  [LEASE_SUBJECTS.release, ReleaseRequest],
  [LEASE_SUBJECTS.status, StatusRequest],
  [LEASE_EVENT_SUBJECTS.conflict, LeaseConflictEvent],
  [LEASE_EVENT_SUBJECTS.expired, LeaseExpiredEvent],
  [LEASE_EVENT_SUBJECTS.active, LeaseActiveEvent],
];

/** Schemas of the replies to the lease requests, by request subject. */
export const LEASE_REPLIES = {
  [LEASE_SUBJECTS.acquire]: GrantReply,
  [LEASE_SUBJECTS.renew]: RenewReply,
  [LEASE_SUBJECTS.conflict]: GrantReply,
  [LEASE_SUBJECTS.release]: ReleaseReply,
  [LEASE_SUBJECTS.status]: StatusReply,
} as const;

function matches(pattern: string, subject: string): boolean {
  const p = pattern.split(".");
  const s = subject.split(".");
  return p.length === s.length && p.every((t, i) => t === "*" || t === s[i]);
}

/** The schema of the messages on `subject` (requests, for the lease subjects), if sumac defines one. */
export function schemaFor(subject: string): z.ZodType | undefined {
  return BY_PATTERN.find(([pattern]) => matches(pattern, subject))?.[1];
}

function issuesOf(error: z.ZodError): { path: string; message: string }[] {
  return error.issues.map((i) => ({
    path: i.path.length === 0 ? "(root)" : i.path.map(String).join("."),
    message: i.message,
  }));
}

/**
 * Checks `value` against `schema` and encodes it as UTF-8 JSON.
 *
 * @example
 * await bus.publish(subjects.targetState(run, target), encode(TargetStateChanged, change));
 */
export function encode<S extends z.ZodType>(schema: S, value: z.input<S>): Uint8Array {
  const result = schema.safeParse(value);
  if (!result.success) throw new MessageSchemaError("cannot encode message", issuesOf(result.error));
  return encodeJson(result.data);
}

/**
 * Decodes UTF-8 JSON and checks it against `schema`; `MessageSchemaError` (code `bad-message`)
 * names the field that is wrong. Fields the schema does not know are dropped.
 *
 * @example
 * const change = decode(TargetStateChanged, message.data);
 */
export function decode<S extends z.ZodType>(schema: S, data: Uint8Array): z.output<S> {
  let json: unknown;
  try {
    json = decodeJson(data);
  } catch (err) {
    throw new MessageSchemaError("bad message", [{ path: "(root)", message: "not UTF-8 JSON" }], {
      cause: err,
    });
  }
  const result = schema.safeParse(json);
  if (!result.success) throw new MessageSchemaError("bad message", issuesOf(result.error));
  return result.data;
}
