import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import { Command, HeaderFlag } from "../../../actors/smb/codec/header.ts";
import { SmbConnection } from "../../../actors/smb/client/connection.ts";
import { CreditWindow } from "../../../actors/smb/client/credits.ts";
import { answer, fakeSeal, startFakeServer, type FakeServer } from "../../support/smb-fake-server.ts";

const STATUS_PENDING = 0x103;
const echo = () => ({ command: Command.ECHO, body: Buffer.from([4, 0, 0, 0]) });

const servers: FakeServer[] = [];
after(async () => {
  for (const s of servers) await s.stop();
});

async function connect(
  handle: Parameters<typeof startFakeServer>[0],
): Promise<{ conn: SmbConnection; server: FakeServer }> {
  const server = await startFakeServer(handle);
  servers.push(server);
  const conn = await SmbConnection.open({ host: "127.0.0.1", port: server.port, timeoutMs: 2_000 });
  return { conn, server };
}

describe("smb client credits", () => {
  it("credits - a request waits for credits until a response grants them, in order", async () => {
    const w = new CreditWindow();
    const first = await w.take(0);
    assert.equal(first.messageId, 0n);
    let second: bigint | undefined;
    const p = w.take(0).then((g) => (second = g.messageId));
    await new Promise((r) => setImmediate(r));
    assert.equal(second, undefined);
    w.granted(3);
    w.settled();
    await p;
    assert.equal(second, 1n);
  });

  it("credits - with nothing in flight and no credits, a request fails with SMB_NO_CREDITS", async () => {
    const w = new CreditWindow();
    await w.take(0);
    w.granted(0);
    w.settled();
    await assert.rejects(w.take(0), { code: "SMB_NO_CREDITS" });
  });

  it("credits - 2.1 and later charge one credit per 64 KiB and consume as many message ids", async () => {
    const w = new CreditWindow();
    w.setMultiCredit(true);
    w.granted(10);
    const g = await w.take(65536 * 3 + 1);
    assert.equal(g.creditCharge, 4);
    assert.equal((await w.take(1)).messageId, 4n);
    assert.equal(new CreditWindow().chargeFor(1 << 20), 0); // 2.0.2: CreditCharge 0
  });
});

describe("smb client connection", () => {
  it("connection - answers are routed by MessageId whatever their order", async () => {
    const { conn } = await connect((req, server) => {
      if (req.header.messageId === 0n) server.send(answer(req.header, { credits: 10 }));
      else if (server.requests.length === 3) {
        // answer the second and third in reverse order
        for (const r of server.requests.slice(1).reverse())
          server.send(answer(r.header, { credits: 1, status: Number(r.header.messageId) }));
      }
    });
    await conn.send(echo(), { timeoutMs: 2_000 });
    const [a, b] = await Promise.all([
      conn.send(echo(), { timeoutMs: 2_000 }),
      conn.send(echo(), { timeoutMs: 2_000 }),
    ]);
    assert.equal(a.header.messageId, 1n);
    assert.equal(a.header.status, 1);
    assert.equal(b.header.messageId, 2n);
    assert.equal(b.header.status, 2);
    conn.destroy();
  });

  it("connection - an interim STATUS_PENDING keeps the call waiting for the final answer", async () => {
    const { conn } = await connect((req, server) => {
      server.send(
        answer(req.header, {
          status: STATUS_PENDING,
          flags: HeaderFlag.SERVER_TO_REDIR | HeaderFlag.ASYNC_COMMAND,
          asyncId: 77n,
          credits: 2,
        }),
      );
      setTimeout(
        () =>
          server.send(
            answer(req.header, {
              status: 0,
              flags: HeaderFlag.SERVER_TO_REDIR | HeaderFlag.ASYNC_COMMAND,
              asyncId: 77n,
            }),
          ),
        50,
      );
    });
    const r = await conn.send(echo(), { timeoutMs: 2_000 });
    assert.equal(r.header.status, 0);
    assert.equal(r.header.asyncId, 77n);
    assert.equal(conn.credits.credits, 3);
    conn.destroy();
  });

  it("connection - giving up a pending call sends SMB2 CANCEL with its AsyncId", async () => {
    const { conn, server } = await connect((req, s) => {
      if (req.header.command === Command.ECHO)
        s.send(
          answer(req.header, {
            status: STATUS_PENDING,
            flags: HeaderFlag.SERVER_TO_REDIR | HeaderFlag.ASYNC_COMMAND,
            asyncId: 99n,
          }),
        );
    });
    const abort = new AbortController();
    const call = conn.send(echo(), { timeoutMs: 5_000, signal: abort.signal });
    await new Promise((r) => setTimeout(r, 100));
    abort.abort(new Error("stopped"));
    await assert.rejects(call, /stopped/);
    await new Promise((r) => setTimeout(r, 100));
    const cancel = server.requests.find((r) => r.header.command === Command.CANCEL);
    assert.ok(cancel, "a CANCEL was sent");
    assert.equal(cancel.header.asyncId, 99n);
    assert.ok((cancel.header.flags & HeaderFlag.ASYNC_COMMAND) !== 0);
    conn.destroy();
  });

  it("connection - a call past its deadline fails with TIMEOUT", async () => {
    const { conn } = await connect(() => {});
    const t0 = performance.now();
    await assert.rejects(conn.send(echo(), { timeoutMs: 150 }), { code: "TIMEOUT" });
    assert.ok(performance.now() - t0 < 1_000);
    conn.destroy();
  });

  it("connection - a server that grants no credits fails the next call with SMB_NO_CREDITS", async () => {
    const { conn } = await connect((req, s) => s.send(answer(req.header, { credits: 0 })));
    await conn.send(echo(), { timeoutMs: 1_000 });
    await assert.rejects(conn.send(echo(), { timeoutMs: 1_000 }), { code: "SMB_NO_CREDITS" });
    conn.destroy();
  });

  it("connection - a dropped connection fails every call in flight with CONNECTION_LOST", async () => {
    const { conn, server } = await connect((req, s) => {
      if (req.header.messageId === 0n) s.send(answer(req.header, { credits: 5 }));
    });
    await conn.send(echo(), { timeoutMs: 1_000 });
    const calls = [conn.send(echo(), { timeoutMs: 5_000 }), conn.send(echo(), { timeoutMs: 5_000 })];
    await new Promise((r) => setTimeout(r, 50));
    server.drop();
    for (const c of calls) await assert.rejects(c, { code: "CONNECTION_LOST" });
    await assert.rejects(conn.send(echo(), { timeoutMs: 1_000 }), { code: "CONNECTION_LOST" });
  });

  it("connection - on a signing session an unsigned or badly signed answer fails with SMB_INTEGRITY_FAILED", async () => {
    const { conn } = await connect((req, s) => {
      const n = Number(req.header.messageId);
      const signed = n === 2 ? HeaderFlag.SIGNED : 0;
      s.send(
        answer(req.header, {
          credits: 5,
          flags: HeaderFlag.SERVER_TO_REDIR | signed,
          signature: Buffer.alloc(16, n === 2 ? 1 : 0),
        }),
      );
    });
    await conn.send(echo(), { timeoutMs: 1_000 }); // before the session key: unsigned is fine
    conn.secure({
      sessionId: 5n,
      sign: (m) => m.fill(0xaa, 48, 64),
      verify: (m) => m.subarray(48, 64).equals(Buffer.alloc(16, 0xbb)),
      signAll: true,
      encryptAll: false,
    });
    await assert.rejects(conn.send(echo(), { timeoutMs: 1_000 }), { code: "SMB_INTEGRITY_FAILED" }); // unsigned
    await assert.rejects(conn.send(echo(), { timeoutMs: 1_000 }), { code: "SMB_INTEGRITY_FAILED" }); // bad signature
    conn.destroy();
  });

  it("connection - on a session that signs on request only, a signed answer is still verified", async () => {
    const { conn } = await connect((req, s) => {
      const flags = HeaderFlag.SERVER_TO_REDIR | (req.header.messageId === 2n ? HeaderFlag.SIGNED : 0);
      s.send(answer(req.header, { credits: 5, flags, signature: Buffer.alloc(16, 1) }));
    });
    await conn.send(echo(), { timeoutMs: 1_000 });
    conn.secure({ sessionId: 5n, sign: () => {}, verify: () => false, signAll: false, encryptAll: false });
    await conn.send(echo(), { timeoutMs: 1_000 }); // unsigned answer to an unsigned request: fine
    await assert.rejects(conn.send(echo(), { timeoutMs: 1_000 }), { code: "SMB_INTEGRITY_FAILED" });
    conn.destroy();
  });

  it("connection - encrypted requests go sealed; a sealed answer is taken, a clear one is SMB_INTEGRITY_FAILED", async () => {
    const { conn, server } = await connect((req, s) => {
      const reply = answer(req.header, { credits: 5 });
      s.send(req.header.messageId === 1n ? fakeSeal.encrypt(reply) : reply);
    });
    await conn.send(echo(), { timeoutMs: 1_000 });
    conn.secure({ sessionId: 5n, seal: fakeSeal, signAll: false, encryptAll: false });
    const ok = await conn.send({ ...echo(), encrypt: true }, { timeoutMs: 1_000 });
    assert.equal(ok.header.messageId, 1n);
    assert.equal(server.requests[1]?.sealed, true);
    await assert.rejects(conn.send({ ...echo(), encrypt: true }, { timeoutMs: 1_000 }), {
      code: "SMB_INTEGRITY_FAILED",
    });
    conn.destroy();
  });

  it("connection - a refused connect is UNREACHABLE", async () => {
    const probe = net.createServer();
    await new Promise<void>((r) => probe.listen(0, "127.0.0.1", r));
    const port = (probe.address() as net.AddressInfo).port;
    await new Promise((r) => probe.close(r));
    await assert.rejects(SmbConnection.open({ host: "127.0.0.1", port, timeoutMs: 2_000 }), {
      code: "UNREACHABLE",
    });
  });
});
