import { DeadlineExceededError, InstallInProgressError } from "../../protocol/errors.ts";
import { oneLine } from "../../../base/text.ts";
import { withDeadline } from "../../../base/deadline.ts";
import { fieldsOf, intField, stringField } from "../request-fields.ts";
import { runCommand } from "../run-command.ts";
import type { OperationContext, OperationHandler } from "./context.ts";
import { installOutput, PROGRESS_MARKER, REBOOT_MARKER } from "./install-output.ts";

/**
 * Exit codes that mean "installed, reboot to finish": the Windows Installer's
 * ERROR_SUCCESS_REBOOT_REQUIRED and ERROR_SUCCESS_REBOOT_INITIATED, which HP SUM components use too.
 * POSIX exit codes stop at 255, so on Linux only the {@link REBOOT_MARKER} line can say it.
 */
export const REBOOT_EXIT_CODES: readonly number[] = [3010, 1641];
export { PROGRESS_MARKER, REBOOT_MARKER };

/**
 * Install: runs the component's install command in the staging directory with a deadline,
 * streaming its output lines to the log. Never two at once: a second request while one runs gets
 * INSTALL_IN_PROGRESS (retryable). The exit code is returned as is; deciding what counts as
 * success is the workstation's business. A forced stop (`installs.stop`: a Shutdown with force,
 * the agent stopped by a signal) ends its process group, SIGTERM then SIGKILL, and it fails with
 * INSTALL_STOPPED.
 */
export function installOperation(context: OperationContext): OperationHandler {
  const { settings, log, installs, callback } = context;
  const { limits } = settings;
  return async (args) => {
    const fields = fieldsOf(args, "Install");
    const componentId = stringField(fields, "componentId", 256);
    const command = stringField(fields, "command", 8192);
    const timeoutMs = intField(fields, "timeoutMs", {
      min: 1,
      max: limits.maxInstallTimeoutMs,
      fallback: limits.installTimeoutMs,
    });
    if (installs.current !== undefined) throw new InstallInProgressError("another install is running");

    const id = oneLine(componentId);
    const output = installOutput({ componentId, logId: id, log, callback });
    log.write("info", `install ${id}: started (deadline ${timeoutMs} ms)`);
    callback?.send({ kind: "progress", step: `install ${componentId}`, percent: 0 });
    const timeout = new DeadlineExceededError(`install of ${id} did not finish within ${timeoutMs} ms`);
    // Only a forced stop ends an install before its deadline; either way the stop waits until its
    // process group has ended.
    const stopped = new AbortController();
    const limit = { ms: timeoutMs, timeout, signal: stopped.signal, waitForWork: true };
    const run = withDeadline(limit, (deadline) =>
      runCommand(command, {
        cwd: settings.stagingDir,
        // The request's own signal is not passed: once started, an install runs to its end or its
        // deadline, even when the connection drops or Shutdown arrives (HP SUM's rule).
        signal: deadline,
        maxOutputBytes: limits.maxOutputBytes,
        onLine: (stream, line) => output.line(stream, line),
      }),
    );
    installs.current = run.catch(() => undefined);
    installs.stop = (reason) => stopped.abort(reason);
    try {
      const result = await run;
      output.finish();
      const rebootRequired = output.rebootMarker || REBOOT_EXIT_CODES.includes(result.exitCode);
      log.write(
        "info",
        `install ${id}: exit ${result.exitCode}${result.signal === null ? "" : ` (${result.signal})`} in ${result.durationMs} ms` +
          (rebootRequired ? ", reboot required" : ""),
      );
      callback?.send({ kind: "progress", step: `install ${componentId}`, percent: 100 });
      callback?.send({
        kind: "installResult",
        component: componentId,
        exitCode: result.exitCode,
        rebootRequired,
      });
      return {
        componentId,
        exitCode: result.exitCode,
        durationMs: result.durationMs,
        rebootRequired,
        outputTruncated: result.truncated,
      };
    } catch (error) {
      output.finish();
      log.write("error", `install ${id}: ${(error as Error).message}`);
      throw error;
    } finally {
      installs.current = undefined;
      installs.stop = undefined;
    }
  };
}
