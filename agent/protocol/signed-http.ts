/**
 * The HTTP framing shared by both directions of the agent protocol: a signed SOAP answer written by
 * a server (the agent's, or the workstation's callback listener), a signed POST sent by a client on
 * its one pinned connection, and the mutual TLS 1.3 options of both servers.
 */
import { request, type Agent, type ServerResponse } from "node:http";
import type { ServerOptions } from "node:https";
import { AgentResponseError } from "./errors.ts";
import type { ConnectionSession } from "./connection-session.ts";
import { encodeSecurityHeader, SECURITY_HEADER } from "./wire.ts";

/** Server options for mutual TLS 1.3 against the run's CA: a client certificate is required. */
export function mutualTlsServerOptions(pems: {
  keyPem: string;
  certPem: string;
  caCertPem: string;
}): ServerOptions {
  return {
    key: pems.keyPem,
    cert: pems.certPem,
    ca: pems.caCertPem,
    minVersion: "TLSv1.3",
    requestCert: true,
    rejectUnauthorized: true,
    handshakeTimeout: 10_000,
  };
}

/** Writes `xml` as the answer, signed for `macOperation` in the session's sending direction. */
export function sendSigned(
  res: ServerResponse,
  session: ConnectionSession,
  status: number,
  macOperation: string,
  xml: string,
): void {
  const bytes = Buffer.from(xml, "utf8");
  const header = session.signer.sign(macOperation, bytes);
  res.writeHead(status, {
    "content-type": "text/xml; charset=utf-8",
    "content-length": bytes.byteLength,
    [SECURITY_HEADER]: encodeSecurityHeader(header),
  });
  res.end(bytes);
}

/** A signed answer as received, before its security header is verified. */
export interface SignedAnswer {
  status: number;
  body: Buffer;
  securityHeader: string | undefined;
}

/**
 * POSTs an already signed body on `agent`'s connection and reads the answer, at most `maxBytes` of
 * it, before `timeoutMs`. Errors are the transport's own; callers wrap them as they need.
 */
export function postSigned(options: {
  agent: Agent;
  path: string;
  soapAction: string;
  body: Buffer;
  securityHeader: string;
  timeoutMs: number;
  maxBytes: number;
}): Promise<SignedAnswer> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        agent: options.agent,
        method: "POST",
        path: options.path,
        headers: {
          "content-type": "text/xml; charset=utf-8",
          "content-length": options.body.byteLength,
          soapaction: `"${options.soapAction}"`,
          [SECURITY_HEADER]: options.securityHeader,
        },
        signal: AbortSignal.timeout(options.timeoutMs),
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on("data", (chunk: Buffer) => {
          size += chunk.byteLength;
          if (size > options.maxBytes) {
            req.destroy(new AgentResponseError(`answer over ${options.maxBytes} bytes`));
            return;
          }
          chunks.push(chunk);
        });
        res.on("end", () => {
          const header = res.headers[SECURITY_HEADER];
          resolve({
            status: res.statusCode ?? 0,
            body: Buffer.concat(chunks),
            securityHeader: typeof header === "string" ? header : undefined,
          });
        });
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.end(options.body);
  });
}
