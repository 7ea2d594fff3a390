import assert from "node:assert/strict";
import { createServer, type AddressInfo, type Server, type Socket } from "node:net";
import { after, describe, it } from "node:test";
import { NetbiosSessionRefusedError } from "../../../actors/netbios/errors.ts";
import { decodeSessionPacket, encodeSessionPacket } from "../../../actors/netbios/session-codec.ts";
import { openNetbiosSession } from "../../../actors/netbios/session-service.ts";

const servers: Server[] = [];
const accepted: Socket[] = [];
after(() => {
  accepted.forEach((s) => s.destroy());
  servers.forEach((s) => s.close());
});

/** A session service on 127.0.0.1 that gives each request (its bytes) to `answer`. */
async function fakeSessionService(answer: (request: Buffer, socket: Socket) => void): Promise<number> {
  const server = createServer((socket) => {
    accepted.push(socket);
    let got = Buffer.alloc(0);
    socket.on("error", () => {});
    socket.on("data", (chunk: Buffer) => {
      got = Buffer.concat([got, chunk]);
      if (got.length >= 4 && got.length >= 4 + got.readUInt16BE(2)) answer(got, socket);
    });
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return (server.address() as AddressInfo).port;
}

const positive = encodeSessionPacket({ kind: "positive-session-response" });
const options = { host: "127.0.0.1", calledName: "wintarget", callingName: "sumac", timeoutMs: 2000 };

function firstData(socket: Socket): Promise<Buffer> {
  return new Promise((resolve) => socket.once("data", resolve));
}

describe("netbios session service", () => {
  it("session service - sends WINTARGET<20> from SUMAC<00>; a positive answer gives the socket, data after it kept", async () => {
    let request: Buffer | undefined;
    const port = await fakeSessionService((req, socket) => {
      request = req;
      socket.write(Buffer.concat([positive, Buffer.from("00000003abcdef", "hex")]));
    });
    const socket = await openNetbiosSession({ ...options, port });
    try {
      assert.deepEqual(decodeSessionPacket(request!), {
        kind: "session-request",
        called: { name: "WINTARGET", suffix: 0x20, scope: "" },
        calling: { name: "SUMAC", suffix: 0x00, scope: "" },
      });
      assert.equal((await firstData(socket)).toString("hex"), "00000003abcdef");
    } finally {
      socket.destroy();
    }
  });

  it("session service - keep-alives before the answer are skipped", async () => {
    const keepAlive = encodeSessionPacket({ kind: "keep-alive" });
    const port = await fakeSessionService((_req, socket) => {
      socket.write(keepAlive);
      setTimeout(() => socket.write(positive), 20);
    });
    (await openNetbiosSession({ ...options, port })).destroy();
  });

  it("session service - a negative answer is NetbiosSessionRefusedError with its code and meaning", async () => {
    const port = await fakeSessionService((_req, socket) =>
      socket.end(encodeSessionPacket({ kind: "negative-session-response", errorCode: 0x82 })),
    );
    await assert.rejects(openNetbiosSession({ ...options, port }), (err) => {
      assert.ok(err instanceof NetbiosSessionRefusedError);
      assert.equal(err.code, "UNREACHABLE");
      assert.equal(err.sessionErrorCode, 0x82);
      assert.match(
        err.message,
        /refused a NetBIOS session for WINTARGET<20>: called name not present \(0x82\)$/,
      );
      return true;
    });
    await assert.rejects(openNetbiosSession({ ...options, port, calledName: "*SMBSERVER" }), {
      message: /\*SMBSERVER<20>: called name not present \(0x82\); ask again with the server's own name/,
    });
  });

  it("session service - a retarget is followed to the address and port it gives", async () => {
    const final = await fakeSessionService((_req, socket) => socket.write(positive));
    const first = await fakeSessionService((_req, socket) =>
      socket.end(
        encodeSessionPacket({ kind: "retarget-session-response", address: "127.0.0.1", port: final }),
      ),
    );
    const socket = await openNetbiosSession({ ...options, port: first });
    assert.equal(socket.remotePort, final);
    socket.destroy();
  });

  it("session service - a retarget to another host is refused (UNREACHABLE): the session and its logon stay with the target", async () => {
    // A server the attacker holds (or a man in the middle on port 139) must not send the client,
    // its credentials and the job meant for this target, to another machine.
    let reached = false;
    const elsewhere = await fakeSessionService((_req, socket) => {
      reached = true;
      socket.write(positive);
    });
    const first = await fakeSessionService((_req, socket) =>
      socket.end(
        encodeSessionPacket({ kind: "retarget-session-response", address: "127.0.0.2", port: elsewhere }),
      ),
    );
    await assert.rejects(openNetbiosSession({ ...options, port: first }), {
      code: "UNREACHABLE",
      message: /another host/,
    });
    assert.equal(reached, false);
  });

  it("session service - a retarget loop ends after 3 hops (UNREACHABLE)", async () => {
    let hops = 0;
    const port: number = await fakeSessionService((_req, socket) => {
      hops++;
      socket.end(encodeSessionPacket({ kind: "retarget-session-response", address: "127.0.0.1", port }));
    });
    await assert.rejects(openNetbiosSession({ ...options, port }), {
      code: "UNREACHABLE",
      message: /more than 3 retargets/,
    });
    assert.equal(hops, 4);
  });

  it("session service - closed before answering: CONNECTION_LOST; refused: UNREACHABLE; malformed: MALFORMED_PACKET", async () => {
    const closing = await fakeSessionService((_req, socket) => socket.end());
    await assert.rejects(openNetbiosSession({ ...options, port: closing }), { code: "CONNECTION_LOST" });
    const garbage = await fakeSessionService((_req, socket) =>
      socket.write(Buffer.from("SSH-2.0-OpenSSH\r\n")),
    );
    await assert.rejects(openNetbiosSession({ ...options, port: garbage }), { code: "MALFORMED_PACKET" });
    const gone = createServer();
    await new Promise<void>((resolve) => gone.listen(0, "127.0.0.1", resolve));
    const port = (gone.address() as AddressInfo).port;
    await new Promise<void>((resolve) => gone.close(() => resolve()));
    // A port just closed is not taken again this soon by another test of this process.
    await assert.rejects(openNetbiosSession({ ...options, port }), {
      code: "UNREACHABLE",
      message: /ECONNREFUSED/,
    });
  });

  it("session service - a silent server: TIMEOUT at the deadline; abort: the signal's reason", async () => {
    const port = await fakeSessionService(() => {});
    const started = performance.now();
    await assert.rejects(openNetbiosSession({ ...options, port, timeoutMs: 200 }), {
      code: "TIMEOUT",
      message: /not open within 200 ms/,
    });
    assert.ok(performance.now() - started < 600);
    const controller = new AbortController();
    setTimeout(() => controller.abort(new Error("cancelled")), 30);
    await assert.rejects(openNetbiosSession({ ...options, port, signal: controller.signal }), /cancelled/);
  });

  it("session service - a called name that is not a NetBIOS name is CONFIG_INVALID", async () => {
    await assert.rejects(openNetbiosSession({ ...options, calledName: "web.example.net" }), {
      code: "CONFIG_INVALID",
    });
  });
});
