import assert from "node:assert/strict";
import { createSocket, type RemoteInfo, type Socket } from "node:dgram";
import { after, before, describe, it } from "node:test";
import { NetbiosNameNotFoundError } from "../../../actors/netbios/errors.ts";
import { localBroadcastAddresses, nodeStatus, queryName } from "../../../actors/netbios/name-query.ts";
import {
  decodeNameServicePacket,
  encodeNameServicePacket,
  type NameServicePacket,
} from "../../../actors/netbios/name-service-codec.ts";

/** What the fake name server does with each request it gets. */
type Behaviour = (request: NameServicePacket, reply: (p: NameServicePacket) => void) => void;

/** A name service on 127.0.0.1 that lets each test decide how to answer. */
class FakeNameServer {
  readonly socket: Socket = createSocket("udp4");
  behaviour: Behaviour = () => {};
  requests: NameServicePacket[] = [];
  port = 0;

  async start(): Promise<void> {
    this.socket.on("message", (datagram: Buffer, from: RemoteInfo) => {
      const request = decodeNameServicePacket(datagram);
      this.requests.push(request);
      this.behaviour(request, (p) => this.socket.send(encodeNameServicePacket(p), from.port, from.address));
    });
    await new Promise<void>((resolve) => this.socket.bind(0, "127.0.0.1", resolve));
    this.port = this.socket.address().port;
  }
}

const server = new FakeNameServer();
before(() => server.start());
after(() => server.socket.close());

const positive = (id: number, address: string): NameServicePacket => ({
  kind: "positive-name-query-response",
  transactionId: id,
  recursionDesired: true,
  recursionAvailable: false,
  name: { name: "WINTARGET", suffix: 0x20, scope: "" },
  ttl: 0,
  addresses: [{ group: false, ownerNodeType: 3, address }],
});

describe("netbios name query", () => {
  it("name query - asks for NAME<20>, upper case, unicast with RD, and returns the addresses", async () => {
    server.requests = [];
    server.behaviour = (req, reply) => reply(positive(req.transactionId, "10.1.2.3"));
    const addresses = await queryName("wintarget", {
      server: "127.0.0.1",
      port: server.port,
      timeoutMs: 2000,
    });
    assert.deepEqual(addresses, ["10.1.2.3"]);
    const [request] = server.requests;
    assert.equal(request?.kind, "name-query-request");
    assert.ok(request.kind === "name-query-request");
    assert.deepEqual({ ...request.name }, { name: "WINTARGET", suffix: 0x20, scope: "" });
    assert.equal(request.broadcast, false);
    assert.equal(request.recursionDesired, true);
  });

  it("name query - an answer with another transaction id is ignored; the right one is taken", async () => {
    server.behaviour = (req, reply) => {
      reply(positive((req.transactionId + 1) & 0xffff, "10.6.6.6"));
      setTimeout(() => reply(positive(req.transactionId, "10.1.2.3")), 30);
    };
    const addresses = await queryName("WINTARGET", {
      server: "127.0.0.1",
      port: server.port,
      timeoutMs: 2000,
    });
    assert.deepEqual(addresses, ["10.1.2.3"]);
  });

  it("name query - an answer from another source than the server asked is ignored in unicast", async () => {
    const intruder = createSocket("udp4");
    await new Promise<void>((resolve) => intruder.bind(0, "127.0.0.1", resolve));
    let spoofed = 0;
    server.behaviour = (req) => {
      // The right transaction id from the wrong sender: a spoofer on the LAN.
      const answer = encodeNameServicePacket(positive(req.transactionId, "10.6.6.6"));
      intruder.send(answer, lastClient.port, lastClient.address, () => spoofed++);
    };
    let lastClient: RemoteInfo = { address: "127.0.0.1", port: 0, family: "IPv4", size: 0 };
    const track = (_d: Buffer, from: RemoteInfo): void => void (lastClient = from);
    server.socket.prependListener("message", track);
    try {
      await assert.rejects(
        queryName("WINTARGET", { server: "127.0.0.1", port: server.port, timeoutMs: 300 }),
        NetbiosNameNotFoundError,
      );
      assert.ok(spoofed >= 1, "the spoofed answers were sent");
    } finally {
      server.socket.off("message", track);
      intruder.close();
    }
  });

  it("name query - a negative answer is NETBIOS_NAME_NOT_FOUND at once, naming the name and the server", async () => {
    server.behaviour = (req, reply) =>
      reply({
        kind: "negative-name-query-response",
        transactionId: req.transactionId,
        recursionDesired: true,
        recursionAvailable: false,
        rcode: 3,
      });
    const started = performance.now();
    await assert.rejects(
      queryName("NOSUCH", { server: "127.0.0.1", port: server.port, timeoutMs: 5000 }),
      (err) => {
        assert.ok(err instanceof NetbiosNameNotFoundError);
        assert.equal(err.code, "NETBIOS_NAME_NOT_FOUND");
        assert.match(
          err.message,
          /NOSUCH<20>.*127\.0\.0\.1:\d+ answered that it does not know it \(RCODE 3\)/,
        );
        return true;
      },
    );
    assert.ok(performance.now() - started < 1000);
  });

  it("name query - silence: three queries spread over the deadline, then NETBIOS_NAME_NOT_FOUND on time", async () => {
    server.requests = [];
    server.behaviour = () => {};
    const started = performance.now();
    await assert.rejects(
      queryName("WINTARGET", { server: "127.0.0.1", port: server.port, timeoutMs: 600 }),
      /NetBIOS name WINTARGET<20> not found: no answer of 127\.0\.0\.1:\d+ within 600 ms \(3 queries\)/,
    );
    const elapsed = performance.now() - started;
    assert.ok(elapsed >= 590 && elapsed < 900, `${elapsed} ms`);
    assert.equal(server.requests.length, 3);
    // The same transaction id on each retry: a late answer to the first still counts.
    assert.equal(new Set(server.requests.map((r) => r.transactionId)).size, 1);
  });

  it("name query - abort stops it with the signal's reason", async () => {
    server.behaviour = () => {};
    const controller = new AbortController();
    setTimeout(() => controller.abort(new Error("stopped by the test")), 50);
    const started = performance.now();
    await assert.rejects(
      queryName("WINTARGET", {
        server: "127.0.0.1",
        port: server.port,
        timeoutMs: 5000,
        signal: controller.signal,
      }),
      /stopped by the test/,
    );
    assert.ok(performance.now() - started < 1000);
  });

  it("name query - garbage on the port is ignored, not fatal", async () => {
    server.behaviour = (req, reply) => {
      server.socket.send(Buffer.from("not a name service packet"), lastClient.port, lastClient.address);
      setTimeout(() => reply(positive(req.transactionId, "10.1.2.3")), 20);
    };
    let lastClient: RemoteInfo = { address: "127.0.0.1", port: 0, family: "IPv4", size: 0 };
    const track = (_d: Buffer, from: RemoteInfo): void => void (lastClient = from);
    server.socket.prependListener("message", track);
    try {
      assert.deepEqual(
        await queryName("WINTARGET", { server: "127.0.0.1", port: server.port, timeoutMs: 2000 }),
        ["10.1.2.3"],
      );
    } finally {
      server.socket.off("message", track);
    }
  });

  it("name query - by broadcast: the B flag is set, and a negative answer is not the last word", async () => {
    server.requests = [];
    server.behaviour = (req, reply) => {
      const negative: NameServicePacket = {
        kind: "negative-name-query-response",
        transactionId: req.transactionId,
        recursionDesired: true,
        recursionAvailable: false,
        rcode: 3,
      };
      reply(negative);
      setTimeout(() => reply(positive(req.transactionId, "10.1.2.3")), 30);
    };
    const addresses = await queryName("WINTARGET", {
      broadcast: "127.0.0.1",
      port: server.port,
      timeoutMs: 2000,
    });
    assert.deepEqual(addresses, ["10.1.2.3"]);
    const [request] = server.requests;
    assert.ok(request?.kind === "name-query-request" && request.broadcast);
  });

  it("name query - a name, server or broadcast that cannot be used is CONFIG_INVALID", async () => {
    await assert.rejects(queryName("web.example.net", { server: "127.0.0.1", timeoutMs: 100 }), {
      code: "CONFIG_INVALID",
    });
    await assert.rejects(queryName("WINTARGET", { timeoutMs: 100 }), { code: "CONFIG_INVALID" });
    await assert.rejects(queryName("WINTARGET", { server: "::1", timeoutMs: 100 }), {
      code: "CONFIG_INVALID",
    });
  });

  it("node status - asks '*' and returns the name table and unit id", async () => {
    server.behaviour = (req, reply) =>
      reply({
        kind: "node-status-response",
        transactionId: req.transactionId,
        name: { name: "*", suffix: 0, scope: "" },
        names: [{ name: "WINTARGET", suffix: 0x20, flags: 0x0400 }],
        unitId: "00:00:00:00:00:00",
        statistics: Buffer.alloc(40),
      });
    const status = await nodeStatus("127.0.0.1", { port: server.port, timeoutMs: 2000 });
    assert.deepEqual(status, {
      names: [{ name: "WINTARGET", suffix: 0x20, flags: 0x0400 }],
      unitId: "00:00:00:00:00:00",
    });
  });

  it("broadcast addresses - one per IPv4 interface, loopback excepted", () => {
    for (const b of localBroadcastAddresses()) assert.match(b, /^\d+\.\d+\.\d+\.\d+$/);
    assert.ok(!localBroadcastAddresses().some((b) => b.startsWith("127.")));
  });
});
