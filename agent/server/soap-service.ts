/**
 * The `soap` package's part of the agent: it parses an envelope that has already passed the size
 * cap, the MAC check and the XML guard, dispatches it on the WSDL's binding to an operation
 * handler, and serialises the result as the WSDL says. It is used "serverless"
 * (`Server.processRequest`), so it never touches a socket: the HTTPS server, its TLS options and
 * the checks in front are ours (`soap.listen` would read bodies unbounded and ignore TLS options).
 *
 * Failures are not left to `soap`'s fault writer (its SOAP 1.1 faults carry no typed detail and may
 * carry stacks): a handler's error is kept on the request's context and the caller writes the fault.
 */
import { type ISoapServiceMethod, listen, type Server as SoapServer } from "soap";
import { InternalAgentError } from "../protocol/errors.ts";
import { type SumacError, isSumacError } from "../../base/errors.ts";
import type { OperationHandler, RequestFacts } from "./operations/context.ts";
import { AGENT_PATH, type OperationName } from "../protocol/wire.ts";

/** What one request carries through `soap` to its handler and back. */
export interface SoapRequestContext {
  readonly facts: RequestFacts;
  /** Set when the handler failed: the caller answers with this fault. */
  error?: SumacError;
}

/** Runs an operation's handler for `soap`; the server adds the deadline and logging. */
export type OperationRunner = (
  operation: OperationName,
  handler: OperationHandler,
  args: unknown,
  facts: RequestFacts,
) => Promise<Record<string, unknown>>;

/** The result of {@link AgentSoapService.process}. */
export type SoapOutcome =
  { readonly ok: true; readonly body: string } | { readonly ok: false; readonly error: SumacError };

/** `soap` serving the agent's WSDL with the given handlers. */
export interface AgentSoapService {
  process(xml: string, operation: OperationName, facts: RequestFacts): Promise<SoapOutcome>;
}

/** `soap` rejects a handler with an object that has a `Fault`; the real error is on the context. */
class HandlerFault extends Error {
  readonly Fault = { faultcode: "soap:Server", faultstring: "see the agent's fault" };
}

/**
 * Builds the service from the WSDL text and one handler per operation; resolves once `soap` has
 * read the WSDL.
 */
export function createAgentSoapService(
  wsdl: string,
  handlers: Readonly<Record<OperationName, OperationHandler>>,
  run: OperationRunner,
): Promise<AgentSoapService> {
  const port: Record<string, ISoapServiceMethod> = {};
  for (const [name, handler] of Object.entries(handlers) as [OperationName, OperationHandler][]) {
    port[name] = async (
      args: unknown,
      _callback: unknown,
      _headers: unknown,
      req: { connection?: { sumac?: SoapRequestContext } },
    ) => {
      const context = req.connection?.sumac;
      if (context === undefined) throw new HandlerFault("request without context");
      try {
        return await run(name, handler, args, context.facts);
      } catch (error) {
        context.error = isSumacError(error)
          ? error
          : new InternalAgentError(`${name} failed: ${(error as Error).message}`, { cause: error });
        throw new HandlerFault(context.error.message);
      }
    };
  }
  return new Promise((resolve, reject) => {
    const server: SoapServer = listen(null, {
      path: AGENT_PATH,
      services: { SumacAgentService: { SumacAgentPort: port } },
      xml: wsdl,
      suppressStack: true,
      enableChunkedEncoding: false,
      callback: (error: unknown) => {
        if (error !== null && error !== undefined)
          reject(
            error instanceof Error
              ? error
              : new Error(typeof error === "string" ? error : "soap could not read the WSDL"),
          );
        else resolve({ process: (xml, operation, facts) => processOne(server, xml, operation, facts) });
      },
    });
  });
}

async function processOne(
  server: SoapServer,
  xml: string,
  operation: OperationName,
  facts: RequestFacts,
): Promise<SoapOutcome> {
  const context: SoapRequestContext = { facts };
  const response = await server.processRequest(xml, {
    method: "POST",
    url: AGENT_PATH,
    headers: { soapaction: `"urn:sumac:agent:1#${operation}"`, "content-type": "text/xml; charset=utf-8" },
    connection: { remoteAddress: facts.peer, sumac: context },
  });
  if (context.error !== undefined) return { ok: false, error: context.error };
  if (response.statusCode !== 200)
    return {
      ok: false,
      error: new InternalAgentError(`soap answered ${response.statusCode}: ${response.body.slice(0, 300)}`),
    };
  return { ok: true, body: response.body };
}
