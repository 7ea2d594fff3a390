/**
 * The limits README.md, agent/README.md and docs/ state with their figures. The tests of each
 * mechanism pass small values of their own to run quickly, so a default could change and leave the
 * docs wrong with every one of them green: these pin the defaults to what the docs say.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  CALLBACK_FIRST_REQUEST_MS,
  CALLBACK_IDLE_MS,
  CALLBACK_MAX_CONNECTIONS,
  DEFAULT_CALLBACK_CONNECTIONS,
} from "../../agent/client/callback-listener.ts";
import { HANDSHAKE_TIMEOUT_MS } from "../../agent/protocol/connection-limit.ts";
import { DEFAULT_LIMITS, KILL_GRACE_MS } from "../../agent/protocol/deadlines.ts";
import { lifecycleReserve } from "../../agent/server/agent-log.ts";
import { CALLBACK_QUEUE } from "../../agent/server/callback-client.ts";
import { AGENT_LOCK_WAIT_MS } from "../../agent/server/firewall.ts";
import { DEFAULT_AGENT_CONNECTIONS } from "../../agent/server/server.ts";
import { DEFAULT_HEARTBEAT_MS, DEFAULT_LOST_AFTER_MS } from "../../agent/server/workstation-watch.ts";
import { DEFAULT_LOCK_WAIT_MS } from "../../actors/firewall/host-lock.ts";
import { EMBEDDED_EVENT_BYTES, EMBEDDED_EVENT_LIMIT } from "../../run/backend.ts";

const KiB = 1024;
const MiB = 1024 * KiB;

describe("documented limits", () => {
  it("documented limits - the agent: connections, log cap and its reserve, callback queue, kill grace", () => {
    // agent/README.md, docs/target-steps.md
    assert.deepEqual(DEFAULT_AGENT_CONNECTIONS, {
      maxWorkstationConnections: 8,
      maxConnections: 32,
      firstRequestTimeoutMs: 15_000,
    });
    assert.equal(DEFAULT_LIMITS.maxLogFileBytes, 8 * MiB);
    assert.equal(lifecycleReserve(DEFAULT_LIMITS.maxLogFileBytes), 64 * KiB);
    assert.deepEqual({ ...CALLBACK_QUEUE }, { messages: 1000, bytes: 1 * MiB });
    assert.equal(KILL_GRACE_MS, 5_000);
    // "no sign of life for a minute"
    assert.equal(DEFAULT_LOST_AFTER_MS, 60_000);
    assert.equal(DEFAULT_HEARTBEAT_MS, 15_000);
  });

  it("documented limits - the callback listener: 4 of its agent's connections, 16 in all, 10 s, 5 s idle", () => {
    // docs/target-steps.md
    assert.equal(DEFAULT_CALLBACK_CONNECTIONS, 4);
    assert.equal(CALLBACK_MAX_CONNECTIONS, 16);
    assert.equal(CALLBACK_FIRST_REQUEST_MS, 10_000);
    assert.equal(CALLBACK_IDLE_MS, 5_000);
    assert.equal(HANDSHAKE_TIMEOUT_MS, 10_000);
  });

  it("documented limits - the embedded event stream and the firewall locks' waits", () => {
    // docs/cli.md, docs/bus.md, docs/firewall.md
    assert.equal(EMBEDDED_EVENT_LIMIT, 100_000);
    assert.equal(EMBEDDED_EVENT_BYTES, 32 * MiB);
    assert.equal(DEFAULT_LOCK_WAIT_MS, 30_000);
    assert.equal(AGENT_LOCK_WAIT_MS, 15_000);
  });
});
