import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { Command, HeaderFlag } from "../../../actors/smb/codec/header.ts";
import { SmbConnection } from "../../../actors/smb/client/connection.ts";
import { signMessage, verifySignature } from "../../../actors/smb/crypto/signing.ts";
import { answer, startFakeServer, type FakeServer } from "../../support/smb-fake-server.ts";

const servers: FakeServer[] = [];
after(async () => {
  for (const s of servers) await s.stop();
});

/** SMB2 CLOSE request (MS-SMB2 2.2.15): its answer's body is never read by the client. */
const closeRequest = (): Buffer =>
  Buffer.concat([Buffer.from([24, 0, 0, 0, 0, 0, 0, 0]), Buffer.alloc(16, 7)]);

for (const [name, alg] of [
  ["HMAC-SHA256", 0],
  ["AES-CMAC", 1],
  ["AES-GMAC", 2],
] as const) {
  describe(`smb client answers on a signed session (${name})`, () => {
    const key = randomBytes(16);
    const secured = (conn: SmbConnection): void =>
      conn.secure({
        sessionId: 5n,
        sign: (m) => signMessage(alg, key, m),
        verify: (m) => verifySignature(alg, key, m),
        signAll: true,
        encryptAll: false,
      });

    it("connection - the client's own signed request sent back as its answer is SMB_INTEGRITY_FAILED", async () => {
      // A man in the middle drops the request and reflects it: same MessageId, same key both ways.
      const server = await startFakeServer((req, s) => {
        if (req.header.messageId === 0n) s.send(answer(req.header, { credits: 5 }));
        else s.send(req.message);
      });
      servers.push(server);
      const conn = await SmbConnection.open({ host: "127.0.0.1", port: server.port, timeoutMs: 2_000 });
      await conn.send({ command: Command.ECHO, body: Buffer.from([4, 0, 0, 0]) }, { timeoutMs: 1_000 });
      secured(conn);
      await assert.rejects(
        conn.send({ command: Command.CLOSE, body: closeRequest(), treeId: 1 }, { timeoutMs: 1_000 }),
        { code: "SMB_INTEGRITY_FAILED" },
      );
      conn.destroy();
    });

    it("connection - a signed answer of another command for the MessageId is SMB_INTEGRITY_FAILED", async () => {
      const server = await startFakeServer((req, s) => {
        if (req.header.messageId === 0n) return s.send(answer(req.header, { credits: 5 }));
        const reply = answer(req.header, {
          command: Command.ECHO,
          credits: 5,
          flags: HeaderFlag.SERVER_TO_REDIR | HeaderFlag.SIGNED,
        });
        signMessage(alg, key, reply);
        s.send(reply);
      });
      servers.push(server);
      const conn = await SmbConnection.open({ host: "127.0.0.1", port: server.port, timeoutMs: 2_000 });
      await conn.send({ command: Command.ECHO, body: Buffer.from([4, 0, 0, 0]) }, { timeoutMs: 1_000 });
      secured(conn);
      await assert.rejects(
        conn.send({ command: Command.CLOSE, body: closeRequest(), treeId: 1 }, { timeoutMs: 1_000 }),
        { code: "SMB_INTEGRITY_FAILED" },
      );
      conn.destroy();
    });
  });
}
