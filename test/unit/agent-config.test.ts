/** The agent's configuration as it checks it (agent/server/config.ts): what trust needs of it. */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { parseAgentConfig } from "../../agent/server/config.ts";

const FP = Array.from({ length: 32 }, (_, i) => i.toString(16).padStart(2, "0")).join(":");
const base = {
  runId: "r1",
  targetId: "t1",
  caCertPem: "-----BEGIN CERTIFICATE-----\n...\n-----END CERTIFICATE-----\n",
  workstationFingerprint256: FP,
  stagingDir: "/var/tmp/sumac/r1/staging",
  listen: { host: "0.0.0.0" },
};

describe("agent config", () => {
  it("agent config - the workstation's fingerprint is required, checked and kept upper-case", () => {
    assert.equal(parseAgentConfig(base).workstationFingerprint256, FP.toUpperCase());
    const { workstationFingerprint256: _, ...without } = base;
    for (const bad of [
      without,
      { ...base, workstationFingerprint256: "AB:CD" },
      { ...base, workstationFingerprint256: 7 },
    ])
      assert.throws(() => parseAgentConfig(bad), {
        code: "AGENT_CONFIG",
        message: /config\.workstationFingerprint256 must be a SHA-256 fingerprint/,
      });
  });

  it("agent config - the callback listener's fingerprint is checked the same way", () => {
    const callback = { host: "10.0.0.1", port: 61000, fingerprint256: FP };
    assert.equal(parseAgentConfig({ ...base, callback }).callback?.fingerprint256, FP.toUpperCase());
    assert.throws(() => parseAgentConfig({ ...base, callback: { ...callback, fingerprint256: "x" } }), {
      code: "AGENT_CONFIG",
      message: /config\.callback\.fingerprint256/,
    });
  });
});
