/**
 * What a target machine's snapshots mean to the operator: a state change worth an event (state,
 * step, component, attempt, or a wait for a retry), and the steps' durations, recorded from the
 * transitions as they are seen. Pure: the time is passed in.
 */
import type { TargetError, TargetState } from "./subjects.ts";
import { toInstall } from "../../machines/target/components.ts";
import type { CancelMode, StepFailure, StepName, TargetContext } from "../../machines/target/types.ts";
import type { StepRecord } from "../report-types.ts";

/** The part of a machine snapshot this file reads. */
export interface MachineSnapshotLike {
  readonly value: unknown;
  readonly context: TargetContext;
}

/** A snapshot, reduced to what the operator sees. */
export interface MachineView {
  state: TargetState;
  step: StepName | null;
  attempt: number;
  retrying: boolean;
  /** The component being installed, in `install`. */
  component: string | null;
  cancel: CancelMode;
  /** Failures recorded so far (the deciding one and the secondary ones). */
  failures: number;
}

/** A change to publish (without run, target and time, which the caller adds). */
export interface ViewChange {
  from: TargetState;
  to: TargetState;
  step?: StepName;
  attempt?: number;
  component?: string;
  retrying?: boolean;
  /** The bus's error, and the component when the failure was an install's (dropped on the bus). */
  error?: TargetError & { component?: string };
}

function leafAndTop(value: unknown): { top: string; leaf: string } {
  if (typeof value === "string") return { top: value, leaf: value };
  let v: unknown = value;
  let top = "";
  while (typeof v === "object" && v !== null) {
    const first = Object.entries(v)[0];
    if (!first) break;
    if (top === "") top = first[0];
    v = first[1];
  }
  return { top, leaf: String(v) };
}

/** The view of a snapshot. */
export function viewOf(snapshot: MachineSnapshotLike): MachineView {
  const { top, leaf } = leafAndTop(snapshot.value);
  const c = snapshot.context;
  const component = c.step === "install" ? (toInstall(c.plan)[c.installIndex]?.id ?? null) : null;
  return {
    state: top as TargetState,
    step: c.step,
    attempt: c.attempt,
    retrying: leaf === "retrying",
    component,
    cancel: c.cancel,
    failures: (c.failure === null ? 0 : 1) + c.secondaryFailures.length,
  };
}

const CODE = /^[A-Za-z0-9_.:-]{1,64}$/;

/** A step error in the bus schema's terms: the code made a valid identifier, the message clipped. */
export function busError(
  step: StepName,
  code: string,
  message: string,
  retryable: boolean,
): TargetError & { component?: string } {
  const safeCode = CODE.test(code) ? code : code.replace(/[^A-Za-z0-9_.:-]/g, "_").slice(0, 64) || "UNKNOWN";
  const clipped = message.length > 1000 ? `${message.slice(0, 999)}…` : message;
  return { step, code: safeCode, message: clipped, retryable };
}

function newFailure(prev: TargetContext | null, next: TargetContext): StepFailure | null {
  if (next.failure !== null && prev?.failure == null) return next.failure;
  const before = prev?.secondaryFailures.length ?? 0;
  return next.secondaryFailures.length > before ? (next.secondaryFailures.at(-1) ?? null) : null;
}

const FINAL = new Set<TargetState>(["succeeded", "failed", "cancelled"]);

/**
 * Follows one target machine's snapshots: `observe` each one as it comes, in order; it returns the
 * change to publish, if any, and keeps the steps' records (`steps`).
 */
export class TargetTracker {
  readonly steps: StepRecord[] = [];
  #view: MachineView | null = null;
  #context: TargetContext | null = null;
  #open: StepRecord | null = null;

  /** The last view seen. */
  get view(): MachineView | null {
    return this.#view;
  }

  observe(snapshot: MachineSnapshotLike, now: number): ViewChange | null {
    const prev = this.#view;
    const prevContext = this.#context;
    const next = viewOf(snapshot);
    const c = snapshot.context;
    this.#view = next;
    this.#context = c;
    const failure = next.failures > (prev?.failures ?? 0) ? newFailure(prevContext, c) : null;
    const cancelled = prev !== null && prev.cancel !== next.cancel;
    this.#record(next, failure, cancelled, now);
    if (
      prev !== null &&
      prev.state === next.state &&
      prev.step === next.step &&
      prev.component === next.component &&
      prev.attempt === next.attempt &&
      prev.retrying === next.retrying
    )
      return null;
    if (prev === null && next.state === "queued") return null;
    const change: ViewChange = { from: prev?.state ?? "queued", to: next.state };
    if (next.step !== null && !FINAL.has(next.state)) {
      change.step = next.step;
      if (next.attempt >= 1) change.attempt = next.attempt;
      if (next.component !== null) change.component = next.component;
      if (next.retrying) change.retrying = true;
    }
    // Entering `failed`: the failure that decided it (recorded on an earlier change).
    const deciding = failure ?? (next.state === "failed" ? c.failure : null);
    if (deciding) {
      change.error = busError(deciding.step, deciding.code, deciding.message, deciding.retryable);
      if (deciding.componentId !== undefined) change.error.component = deciding.componentId;
    } else if (next.retrying && c.lastError && next.step) {
      change.error = busError(next.step, c.lastError.code, c.lastError.message, c.lastError.retryable);
      if (next.component !== null) change.error.component = next.component;
    }
    return change;
  }

  /** Closes the open record when the step (or component) changed, opens the next one. */
  #record(next: MachineView, failure: StepFailure | null, cancelled: boolean, now: number): void {
    const open = this.#open;
    const sameStep =
      open !== null &&
      !FINAL.has(next.state) &&
      open.step === next.step &&
      (open.component ?? null) === next.component;
    if (open && sameStep) {
      open.attempts = Math.max(open.attempts, next.attempt);
      if (failure && failure.step === open.step) open.status = "failed";
      return;
    }
    if (open) {
      open.durationMs = Math.max(0, now - open.startedAt);
      if (failure && failure.step === open.step) open.status = "failed";
      else if (cancelled && open.status === "ok") open.status = "aborted";
      this.#open = null;
    }
    if (next.step !== null && !FINAL.has(next.state)) {
      const record: StepRecord = {
        step: next.step,
        ...(next.component === null ? {} : { component: next.component }),
        attempts: Math.max(1, next.attempt),
        startedAt: now,
        durationMs: 0,
        status: "ok",
      };
      this.steps.push(record);
      this.#open = record;
    }
  }

  /** Closes a record still open (the machine broke): it ran until `now`. */
  close(now: number, status: StepRecord["status"]): void {
    if (this.#open === null) return;
    this.#open.durationMs = Math.max(0, now - this.#open.startedAt);
    this.#open.status = status;
    this.#open = null;
  }
}
