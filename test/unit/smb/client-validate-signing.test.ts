import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { Budget } from "../../../actors/smb/client/budget.ts";
import { SmbConnection } from "../../../actors/smb/client/connection.ts";
import type { Negotiated } from "../../../actors/smb/client/negotiate.ts";
import type { Session } from "../../../actors/smb/client/session.ts";
import { validateNegotiate } from "../../../actors/smb/client/validate-negotiate.ts";
import { Command, HeaderFlag } from "../../../actors/smb/codec/header.ts";
import { encodeIoctlResponse, encodeValidateNegotiateInfoResponse } from "../../../actors/smb/codec/ioctl.ts";
import { encodeTreeConnectResponse } from "../../../actors/smb/codec/tree-connect.ts";
import { answer, startFakeServer, type FakeServer } from "../../support/smb-fake-server.ts";

const servers: FakeServer[] = [];
after(async () => {
  for (const s of servers) await s.stop();
});

describe("smb client validate negotiate on a session that does not sign everything", () => {
  it("validate negotiate - the IOCTL is signed, and an unsigned (forged) answer is SMB_INTEGRITY_FAILED", async () => {
    // A man in the middle cleared SIGNING_REQUIRED in the NEGOTIATE answer (the caller did not
    // require signing): MS-SMB2 3.2.4.1.1 still signs FSCTL_VALIDATE_NEGOTIATE_INFO, so he cannot
    // answer it for the server.
    const serverGuid = Buffer.alloc(16, 3);
    const server = await startFakeServer((req, s) => {
      const h = req.header;
      if (h.command === Command.TREE_CONNECT) {
        const body = encodeTreeConnectResponse({
          shareType: 2,
          shareFlags: 0,
          capabilities: 0,
          maximalAccess: 0,
        });
        s.send(answer(h, { credits: 4, treeId: 7 }, body));
      } else if (h.command === Command.IOCTL) {
        const output = encodeValidateNegotiateInfoResponse({
          capabilities: 0x44,
          guid: serverGuid,
          securityMode: 1,
          dialect: 0x0300,
        });
        const body = encodeIoctlResponse({
          ctlCode: 0x00140204,
          fileId: Buffer.alloc(16, 0xff),
          input: Buffer.alloc(0),
          output,
          flags: 0,
        });
        s.send(answer(h, { credits: 1 }, body));
      } else if (h.command === Command.TREE_DISCONNECT) {
        s.send(answer(h, { credits: 1 }, Buffer.from([4, 0, 0, 0])));
      }
    });
    servers.push(server);
    const conn = await SmbConnection.open({ host: "127.0.0.1", port: server.port, timeoutMs: 2_000 });
    conn.negotiated({ multiCredit: true, maxPayload: 65536 });
    conn.secure({
      sessionId: 5n,
      sign: (m) => m.fill(0xaa, 48, 64),
      verify: (m) => m.subarray(48, 64).equals(Buffer.alloc(16, 0xaa)),
      signAll: false,
      encryptAll: false,
    });
    const negotiated = {
      dialect: 0x0300,
      multiCredit: true,
      maxReadSize: 65536,
      maxWriteSize: 65536,
      maxTransactSize: 65536,
      signingRequired: false,
      serverGuid,
      serverSecurityMode: 1,
      serverCapabilities: 0x44,
      request: {
        securityMode: 1,
        capabilities: 0x44,
        clientGuid: Buffer.alloc(16, 9),
        dialects: [0x0300, 0x0302],
        negotiateContexts: [],
      },
    } as unknown as Negotiated;
    const ctx = { conn, host: "127.0.0.1", negotiated, session: { encryptAll: false } as Session };
    await assert.rejects(validateNegotiate(ctx, negotiated, new Budget({ timeoutMs: 2_000 })), {
      code: "SMB_INTEGRITY_FAILED",
    });
    const ioctl = server.requests.find((r) => r.header.command === Command.IOCTL);
    assert.ok(ioctl !== undefined && (ioctl.header.flags & HeaderFlag.SIGNED) !== 0, "the IOCTL went signed");
    conn.destroy();
  });
});
