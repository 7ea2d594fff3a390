import { oneLine } from "../../../base/text.ts";
import { fieldsOf, optionalStringField } from "../request-fields.ts";
import type { OperationContext, OperationHandler } from "./context.ts";

/**
 * Shutdown: refuses new work, waits for the component being installed to finish (HP SUM's rule),
 * and answers. Stopping the listener and removing the agent's files happen after the answer is
 * sent: `requestStop` is called with the reason and the server does the rest.
 */
export function shutdownOperation(
  context: OperationContext,
  requestStop: (reason: string) => void,
): OperationHandler {
  const { log, installs } = context;
  return async (args, facts) => {
    const reason = optionalStringField(fieldsOf(args, "Shutdown"), "reason", 1024) ?? "no reason given";
    requestStop(`Shutdown from ${facts.peer}: ${oneLine(reason)}`);
    if (installs.current !== undefined) {
      log.write("info", "shutdown: waiting for the install in progress");
      await installs.current;
    }
    return { logFile: log.path };
  };
}
