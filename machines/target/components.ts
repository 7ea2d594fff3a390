/**
 * Which components a target needs, from its inventory: HP SUM's rules. A component whose installed
 * version is current is skipped unless `rewrite`; one whose installed version is newer is skipped
 * unless `downgrade`; an older or missing one is installed.
 */
import { errorClass } from "../../base/errors.ts";
import type { ComponentPlan, ComponentSpec, StepError } from "./types.ts";

/** Longest version string accepted; longer ones are refused, not truncated. */
export const MAX_VERSION_LENGTH = 64;

const VERSION_CHARS = /^[A-Za-z0-9._+~-]+$/;

/** A version string that cannot be compared. */
export class InvalidVersionError extends errorClass("INVALID_VERSION") {
  readonly version: string;
  constructor(version: string, problem: string, options?: ErrorOptions) {
    super(`version ${JSON.stringify(version.slice(0, MAX_VERSION_LENGTH + 1))} ${problem}`, options);
    this.version = version;
  }
}

/** Why `version` cannot be compared, or null when it can. */
export function versionProblem(version: string): string | null {
  if (version.length === 0) return "is empty";
  if (version.length > MAX_VERSION_LENGTH) return `is longer than ${MAX_VERSION_LENGTH} characters`;
  if (!VERSION_CHARS.test(version)) return "may hold only letters, digits and . _ + ~ -";
  if (!/[A-Za-z0-9]/.test(version)) return "has no letter or digit";
  return null;
}

// Tokens: runs of digits, runs of letters, and "~" (which sorts before anything, even the end, so
// 2.0~rc1 < 2.0). Other separators only split.
function tokens(version: string): string[] {
  return version.match(/[0-9]+|[A-Za-z]+|~/g) ?? [];
}

function compareNumeric(a: string, b: string): number {
  const x = a.replace(/^0+/, "");
  const y = b.replace(/^0+/, "");
  // By length first, then by digits: exact for any length, no Number overflow.
  if (x.length !== y.length) return x.length < y.length ? -1 : 1;
  return x < y ? -1 : x > y ? 1 : 0;
}

/**
 * Compares two versions segment by segment: numbers numerically, letters by code point, a number
 * newer than letters (1.0.1 > 1.0.a), more segments newer (1.0.1 > 1.0), `~` older than anything.
 *
 * @throws {InvalidVersionError} when either version fails {@link versionProblem}.
 * @example compareVersions("2.10.0", "2.9.1") // 1
 */
export function compareVersions(a: string, b: string): -1 | 0 | 1 {
  for (const v of [a, b]) {
    const problem = versionProblem(v);
    if (problem) throw new InvalidVersionError(v, problem);
  }
  const ta = tokens(a);
  const tb = tokens(b);
  for (let i = 0; ; i++) {
    const x = ta[i];
    const y = tb[i];
    if (x === "~" || y === "~") {
      if (x === y) continue;
      return x === "~" ? -1 : 1;
    }
    if (x === undefined || y === undefined) return x === y ? 0 : x === undefined ? -1 : 1;
    const xNum = x.charCodeAt(0) <= 57;
    const yNum = y.charCodeAt(0) <= 57;
    if (xNum !== yNum) return xNum ? 1 : -1;
    const c = xNum ? compareNumeric(x, y) : x < y ? -1 : x > y ? 1 : 0;
    if (c !== 0) return c < 0 ? -1 : 1;
  }
}

export interface DecisionOptions {
  rewrite: boolean;
  downgrade: boolean;
}

/**
 * The decision for one component given its installed version (null when absent).
 *
 * @throws {InvalidVersionError} when a version cannot be compared.
 */
export function decideComponent(
  spec: ComponentSpec,
  installedVersion: string | null,
  options: DecisionOptions,
): ComponentPlan {
  const base = { id: spec.id, version: spec.version, installedVersion };
  if (installedVersion === null) {
    const problem = versionProblem(spec.version);
    if (problem) throw new InvalidVersionError(spec.version, problem);
    return { ...base, action: "install", reason: "not-installed" };
  }
  const c = compareVersions(installedVersion, spec.version);
  if (c < 0) return { ...base, action: "update", reason: "older-installed" };
  if (c === 0) {
    return options.rewrite
      ? { ...base, action: "rewrite", reason: "current, rewrite" }
      : { ...base, action: "skip", reason: "current" };
  }
  return options.downgrade
    ? { ...base, action: "downgrade", reason: "newer-installed, downgrade" }
    : { ...base, action: "skip", reason: "newer-installed" };
}

/** A plan, or the inventory error that prevented it (never throws: the machine's guards call it). */
export type PlanResult = { ok: true; plan: ComponentPlan[] } | { ok: false; error: StepError };

/**
 * Decides every component of the package against an inventory. A component missing from the
 * inventory counts as not installed.
 */
export function planComponents(
  components: readonly ComponentSpec[],
  installed: Readonly<Record<string, string | null>>,
  options: DecisionOptions,
): PlanResult {
  const plan: ComponentPlan[] = [];
  for (const spec of components) {
    const found = Object.hasOwn(installed, spec.id) ? installed[spec.id] : null;
    try {
      plan.push(decideComponent(spec, found ?? null, options));
    } catch (error) {
      if (!(error instanceof InvalidVersionError)) throw error;
      const message = `component ${spec.id}: ${error.message}`;
      return { ok: false, error: { code: error.code, retryable: false, message } };
    }
  }
  return { ok: true, plan };
}

/** The components of a plan that will be installed, in package order. */
export function toInstall(plan: readonly ComponentPlan[] | null): ComponentPlan[] {
  return plan ? plan.filter((p) => p.action !== "skip") : [];
}
