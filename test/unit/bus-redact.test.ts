import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { redactUrlCredentials } from "../../bus/bus.ts";

describe("bus redact", () => {
  it("bus redact - users, passwords and tokens in URLs become ***, the rest stays", () => {
    const cases: [string, string][] = [
      ["nats://me:s3cret@10.0.0.5:4222", "nats://***@10.0.0.5:4222"],
      ["tls://t0ken@nats.example:4222", "tls://***@nats.example:4222"],
      ["nats://me:p@ss@host:4222", "nats://***@host:4222"],
      ["nats://a:b@h1:1,nats://tok@h2:2", "nats://***@h1:1,nats://***@h2:2"],
      ["cannot connect to nats://u:p@h:1 (refused)", "cannot connect to nats://***@h:1 (refused)"],
      ["nats://127.0.0.1:4222", "nats://127.0.0.1:4222"],
      ["nats://h:4222/path@x", "nats://h:4222/path@x"],
      ["no URL here: me@example.com", "no URL here: me@example.com"],
    ];
    for (const [text, expected] of cases) assert.equal(redactUrlCredentials(text), expected, text);
  });
});
