/**
 * The messages an agent sends back to the workstation's callback listener: a
 * SOAP 1.1 `Notify` request in the agent namespace, answered by `NotifyResponse`. The same envelope
 * writer, XML guard and fault format as the agent's own operations, so one parser and one set of
 * error codes cover both directions of the protocol.
 */
import { InvalidRequestError, UnknownOperationError } from "./errors.ts";
import { AGENT_NAMESPACE, NOTIFY_OPERATION, responseOperation } from "./wire.ts";
import { bodyElement, requestEnvelope } from "./soap-envelope.ts";
import { childElement, parseXmlTree } from "./xml-tree.ts";

/**
 * One message from an agent: install progress, an output line, an install's outcome, or a
 * heartbeat (the agent checks that its workstation still answers, `agent/server/workstation-watch.ts`).
 */
export type CallbackMessage =
  | { readonly kind: "heartbeat" }
  | { readonly kind: "progress"; readonly step: string; readonly percent: number }
  | { readonly kind: "log"; readonly line: string }
  | {
      readonly kind: "installResult";
      readonly component: string;
      readonly exitCode: number;
      readonly rebootRequired: boolean;
    };

/** The longest text field accepted (a log line is cut at 2000 characters by `agent/server/run-command.ts`). */
export const MAX_CALLBACK_TEXT = 8192;

/** The `Notify` request envelope of a message. */
export function notifyEnvelope(message: CallbackMessage): string {
  return requestEnvelope(NOTIFY_OPERATION, { ...message });
}

/** The acknowledgement envelope (signed by the listener as `NotifyResponse`). */
export function notifyAckEnvelope(): string {
  return requestEnvelope(responseOperation(NOTIFY_OPERATION), { accepted: true });
}

/**
 * Reads a `Notify` envelope (already MAC-checked) through the XML guard.
 *
 * @throws XmlForbiddenError, MalformedXmlError, UnknownOperationError, InvalidRequestError.
 */
export function parseNotify(xml: string): CallbackMessage {
  const element = bodyElement(parseXmlTree(xml));
  if (element.uri !== AGENT_NAMESPACE || element.local !== NOTIFY_OPERATION)
    throw new UnknownOperationError(`the body element {${element.uri}}${element.local} is not Notify`);
  const names = element.children.map((c) => c.local);
  if (new Set(names).size !== names.length) throw new InvalidRequestError("a Notify field is repeated");
  const text = (name: string): string => {
    const child = childElement(element, name);
    if (child === undefined || child.uri !== AGENT_NAMESPACE)
      throw new InvalidRequestError(`Notify has no ${name}`);
    if (child.text.length > MAX_CALLBACK_TEXT)
      throw new InvalidRequestError(`Notify ${name} is over ${MAX_CALLBACK_TEXT} characters`);
    return child.text;
  };
  const int = (name: string, min: number, max: number): number => {
    const value = text(name);
    const n = Number(value);
    if (!/^-?\d{1,10}$/.test(value) || n < min || n > max)
      throw new InvalidRequestError(`Notify ${name} must be an integer from ${min} to ${max}`);
    return n;
  };
  const only = (...fields: string[]): void => {
    const extra = names.filter((n) => n !== "kind" && !fields.includes(n));
    if (extra.length > 0) throw new InvalidRequestError(`Notify has unexpected fields: ${extra.join(",")}`);
  };
  const kind = text("kind");
  switch (kind) {
    case "heartbeat":
      only();
      return { kind };
    case "progress":
      only("step", "percent");
      return { kind, step: text("step"), percent: int("percent", 0, 100) };
    case "log":
      only("line");
      return { kind, line: text("line") };
    case "installResult": {
      only("component", "exitCode", "rebootRequired");
      const reboot = text("rebootRequired");
      if (reboot !== "true" && reboot !== "false")
        throw new InvalidRequestError("Notify rebootRequired must be true or false");
      return {
        kind,
        component: text("component"),
        exitCode: int("exitCode", -2147483648, 2147483647),
        rebootRequired: reboot === "true",
      };
    }
    default:
      throw new InvalidRequestError(`unknown Notify kind ${JSON.stringify(kind.slice(0, 50))}`);
  }
}
