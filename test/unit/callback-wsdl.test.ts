/**
 * The WSDL declares what the callback channel really sends: every field of every Notify kind is
 * an element of Notify, and nothing the parser refuses is declared.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { type CallbackMessage, notifyEnvelope, parseNotify } from "../../agent/protocol/callback-messages.ts";
import { loadAgentWsdl } from "../../agent/protocol/wsdl.ts";

const samples: CallbackMessage[] = [
  { kind: "heartbeat" },
  { kind: "progress", step: "install comp-1", percent: 40 },
  { kind: "log", line: "stdout: hello" },
  { kind: "installResult", component: "comp-1", exitCode: 3010, rebootRequired: true },
];

/** The element names declared inside `<xsd:element name="Notify">`. */
function declaredNotifyFields(wsdl: string): string[] {
  const start = wsdl.indexOf('<xsd:element name="Notify">');
  assert.notEqual(start, -1, "the WSDL declares Notify");
  const end = wsdl.indexOf("</xsd:element>\n", wsdl.indexOf("</xsd:sequence>", start));
  return [...wsdl.slice(start, end).matchAll(/<xsd:element name="(\w+)"/g)].map((m) => m[1] ?? "").slice(1);
}

describe("callback wsdl", () => {
  const wsdl = loadAgentWsdl();

  it("callback wsdl - Notify has an operation, a binding and a service of its own", () => {
    assert.match(wsdl, /<wsdl:portType name="SumacCallbackPortType">\s*<wsdl:operation name="Notify">/);
    assert.match(wsdl, /soapAction="urn:sumac:agent:1#Notify"/);
    assert.match(wsdl, /<wsdl:service name="SumacCallbackService">/);
  });

  it("callback wsdl - every field the agent sends is declared, and each message round-trips", () => {
    const declared = declaredNotifyFields(wsdl);
    const used = new Set(samples.flatMap((m) => Object.keys(m)));
    assert.deepEqual(
      [...used].filter((f) => !declared.includes(f)),
      [],
    );
    assert.deepEqual(
      declared.filter((f) => !used.has(f)),
      [],
    );
    for (const message of samples) assert.deepEqual(parseNotify(notifyEnvelope(message)), message);
  });
});
