import { oneLine } from "../../../base/text.ts";
import { fieldsOf, intField, listField, stringField } from "../request-fields.ts";
import { withDeadline } from "../../../base/deadline.ts";
import { DeadlineExceededError } from "../../protocol/errors.ts";
import { runCommand } from "../run-command.ts";
import type { OperationContext, OperationHandler } from "./context.ts";

const MAX_COMPONENTS = 1000;
const MAX_VERSION_CHARS = 256;
/** The string returned as the version of a component that is not installed. */
export const ABSENT = "absent";

/**
 * Inventory: runs each component's detect command, one after another (detects are quick, and
 * running them in parallel would load the target while it serves), each with its own deadline.
 * Exit 0: installed, the version is stdout's first non-empty line. The component's absent exit
 * code (default 1): "absent". Anything else: "failed", the exit code says more.
 */
export function inventoryOperation(context: OperationContext): OperationHandler {
  const { settings, log } = context;
  const { limits } = settings;
  return async (args, _facts, signal) => {
    const components = listField(fieldsOf(args, "Inventory"), "component", MAX_COMPONENTS).map((c) => ({
      id: stringField(c, "id", 256),
      detectCommand: stringField(c, "detectCommand", 8192),
      absentExitCode: intField(c, "absentExitCode", { min: 0, max: 255, fallback: 1 }),
      timeoutMs: intField(c, "timeoutMs", {
        min: 1,
        max: limits.detectTimeoutMs,
        fallback: limits.detectTimeoutMs,
      }),
    }));
    const results = [];
    for (const c of components) {
      signal.throwIfAborted();
      const timeout = new DeadlineExceededError(`detect of ${c.id} did not finish within ${c.timeoutMs} ms`);
      const result = await withDeadline({ ms: c.timeoutMs, timeout }, (deadline) =>
        runCommand(c.detectCommand, {
          cwd: settings.stagingDir,
          signal: AbortSignal.any([signal, deadline]),
          maxOutputBytes: limits.maxOutputBytes,
        }),
      );
      const version =
        result.exitCode === 0
          ? oneLine(result.stdout.split("\n").find((l) => l.trim() !== "") ?? "", MAX_VERSION_CHARS).trim()
          : ABSENT;
      const status =
        result.exitCode === 0 ? "installed" : result.exitCode === c.absentExitCode ? "absent" : "failed";
      log.write(
        "info",
        `inventory ${oneLine(c.id)}: ${status} ${status === "installed" ? version : `exit ${result.exitCode}`}`,
      );
      results.push({ id: c.id, status, version, exitCode: result.exitCode });
    }
    return { component: results };
  };
}
