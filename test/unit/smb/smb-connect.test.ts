/**
 * openSmbFiles's choice of transport on in-process servers: SMB direct when 445 answers (and then
 * nothing else, whatever SMB says), the NetBIOS session service when it refuses, UNREACHABLE
 * naming both when neither answers. SMB itself is a fake server refusing NEGOTIATE, which is
 * enough to see which way the client came.
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { once } from "node:events";
import net from "node:net";
import { Command } from "../../../actors/smb/codec/header.ts";
import { NtStatus } from "../../../actors/smb/codec/status.ts";
import { openSmbFiles } from "../../../actors/smb/connect.ts";
import { decodeFirstLevel } from "../../../actors/netbios/name.ts";
import { answer, startFakeServer, type FakeServer } from "../../support/smb-fake-server.ts";

const credentials = { user: "sumac", domain: "WORKGROUP", password: "not-sent-anywhere" };

/** A fake SMB server that refuses every NEGOTIATE (as Samba does when no dialect is shared). */
function refusingSmb(): Promise<FakeServer> {
  return startFakeServer((request, server) => {
    if (request.header.command === Command.NEGOTIATE)
      server.send(answer(request.header, { status: NtStatus.NOT_SUPPORTED }));
  });
}

/**
 * A NetBIOS session service (RFC 1002 4.3.2) in front of `upstream`: a positive answer to any
 * SESSION REQUEST, then the bytes relayed both ways. Records the called names.
 */
async function sessionService(
  upstream: number,
): Promise<{ port: number; called: string[]; connections: () => number; close: () => void }> {
  const called: string[] = [];
  let connections = 0;
  const sockets: net.Socket[] = [];
  const server = net.createServer((client) => {
    connections++;
    sockets.push(client);
    client.on("error", () => {});
    let held = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      held = Buffer.concat([held, chunk]);
      if (held.length < 4 || held.length < 4 + held.readUInt16BE(2)) return;
      client.off("data", onData);
      assert.equal(held[0], 0x81, "a SESSION REQUEST first");
      // The called name: a length byte (32), then the first-level encoding (RFC 1001 14.1).
      called.push(decodeFirstLevel(held.subarray(5, 37)).name.trim());
      const rest = held.subarray(4 + held.readUInt16BE(2));
      client.write(Buffer.from([0x82, 0, 0, 0]));
      const smb = net.connect({ host: "127.0.0.1", port: upstream });
      sockets.push(smb);
      smb.on("error", () => client.destroy());
      if (rest.length > 0) smb.write(rest);
      client.pipe(smb).pipe(client);
    };
    client.on("data", onData);
  });
  // Every address (IPv6 and IPv4): "localhost" may resolve to either.
  server.listen(0);
  await once(server, "listening");
  return {
    port: (server.address() as net.AddressInfo).port,
    called,
    connections: () => connections,
    close: () => {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}

async function closedPort(): Promise<number> {
  const server = net.createServer().listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as net.AddressInfo;
  server.close();
  await once(server, "close");
  return port;
}

function failure(p: Promise<unknown>): Promise<Error & { code: string; retryable: boolean }> {
  return p.then(
    () => assert.fail("openSmbFiles succeeded against a server that refuses NEGOTIATE"),
    (e: unknown) => e as Error & { code: string; retryable: boolean },
  );
}

describe("smb connect - openSmbFiles's transports", () => {
  it("smb connect - 445 answering is used alone: its SMB failure is the answer, 139 is not tried", async () => {
    const smb = await refusingSmb();
    const nbss = await sessionService(smb.port);
    after(() => smb.stop());
    after(() => nbss.close());
    const err = await failure(
      openSmbFiles({
        host: "127.0.0.1",
        port: smb.port,
        sessionPort: nbss.port,
        credentials,
        timeoutMs: 5_000,
      }),
    );
    assert.equal(err.code, "SMB_NEGOTIATION_FAILED", err.message);
    assert.equal(smb.requests.length, 1);
    assert.equal(nbss.connections(), 0);
  });

  it("smb connect - 445 refusing: SMB goes over a NetBIOS session on 139, called *SMBSERVER for an address", async () => {
    const smb = await refusingSmb();
    const nbss = await sessionService(smb.port);
    after(() => smb.stop());
    after(() => nbss.close());
    const err = await failure(
      openSmbFiles({
        host: "127.0.0.1",
        port: await closedPort(),
        sessionPort: nbss.port,
        credentials,
        timeoutMs: 5_000,
      }),
    );
    assert.equal(err.code, "SMB_NEGOTIATION_FAILED", err.message);
    assert.deepEqual(nbss.called, ["*SMBSERVER"]);
    assert.equal(smb.requests[0]?.header.command, Command.NEGOTIATE);
  });

  it("smb connect - a host name's first label is the called name on 139", async () => {
    const smb = await refusingSmb();
    const nbss = await sessionService(smb.port);
    after(() => smb.stop());
    after(() => nbss.close());
    const err = await failure(
      openSmbFiles({
        host: "localhost",
        port: await closedPort(),
        sessionPort: nbss.port,
        credentials,
        timeoutMs: 5_000,
      }),
    );
    assert.equal(err.code, "SMB_NEGOTIATION_FAILED", err.message);
    assert.deepEqual(nbss.called, ["LOCALHOST"]);
  });

  it("smb connect - netbios never: 445 refusing is UNREACHABLE, 139 not tried", async () => {
    const smb = await refusingSmb();
    const nbss = await sessionService(smb.port);
    after(() => smb.stop());
    after(() => nbss.close());
    const direct = await closedPort();
    const err = await failure(
      openSmbFiles({
        host: "127.0.0.1",
        port: direct,
        sessionPort: nbss.port,
        netbios: "never",
        credentials,
        timeoutMs: 5_000,
      }),
    );
    assert.equal(err.code, "UNREACHABLE");
    assert.match(err.message, new RegExp(`:${direct}: ECONNREFUSED`));
    assert.equal(nbss.connections(), 0);
  });

  it("smb connect - neither answering is UNREACHABLE and retryable, naming both ports, never the password", async () => {
    const [direct, session] = [await closedPort(), await closedPort()];
    const err = await failure(
      openSmbFiles({ host: "127.0.0.1", port: direct, sessionPort: session, credentials, timeoutMs: 5_000 }),
    );
    assert.equal(err.code, "UNREACHABLE");
    assert.equal(err.retryable, true);
    assert.match(err.message, new RegExp(`port ${direct}: .*; port ${session}: `));
    assert.ok(!err.message.includes(credentials.password));
  });

  it("smb connect - an aborted open rejects with the signal's reason", async () => {
    const stop = new AbortController();
    stop.abort(new Error("stopped by the test"));
    await assert.rejects(
      openSmbFiles({ host: "127.0.0.1", credentials, timeoutMs: 5_000, signal: stop.signal }),
      /stopped by the test/,
    );
  });
});
