import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { Kvm } from "@nats-io/kv";
import { containerSkipReason } from "../support/engine.ts";
import {
  natsBinarySkipReason,
  startNatsContainer,
  startNatsProcess,
  type LocalNatsServer,
  type NatsServer,
} from "../support/nats.ts";

/** Publish/subscribe and a JetStream KV write and read back, with a real client. */
async function exercise(url: string): Promise<void> {
  const nc: NatsConnection = await connect({ servers: url, timeout: 5_000 });
  try {
    const sub = nc.subscribe("sumac.test.>", { max: 1, timeout: 5_000 });
    const received = (async () => {
      for await (const m of sub) return { subject: m.subject, data: m.string() };
      throw new Error("subscription ended without a message");
    })();
    nc.publish("sumac.test.hello", "from the fixture test");
    assert.deepEqual(await received, { subject: "sumac.test.hello", data: "from the fixture test" });

    const kv = await new Kvm(nc).create(`fixture_${process.pid}`, { history: 2 });
    const rev = await kv.put("target.a", "queued");
    const entry = await kv.get("target.a");
    assert.equal(entry?.string(), "queued");
    assert.equal(entry?.revision, rev);
    // Compare-and-set on a stale revision is refused by the server.
    await kv.update("target.a", "connecting", rev);
    await assert.rejects(kv.update("target.a", "failed", rev), /wrong last sequence/);
  } finally {
    await nc.close();
  }
}

const skipProcess = await natsBinarySkipReason();
describe("nats process - fixture", { skip: skipProcess }, () => {
  let server: LocalNatsServer;
  before(async () => {
    server = await startNatsProcess();
  });
  after(async () => {
    await server?.dispose();
  });

  it("nats process - publish, subscribe and a JetStream KV compare-and-set", async () => {
    assert.notEqual(server.port, 4222, "a free port, not the default");
    await exercise(server.url);
  });

  it("nats process - a KV write survives a server restart on the same port", async () => {
    const nc = await connect({ servers: server.url, timeout: 5_000 });
    const kv = await new Kvm(nc).create("restart_check");
    await kv.put("lease.60000", "held");
    await nc.close();
    await server.restart();
    const again = await connect({ servers: server.url, timeout: 5_000 });
    try {
      const kv2 = await new Kvm(again).open("restart_check");
      assert.equal((await kv2.get("lease.60000"))?.string(), "held");
    } finally {
      await again.close();
    }
  });

  it("nats process - once stopped, a client is refused", async () => {
    await server.stop();
    await assert.rejects(connect({ servers: server.url, timeout: 2_000, reconnect: false }));
  });
});

const skipContainer = await containerSkipReason();
describe("nats container - fixture", { skip: skipContainer }, () => {
  let server: NatsServer;
  before(async () => {
    server = await startNatsContainer();
  });
  after(async () => {
    await server?.stop();
  });

  it("nats container - publish, subscribe and a JetStream KV compare-and-set", async () => {
    await exercise(server.url);
  });
});
