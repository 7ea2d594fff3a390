/**
 * Writing and checking SOAP 1.1 envelopes (SOAP 1.1 sections 4 and 4.4) of the agent protocol,
 * without `soap`: faults must be written before `soap` has seen a request (or when it never
 * will), and the client builds its requests here (see `agent/client/client.ts` for why).
 */
import { MalformedXmlError, UnknownOperationError } from "./errors.ts";
import { AGENT_NAMESPACE } from "./wire.ts";
import { childElement, type XmlElement } from "./xml-tree.ts";

export const SOAP_ENV_NAMESPACE = "http://schemas.xmlsoap.org/soap/envelope/";

/** A value the request serializer writes: text, a nested element, a repeated element, or nothing. */
export type XmlValue = string | number | boolean | undefined | XmlFields | readonly XmlFields[];
export interface XmlFields {
  readonly [name: string]: XmlValue;
}

/** Escapes text for element content and attribute values (XML 1.0 2.4, 3.3.3). */
export function escapeXml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/**
 * A request envelope for `operation` with `fields` as its children, all in the agent namespace
 * (the WSDL's schema is elementFormDefault="qualified").
 *
 * @example
 * requestEnvelope("Stage", { name: "pkg.tar", size: 1024, sha256: "ab…" });
 */
export function requestEnvelope(operation: string, fields: XmlFields): string {
  return (
    `<?xml version="1.0" encoding="utf-8"?>` +
    `<soap:Envelope xmlns:soap="${SOAP_ENV_NAMESPACE}" xmlns:tns="${AGENT_NAMESPACE}">` +
    `<soap:Body>${element(operation, fields)}</soap:Body></soap:Envelope>`
  );
}

function element(name: string, value: XmlValue): string {
  if (value === undefined) return "";
  if (Array.isArray(value)) return (value as readonly XmlFields[]).map((v) => element(name, v)).join("");
  if (typeof value === "object") {
    const inner = Object.entries(value as XmlFields)
      .map(([k, v]) => element(k, v))
      .join("");
    return `<tns:${name}>${inner}</tns:${name}>`;
  }
  return `<tns:${name}>${escapeXml(String(value))}</tns:${name}>`;
}

/** What a fault says: the stable code, whether retrying may help, and a human-readable message. */
export interface FaultInfo {
  readonly code: string;
  readonly retryable: boolean;
  readonly message: string;
}

/**
 * A SOAP 1.1 fault envelope (4.4): faultcode Client for what the sender must change, Server for the
 * agent's own failures, and the AgentFault detail of the WSDL with the stable code.
 */
export function faultEnvelope(fault: FaultInfo, side: "Client" | "Server" = "Client"): string {
  return (
    `<?xml version="1.0" encoding="utf-8"?>` +
    `<soap:Envelope xmlns:soap="${SOAP_ENV_NAMESPACE}" xmlns:tns="${AGENT_NAMESPACE}"><soap:Body>` +
    `<soap:Fault><faultcode>soap:${side}</faultcode><faultstring>${escapeXml(fault.code)}: ${escapeXml(fault.message)}</faultstring>` +
    `<detail><tns:AgentFault><tns:code>${escapeXml(fault.code)}</tns:code>` +
    `<tns:retryable>${fault.retryable}</tns:retryable><tns:message>${escapeXml(fault.message)}</tns:message>` +
    `</tns:AgentFault></detail></soap:Fault></soap:Body></soap:Envelope>`
  );
}

/**
 * The one element inside the envelope's Body.
 *
 * @throws MalformedXmlError when the tree is not a SOAP 1.1 envelope with exactly one body element.
 */
export function bodyElement(envelope: XmlElement): XmlElement {
  if (envelope.uri !== SOAP_ENV_NAMESPACE || envelope.local !== "Envelope")
    throw new MalformedXmlError("the root element is not a SOAP 1.1 Envelope");
  const body = childElement(envelope, "Body");
  if (body === undefined || body.uri !== SOAP_ENV_NAMESPACE)
    throw new MalformedXmlError("the envelope has no Body");
  const [first, ...rest] = body.children;
  if (first === undefined || rest.length > 0)
    throw new MalformedXmlError("the Body must hold exactly one element");
  return first;
}

/**
 * Checks that a request's body element is the operation its SOAPAction named (the MAC covers the
 * SOAPAction's operation; `soap` would dispatch on it, so both must agree).
 */
export function checkRequestOperation(envelope: XmlElement, operation: string): void {
  const first = bodyElement(envelope);
  if (first.uri !== AGENT_NAMESPACE || first.local !== operation)
    throw new UnknownOperationError(`the body element {${first.uri}}${first.local} is not ${operation}`);
}
