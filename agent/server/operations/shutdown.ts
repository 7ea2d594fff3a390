import { oneLine } from "../../../base/text.ts";
import { booleanField, fieldsOf, optionalStringField } from "../request-fields.ts";
import type { OperationContext, OperationHandler } from "./context.ts";

/** What a Shutdown asks of the server: stop, and whether the install in progress is stopped too. */
export type RequestStop = (reason: string, force: boolean) => void;

/**
 * Shutdown: refuses new work, and answers once no install runs. Unforced, it waits for the
 * component being installed to finish (HP SUM's rule); with `force`, the server stops that install
 * first (its process group: SIGTERM, then SIGKILL). A forced Shutdown is answered even while an
 * unforced stop waits for the install. Stopping the listener and removing the agent's files happen
 * after the answer is sent: `requestStop` is called with the reason and the server does the rest.
 */
export function shutdownOperation(context: OperationContext, requestStop: RequestStop): OperationHandler {
  const { log, installs } = context;
  return async (args, facts) => {
    const fields = fieldsOf(args, "Shutdown");
    const reason = optionalStringField(fields, "reason", 1024) ?? "no reason given";
    const force = booleanField(fields, "force");
    requestStop(`Shutdown${force ? " (forced)" : ""} from ${facts.peer}: ${oneLine(reason)}`, force);
    if (installs.current !== undefined) {
      if (!force) log.write("info", "shutdown: waiting for the install in progress");
      await installs.current;
    }
    return { logFile: log.path };
  };
}
