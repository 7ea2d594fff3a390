/**
 * The subjects of run and target events, and the schema of what travels on each (docs/bus.md is
 * the description for outside subscribers). Subject tokens, encoding and decoding are the bus's
 * (bus/subjects.ts); the schemas are in `target-schemas.ts` and `run-schemas.ts`, and a target's
 * states there come from the target machine itself.
 */
import type { z } from "zod";
import {
  AcquireRequest,
  ConflictRequest,
  LEASE_EVENT_SUBJECTS,
  LEASE_SUBJECTS,
  LeaseActiveEvent,
  LeaseConflictEvent,
  LeaseExpiredEvent,
  ReleaseRequest,
  RenewRequest,
  StatusRequest,
  subjectToken,
} from "../../bus/subjects.ts";
import { RunFinished, RunStarted } from "./run-schemas.ts";
import { TargetLogLine, TargetStateChanged } from "./target-schemas.ts";

export * from "./target-schemas.ts";
export * from "./run-schemas.ts";

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

function matches(pattern: string, subject: string): boolean {
  const p = pattern.split(".");
  const s = subject.split(".");
  return p.length === s.length && p.every((t, i) => t === "*" || t === s[i]);
}

/** The schema of the messages on `subject` (requests, for the lease subjects), if sumac defines one. */
export function schemaFor(subject: string): z.ZodType | undefined {
  return BY_PATTERN.find(([pattern]) => matches(pattern, subject))?.[1];
}
