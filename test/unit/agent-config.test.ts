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

  it("agent config - over stdin every path must be absolute", () => {
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{ stagingDir: "staging" }, /config\.stagingDir must be an absolute path/],
      [{ logDir: "../logs/r1" }, /config\.logDir must be an absolute path/],
      [{ programFiles: ["/opt/a", "agent.js"] }, /config\.programFiles\[1\] must be an absolute path/],
      [{ stagingDir: "/var/tmp/\0x" }, /config\.stagingDir must not hold a NUL/],
    ];
    for (const [change, message] of cases)
      assert.throws(() => parseAgentConfig({ ...base, ...change }), { code: "AGENT_CONFIG", message });
    const parsed = parseAgentConfig({ ...base, logDir: "/var/log/x", programFiles: ["/opt/a"] });
    assert.deepEqual(
      [parsed.stagingDir, parsed.logDir, parsed.programFiles],
      ["/var/tmp/sumac/r1/staging", "/var/log/x", ["/opt/a"]],
    );
  });

  it("agent config - over files relative paths are resolved against the bundle's directory, absolute ones kept", () => {
    const parsed = parseAgentConfig(
      {
        ...base,
        stagingDir: "staging",
        logDir: "../logs/r1",
        programFiles: ["agent.js", "./sub/../x.txt", "/opt/abs"],
        firewall: "netsh",
      },
      { relativeTo: "/windows/Temp/sumac/r1" },
    );
    assert.equal(parsed.stagingDir, "/windows/Temp/sumac/r1/staging");
    assert.equal(parsed.logDir, "/windows/Temp/sumac/logs/r1");
    assert.deepEqual(parsed.programFiles, [
      "/windows/Temp/sumac/r1/agent.js",
      "/windows/Temp/sumac/r1/x.txt",
      "/opt/abs",
    ]);
    assert.equal(parsed.firewall, "netsh");
  });

  it("agent config - firewall is nft, netsh or none", () => {
    assert.equal(parseAgentConfig(base).firewall, "nft");
    assert.throws(() => parseAgentConfig({ ...base, firewall: "iptables" }), {
      code: "AGENT_CONFIG",
      message: 'config.firewall must be "nft", "netsh" or "none"',
    });
  });
});
