/**
 * A TreeIo on a fake SMB server (test/support/smb-fake-server.ts), as the client's tree operations
 * see one after NEGOTIATE, SESSION_SETUP and TREE_CONNECT: SMB 3.1.1, multi-credit, no signing or
 * encryption, reads and writes of `chunk` bytes. For unit tests of what goes on a tree.
 */
import { SmbConnection } from "../../../actors/smb/client/connection.ts";
import type { Negotiated } from "../../../actors/smb/client/negotiate.ts";
import type { Session } from "../../../actors/smb/client/session.ts";
import { TreeIo } from "../../../actors/smb/client/tree-io.ts";
import type { FakeServer } from "../../support/smb-fake-server.ts";

export async function fakeTree(
  server: FakeServer,
  chunk = 65536,
): Promise<{ io: TreeIo; conn: SmbConnection }> {
  const conn = await SmbConnection.open({ host: "127.0.0.1", port: server.port, timeoutMs: 2_000 });
  conn.negotiated({ multiCredit: true, maxPayload: 1 << 20 });
  const negotiated = {
    dialect: 0x0311,
    multiCredit: true,
    maxReadSize: chunk,
    maxWriteSize: chunk,
    maxTransactSize: chunk,
  } as Negotiated;
  const session = { encryptAll: false } as Session;
  return { io: new TreeIo({ conn, host: "127.0.0.1", negotiated, session }, "ADMIN$", 1, false), conn };
}
