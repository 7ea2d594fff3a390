/**
 * Events of target machines, for outside subscribers and for replay (docs/bus.md): every state
 * change and every log line of a target. The `v1` in the subjects is the schema version. States and
 * steps are the target machine's own lists.
 */
import { z } from "zod";
import { EpochMs } from "../../bus/schemas/lease.ts";
import { TARGET_STATES } from "../../machines/target/target.machine.ts";
import { CLEANUP_STEPS, MAIN_STEPS } from "../../machines/target/types.ts";

/** A run's id or a target's id as it appears in payloads (subjects carry it encoded). */
export const RunId = z.string().min(1).max(128);
export const TargetId = z.string().min(1).max(256);

/** The machine's top-level states, as the machine defines them (docs/target-machine.md). */
export const TargetState = z.enum(TARGET_STATES);
export type TargetState = z.infer<typeof TargetState>;

/** A step of the machine (`machines/target/types.ts`). */
export const StepName = z.enum([...MAIN_STEPS, ...CLEANUP_STEPS]);
export type StepName = z.infer<typeof StepName>;

/** Error codes are stable identifiers (`STEP_TIMEOUT`, `NO_RESPONDERS`, ...), never prose. */
export const ErrorCode = z
  .string()
  .regex(/^[A-Za-z0-9_.:-]{1,64}$/, "error code: 1 to 64 of A-Z a-z 0-9 _ . : -");

/** What failed: the step, its stable code, and a message for people (clipped). */
export const TargetError = z.object({
  step: StepName,
  code: ErrorCode,
  message: z.string().max(1000),
  retryable: z.boolean().optional(),
});
export type TargetError = z.infer<typeof TargetError>;

/** A target machine moved from one state (or step) to another. */
export const TargetStateChanged = z.object({
  run: RunId,
  target: TargetId,
  from: TargetState,
  to: TargetState,
  /** The step running in `to` (the sub-state of exchanging and shuttingDown, too). */
  step: StepName.optional(),
  /** The attempt of `step`, from 1. */
  attempt: z.int().min(1).optional(),
  at: EpochMs,
  /** Set when the change is due to a failure (e.g. to `shuttingDown` after a step failed, or `failed`). */
  error: TargetError.optional(),
});
export type TargetStateChanged = z.infer<typeof TargetStateChanged>;

export const LogLevel = z.enum(["debug", "info", "warn", "error"]);
export type LogLevel = z.infer<typeof LogLevel>;

/** One log line of a target: from sumac's own steps, or collected from the agent. */
export const TargetLogLine = z.object({
  run: RunId,
  target: TargetId,
  at: EpochMs,
  level: LogLevel,
  source: z.enum(["sumac", "agent"]),
  step: StepName.optional(),
  /** One line; longer ones are clipped by the publisher. */
  message: z.string().max(8192),
});
export type TargetLogLine = z.infer<typeof TargetLogLine>;
