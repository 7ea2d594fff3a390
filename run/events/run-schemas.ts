/**
 * Events of runs (one `sumac deploy` of a job over its targets), for outside subscribers
 * (docs/bus.md). The `v1` in the subjects is the schema version.
 */
import { z } from "zod";
import { EpochMs } from "../../bus/schemas/lease.ts";
import { RunId } from "./target-schemas.ts";

const Count = z.int().min(0);

/** A run began: how many targets it covers. */
export const RunStarted = z.object({
  run: RunId,
  at: EpochMs,
  /** The job's name, when it has one. */
  job: z.string().min(1).max(64).optional(),
  targets: Count,
  /** Whether this run only takes inventory (nothing is installed). */
  inventoryOnly: z.boolean(),
});
export type RunStarted = z.infer<typeof RunStarted>;

/** A run ended: `succeeded` when every target did, `cancelled` when the operator stopped it. */
export const RunFinished = z.object({
  run: RunId,
  at: EpochMs,
  status: z.enum(["succeeded", "failed", "cancelled"]),
  targets: z.object({ succeeded: Count, failed: Count, cancelled: Count }),
  /** Time from start to finish, in ms. */
  durationMs: Count,
});
export type RunFinished = z.infer<typeof RunFinished>;
