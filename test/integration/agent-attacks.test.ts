import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { symlink } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { connect, type TLSSocket } from "node:tls";
import { createRunCa, issueLeaf } from "../../agent/client/credentials.ts";
import type { AgentClient } from "../../agent/client/client.ts";
import { AgentFaultError } from "../../agent/protocol/errors.ts";
import { decodeSecurityHeader, encodeSecurityHeader } from "../../agent/protocol/wire.ts";
import { requestEnvelope, SOAP_ENV_NAMESPACE } from "../../agent/protocol/soap-envelope.ts";
import type { SecurityHeader } from "../../agent/protocol/message-security.ts";
import { type AgentFixture, startAgentFixture } from "../support/agent.ts";

/** Asserts `call` fails with an agent fault of `code`, and the agent logged the rejection. */
async function rejected(fixture: AgentFixture, call: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(call, (error: unknown) => {
    assert.ok(error instanceof AgentFaultError, `expected an agent fault, got ${String(error)}`);
    assert.equal(error.code, code);
    return true;
  });
  await fixture.waitForLog(new RegExp(`warn rejected ${code} from 127\\.0\\.0\\.1:\\d+ CN=workstation`));
}

/** A TLS connection made by hand; resolves with what the agent sent before the connection ended. */
function rawExchange(
  options: { port: number; ca: string; cert?: string; key?: string },
  write: (socket: TLSSocket, stop: () => boolean) => void,
): Promise<{ received: string; error: Error | undefined }> {
  return new Promise((resolve) => {
    let received = "";
    let error: Error | undefined;
    let ended = false;
    const socket = connect({
      host: "127.0.0.1",
      port: options.port,
      ca: options.ca,
      ...(options.cert === undefined ? {} : { cert: options.cert, key: options.key }),
      minVersion: "TLSv1.3",
      checkServerIdentity: () => undefined,
    });
    socket.setTimeout(15_000, () => socket.destroy(new Error("socket timeout")));
    socket.on("secureConnect", () => write(socket, () => ended || received.length > 0));
    socket.on("data", (chunk: Buffer) => (received += chunk.toString("latin1")));
    socket.on("error", (e: Error) => {
      error ??= e;
    });
    socket.on("close", () => {
      ended = true;
      resolve({ received, error });
    });
  });
}

describe("agent attacks", () => {
  let fixture: AgentFixture;
  let workstation: { certPem: string; keyPem: string };
  before(async () => {
    // Each refusal is looked for in the log: none is left to the rate limit's count.
    fixture = await startAgentFixture({ rejectionBurst: 1000 });
    workstation = { certPem: fixture.clientOptions.certPem, keyPem: fixture.clientOptions.keyPem };
  });
  after(async () => {
    await fixture.cleanup();
  });

  it("agent attacks - a captured message replayed on its connection is REPLAYED", async () => {
    const client = await fixture.connect();
    const captured = client.prepare("Hello", {});
    await client.callRaw("Hello", captured);
    await rejected(fixture, client.callRaw("Hello", captured), "REPLAYED");
  });

  it("agent attacks - a captured message replayed on another connection is UNKNOWN_SESSION", async () => {
    const first = await fixture.connect();
    const captured = first.prepare("Hello", {});
    const second = await fixture.connect();
    await rejected(fixture, second.callRaw("Hello", captured), "UNKNOWN_SESSION");
  });

  it("agent attacks - a body altered after signing is BAD_MAC", async () => {
    const client = await fixture.connect();
    const signed = client.prepare("Stage", { name: "a.bin", size: 1, sha256: "0".repeat(64) });
    const body = Buffer.from(signed.body.toString("utf8").replace("a.bin", "b.bin"), "utf8");
    await rejected(fixture, client.callRaw("Stage", { ...signed, body }), "BAD_MAC");
  });

  it("agent attacks - a forged MAC is BAD_MAC", async () => {
    const client = await fixture.connect();
    const signed = client.prepare("Hello", {});
    const header = decodeSecurityHeader(signed.securityHeader) as SecurityHeader;
    const forged = encodeSecurityHeader({ ...header, mac: randomBytes(32).toString("base64") });
    await rejected(fixture, client.callRaw("Hello", { ...signed, securityHeader: forged }), "BAD_MAC");
  });

  it("agent attacks - a message stamped well behind the clock offset measured at Hello is STALE_TIMESTAMP", async () => {
    // The first message sets the offset (any clock within a day passes); a later one 10 minutes
    // behind it is stale.
    let back = 0;
    const client = await fixture.connect({ signNow: () => Date.now() - back });
    await client.call("Hello", {});
    back = 10 * 60_000;
    await rejected(fixture, client.call("Hello", {}), "STALE_TIMESTAMP");
  });

  it("agent attacks - a first message stamped absurdly far off (two days) is FUTURE_TIMESTAMP", async () => {
    const client = await fixture.connect({ signNow: () => Date.now() + 2 * 24 * 3_600_000 });
    await rejected(fixture, client.call("Hello", {}), "FUTURE_TIMESTAMP");
  });

  it("agent attacks - another agent's leaves, of the same CA, are refused before Hello: the server leaf by TLS, the callback leaf by the workstation pin", async () => {
    // A second real agent of the same run: whoever took root on its target has its key and leaves.
    const other = await startAgentFixture({}, { ca: fixture.ca, targetId: "target-2" });
    try {
      const stolen = other.agentCredentials;
      const hello = (certPem: string) =>
        (async () => {
          const client = await fixture.connect({ certPem, keyPem: stolen.keyPem });
          return client.call("Hello", {});
        })();
      const raw = (cert: string) =>
        rawExchange({ port: fixture.port, ca: fixture.ca.certPem, cert, key: stolen.keyPem }, (socket) =>
          socket.write("POST /sumac-agent HTTP/1.1\r\nHost: agent\r\nContent-Length: 0\r\n\r\n"),
        );

      // The server leaf (serverAuth only) cannot be a TLS client at all.
      await assert.rejects(hello(stolen.certPem), { code: "AGENT_CONNECTION" });
      assert.doesNotMatch((await raw(stolen.certPem)).received, /HTTP\/1\.1/);
      await fixture.waitForLog(/warn rejected TLS_CLIENT from .*INVALID_PURPOSE/);

      // The callback leaf passes the handshake (same CA, clientAuth) and is refused at once.
      await assert.rejects(hello(stolen.callbackCertPem), { code: "AGENT_CONNECTION" });
      assert.doesNotMatch((await raw(stolen.callbackCertPem)).received, /HTTP\/1\.1/);
      const line = await fixture.waitForLog(
        /warn rejected UNKNOWN_WORKSTATION from 127\.0\.0\.1:\d+ CN=agent-callback-target-2 /,
      );
      assert.match(line, new RegExp(`sha256=${stolen.callbackFingerprint256}`));
      // Nothing it sent was read: no session, no request, no Hello answered to it.
      const log = await fixture.logText();
      assert.doesNotMatch(log, /connection from [^\n]*CN=agent-callback-target-2/);
      assert.doesNotMatch(log, /NO_SESSION|Hello from [^\n]*CN=agent-/);
      // The workstation still gets its answers.
      assert.equal((await (await fixture.connect()).call("Hello", {})).targetId, fixture.targetId);
    } finally {
      await other.cleanup();
    }
  });

  it("agent attacks - a message without a security header is MALFORMED_HEADER", async () => {
    const client = await fixture.connect();
    const signed = client.prepare("Hello", {});
    await rejected(fixture, client.callRaw("Hello", { ...signed, securityHeader: "" }), "MALFORMED_HEADER");
  });

  it("agent attacks - a client without a certificate is refused by TLS and logged", async () => {
    const result = await rawExchange({ port: fixture.port, ca: fixture.ca.certPem }, (socket) => {
      socket.write("POST /sumac-agent HTTP/1.1\r\nHost: agent\r\nContent-Length: 0\r\n\r\n");
    });
    assert.doesNotMatch(result.received, /HTTP\/1\.1/);
    assert.ok(result.error !== undefined, "the client sees the TLS alert");
    await fixture.waitForLog(/warn rejected TLS_CLIENT from 127\.0\.0\.1:\d+: .*CERTIFICATE/i);
  });

  it("agent attacks - a client with a certificate from another CA is refused by TLS and logged", async () => {
    const otherCa = createRunCa({ runId: "other-run", validForMs: 3_600_000 });
    const intruder = issueLeaf(otherCa, { commonName: "workstation", subjectAltNames: [], usage: "client" });
    const before = (await fixture.logText()).split("\n").length;
    const result = await rawExchange(
      { port: fixture.port, ca: fixture.ca.certPem, cert: intruder.certPem, key: intruder.keyPem },
      (socket) => socket.write("POST /sumac-agent HTTP/1.1\r\nHost: agent\r\nContent-Length: 0\r\n\r\n"),
    );
    assert.doesNotMatch(result.received, /HTTP\/1\.1/);
    const line = await fixture.waitForLog(
      /warn rejected TLS_CLIENT .*(UNABLE_TO_VERIFY_LEAF_SIGNATURE|unknown ca|certificate verify failed)/i,
    );
    assert.ok((await fixture.logText()).split("\n").indexOf(line) >= before - 1);
  });

  it("agent attacks - an oversized Content-Length is refused with 413 before the body is sent", async () => {
    const declared = 100 * 1024 * 1024;
    let sent = 0;
    const result = await rawExchange(
      { port: fixture.port, ca: fixture.ca.certPem, ...pair(workstation) },
      (socket, stop) => {
        socket.write(
          `POST /sumac-agent HTTP/1.1\r\nHost: agent\r\nContent-Type: text/xml\r\nContent-Length: ${declared}\r\n\r\n`,
        );
        const chunk = Buffer.alloc(16 * 1024, 0x20);
        const tick = setInterval(() => {
          if (stop() || sent >= declared) {
            clearInterval(tick);
            return;
          }
          sent += chunk.byteLength;
          socket.write(chunk);
        }, 20);
      },
    );
    assert.match(result.received, /^HTTP\/1\.1 413 /);
    assert.match(result.received, /<tns:code>BODY_TOO_LARGE<\/tns:code>/);
    assert.ok(sent < declared, `rejected after ${sent} of ${declared} bytes`);
    await fixture.waitForLog(/warn rejected BODY_TOO_LARGE from .*Content-Length 104857600/);
  });

  it("agent attacks - an oversized chunked body is refused with 413 while it arrives", async () => {
    let sent = 0;
    const result = await rawExchange(
      { port: fixture.port, ca: fixture.ca.certPem, ...pair(workstation) },
      (socket, stop) => {
        socket.write(
          "POST /sumac-agent HTTP/1.1\r\nHost: agent\r\nContent-Type: text/xml\r\nTransfer-Encoding: chunked\r\n\r\n",
        );
        const chunk = Buffer.alloc(64 * 1024, 0x20);
        const tick = setInterval(() => {
          // Far past the 1 MiB cap, but bounded so a broken agent cannot make the test run forever.
          if (stop() || sent > 64 * 1024 * 1024) {
            clearInterval(tick);
            return;
          }
          sent += chunk.byteLength;
          socket.write(`${chunk.byteLength.toString(16)}\r\n`);
          socket.write(chunk);
          socket.write("\r\n");
        }, 5);
      },
    );
    assert.match(result.received, /^HTTP\/1\.1 413 /);
    assert.match(result.received, /BODY_TOO_LARGE/);
    assert.ok(sent < 64 * 1024 * 1024, `rejected after ${sent} bytes`);
    await fixture.waitForLog(/warn rejected BODY_TOO_LARGE from .*while arriving/);
  });

  it("agent attacks - an XML bomb (billion laughs) is XML_FORBIDDEN", async () => {
    const client = await fixture.connect();
    const entities = Array.from(
      { length: 9 },
      (_, i) => `<!ENTITY lol${i + 1} "${`&lol${i};`.repeat(10)}">`,
    ).join("");
    const bomb =
      `<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol0 "lol">${entities}]>` +
      `<soap:Envelope xmlns:soap="${SOAP_ENV_NAMESPACE}" xmlns:tns="urn:sumac:agent:1"><soap:Body>` +
      `<tns:Stage><tns:name>&lol9;</tns:name><tns:size>1</tns:size><tns:sha256>${"0".repeat(64)}</tns:sha256></tns:Stage>` +
      `</soap:Body></soap:Envelope>`;
    await rejected(
      fixture,
      client.callRaw("Stage", client.signBody("Stage", Buffer.from(bomb))),
      "XML_FORBIDDEN",
    );
  });

  it("agent attacks - an external entity is XML_FORBIDDEN", async () => {
    const client = await fixture.connect();
    const xxe =
      `<?xml version="1.0"?><!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>` +
      requestEnvelope("Hello", {}).replace(/^<\?xml[^>]*>/, "");
    await rejected(
      fixture,
      client.callRaw("Hello", client.signBody("Hello", Buffer.from(xxe))),
      "XML_FORBIDDEN",
    );
  });

  it("agent attacks - file names escaping the staging directory are PATH_ESCAPES_STAGING", async () => {
    const client = await fixture.connect();
    await symlink("/etc/passwd", join(fixture.stagingDir, "escape-link"));
    for (const name of ["../../etc/passwd", "/etc/passwd", "sub/../../x", "escape-link"]) {
      await assert.rejects(
        client.call("Stage", { name, size: 1, sha256: "0".repeat(64) }),
        (error: unknown) => {
          assert.ok(error instanceof AgentFaultError);
          assert.equal(error.code, "PATH_ESCAPES_STAGING", name);
          return true;
        },
      );
    }
    await fixture.waitForLog(
      /warn rejected PATH_ESCAPES_STAGING from .*\(Stage\): "escape-link" resolves outside/,
    );
  });

  it("agent attacks - an unknown operation is UNKNOWN_OPERATION", async () => {
    const client = await fixture.connect();
    const body = Buffer.from(requestEnvelope("Reboot", {}));
    await rejected(fixture, client.callRaw("Reboot", client.signBody("Reboot", body)), "UNKNOWN_OPERATION");
    // A body element that is not the SOAPAction's operation is refused too.
    const mismatch = client.signBody("Hello", Buffer.from(requestEnvelope("Logs", {})));
    await rejected(fixture, client.callRaw("Hello", mismatch), "UNKNOWN_OPERATION");
  });

  it("agent attacks - malformed XML is MALFORMED_XML", async () => {
    const client = await fixture.connect();
    const broken = Buffer.from(
      `<soap:Envelope xmlns:soap="${SOAP_ENV_NAMESPACE}"><soap:Body><tns:Hello></soap:Body>`,
    );
    await rejected(fixture, client.callRaw("Hello", client.signBody("Hello", broken)), "MALFORMED_XML");
  });

  it("agent attacks - after rejections the agent still serves a fresh session", async () => {
    const client = await fixture.connect();
    const hello = await client.call("Hello", {});
    assert.equal(hello.sessionId, client.sessionId);
  });
});

function pair(w: { certPem: string; keyPem: string }): { cert: string; key: string } {
  return { cert: w.certPem, key: w.keyPem };
}

export type { AgentClient };
