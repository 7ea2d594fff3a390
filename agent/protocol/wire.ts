/**
 * The agent protocol's wire constants and the codec of its security header, shared by the agent
 * and the workstation. Pure functions: no sockets, no XML parser.
 *
 * Transport of the security header: the HTTP header {@link SECURITY_HEADER}, whose value is
 * base64url(JSON of a `SecurityHeader`). It is outside the XML on purpose: the MAC covers the body's
 * exact bytes and is checked before any XML parser sees them, and nothing in the envelope has to be
 * canonicalised.
 */
import { MalformedHeaderError } from "./errors.ts";
import type { SecurityHeader } from "./message-security.ts";

/** The target namespace of `sumac-agent.wsdl`. */
export const AGENT_NAMESPACE = "urn:sumac:agent:1";
/** The one URL path the agent serves. */
export const AGENT_PATH = "/sumac-agent";
/** The HTTP header carrying the security header, in both directions (lower case, as Node reads it). */
export const SECURITY_HEADER = "x-sumac-security";
/** The operation name a fault response is signed under (a fault answers no operation). */
export const FAULT_OPERATION = "Fault";
/** TLS exporter label (RFC 5705 4) of the session id; the MAC key has its own label. */
export const SESSION_ID_LABEL = "EXPORTER-sumac-session-id";
const SESSION_ID_BYTES = 16;
/** A header value longer than this is refused unread (the JSON of a real header is ~190 bytes). */
const MAX_HEADER_CHARS = 1024;

/** The operations of `sumac-agent.wsdl`. */
export const OPERATIONS = ["Hello", "Inventory", "Stage", "Install", "Logs", "Shutdown"] as const;
export type OperationName = (typeof OPERATIONS)[number];

/** Whether `name` is one of {@link OPERATIONS}. */
export function isOperation(name: string): name is OperationName {
  return (OPERATIONS as readonly string[]).includes(name);
}

/** The SOAPAction of an operation, as the WSDL binding declares it. */
export function soapAction(operation: OperationName): string {
  return `${AGENT_NAMESPACE}#${operation}`;
}

/**
 * The operation named by a SOAPAction HTTP header value (quoted or not, SOAP 1.1 6.1.1), or
 * undefined when it is absent or not of this namespace. The result is not checked against
 * {@link OPERATIONS}: an unknown name is still MAC-checked, so that its rejection is authenticated.
 */
export function operationFromSoapAction(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const unquoted = value.startsWith('"') && value.endsWith('"') ? value.slice(1, -1) : value;
  const prefix = `${AGENT_NAMESPACE}#`;
  return unquoted.startsWith(prefix) ? unquoted.slice(prefix.length) : undefined;
}

/** The operation name a successful response is signed under. */
export function responseOperation(operation: string): string {
  return `${operation}Response`;
}

/** The TLS connection's part used to derive the session id (a `TLSSocket` fits). */
export interface ExporterSource {
  exportKeyingMaterial(length: number, label: string, context?: Buffer): Buffer;
}

/**
 * The session id of a TLS connection: both ends derive it from the TLS 1.3 exporter with the same
 * context as the MAC key, so it names this connection only and never has to be sent first.
 */
export function deriveSessionId(socket: ExporterSource, context: string): string {
  return socket
    .exportKeyingMaterial(SESSION_ID_BYTES, SESSION_ID_LABEL, Buffer.from(context, "utf8"))
    .toString("base64url");
}

/** The MAC key and session id context of a run's target: binds both to the run and the target. */
export function sessionContext(runId: string, targetId: string): string {
  return `${runId}/${targetId}`;
}

/** Encodes a security header as the value of {@link SECURITY_HEADER}. */
export function encodeSecurityHeader(header: SecurityHeader): string {
  return Buffer.from(JSON.stringify(header), "utf8").toString("base64url");
}

/**
 * Decodes the value of {@link SECURITY_HEADER} into an untrusted object for `Verifier.verify`,
 * which checks its fields.
 *
 * @throws MalformedHeaderError when it is missing, too long, not base64url or not JSON.
 */
export function decodeSecurityHeader(value: string | string[] | undefined): unknown {
  if (typeof value !== "string" || value.length === 0)
    throw new MalformedHeaderError(`the ${SECURITY_HEADER} header is missing`);
  if (value.length > MAX_HEADER_CHARS || !/^[A-Za-z0-9_-]+$/.test(value))
    throw new MalformedHeaderError(
      `the ${SECURITY_HEADER} header is not base64url of at most ${MAX_HEADER_CHARS}`,
    );
  try {
    return JSON.parse(Buffer.from(value, "base64url").toString("utf8")) as unknown;
  } catch (cause) {
    throw new MalformedHeaderError(`the ${SECURITY_HEADER} header is not JSON`, { cause });
  }
}

/** The URL path of the workstation's callback listener. */
export const CALLBACK_PATH = "/sumac-callback";
/** The one operation of the callback listener; its answer is signed as `NotifyResponse`. */
export const NOTIFY_OPERATION = "Notify";

/**
 * The MAC key and session id context of a callback connection (agent → workstation listener). The
 * `~` cannot appear in a target id, so it never equals a {@link sessionContext}: even apart from the
 * exporter being per connection, a callback key is never an agent-session key.
 */
export function callbackContext(runId: string): string {
  return `${runId}/~callback`;
}
