import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { RpcClient } from "../../actors/rpc/client.ts";
import { RpcBindRefusedError, RpcFaultError } from "../../actors/rpc/errors.ts";
import { NdrReader, NdrWriter } from "../../actors/rpc/ndr.ts";
import { SmbClient } from "../../actors/smb/client/client.ts";
import type { SmbPipe } from "../../actors/smb/client/pipe.ts";
import type { SmbTree } from "../../actors/smb/client/tree.ts";
import { containerSkipReason } from "../support/engine.ts";
import { scmClientSkipReason, startScmPeer, type ScmPeer } from "../support/scm-peer.ts";

/** svcctl, MS-SCMR 1.9. */
const SVCCTL = { uuid: "367abb81-9844-35f1-ad32-98f038001003", version: 2 };
const call = { timeoutMs: 15_000 };

// containerSkipReason and scmClientSkipReason throw in CI, so there this suite fails, never skips.
const skip = (await containerSkipReason()) ?? (await scmClientSkipReason());

describe("rpc svcctl - sumac's DCE/RPC client over its SMB client against scm-peer", { skip }, () => {
  let peer: ScmPeer | undefined;
  let client: SmbClient | undefined;
  let ipc: SmbTree | undefined;
  const pipes: SmbPipe[] = [];

  before(async () => {
    peer = await startScmPeer();
    client = await SmbClient.connect({
      host: peer.host,
      port: peer.port,
      credentials: { user: peer.user, domain: peer.domain, password: peer.password },
      timeoutMs: 20_000,
    });
    ipc = await client.treeConnect("IPC$", call);
  });
  after(async () => {
    for (const p of pipes) await p.close(call).catch(() => undefined);
    await client?.close();
    await peer?.stop();
  });

  async function openSvcctl(): Promise<SmbPipe> {
    const pipe = await ipc!.openPipe("svcctl", call);
    pipes.push(pipe);
    return pipe;
  }

  it("rpc svcctl - a bind to svcctl v2.0 in NDR 2.0 is accepted, and ROpenSCManagerW answers a handle", async (t) => {
    const rpc = await RpcClient.bind(await openSvcctl(), { abstractSyntax: SVCCTL, ...call });
    assert.ok(rpc.maxXmitFrag >= 1432 && rpc.maxXmitFrag <= 4280, `max_xmit_frag ${rpc.maxXmitFrag}`);
    assert.ok(rpc.maxRecvFrag >= 1432 && rpc.maxRecvFrag <= 4280, `max_recv_frag ${rpc.maxRecvFrag}`);
    // ROpenSCManagerW (opnum 15, MS-SCMR 3.1.4.15): lpMachineName, lpDatabaseName NULL, SC_MANAGER_CONNECT.
    const stub = new NdrWriter().uniqueWstring("SCMPEER").uniqueWstring(undefined).u32(0x0001).toBuffer();
    const answer = new NdrReader(await rpc.call(15, stub, call), "ROpenSCManagerW answer");
    const handle = answer.contextHandle();
    assert.equal(answer.u32(), 0, "ERROR_SUCCESS");
    assert.equal(answer.remaining, 0);
    assert.ok(!handle.equals(Buffer.alloc(20)), "a non-null handle");
    // RCloseServiceHandle (opnum 0): the handle, and a null handle back.
    const closed = new NdrReader(
      await rpc.call(0, new NdrWriter().contextHandle(handle).toBuffer(), call),
      "close",
    );
    assert.ok(closed.contextHandle().equals(Buffer.alloc(20)));
    assert.equal(closed.u32(), 0);
    t.diagnostic(`negotiated max_xmit_frag ${rpc.maxXmitFrag}, max_recv_frag ${rpc.maxRecvFrag}`);
  });

  it("rpc svcctl - a bind to an interface the server does not have is refused as a typed error", async () => {
    const unknown = { uuid: "12345678-1234-abcd-ef00-0123456789ab", version: 1 };
    await assert.rejects(
      RpcClient.bind(await openSvcctl(), { abstractSyntax: unknown, ...call }),
      (err: unknown) => {
        assert.ok(err instanceof RpcBindRefusedError, String(err));
        // impacket-based scm-peer answers as Windows does: a BIND_ACK whose one result is a
        // provider_rejection with abstract_syntax_not_supported, not a BIND_NAK.
        assert.deepEqual(
          [err.code, err.result, err.reasonName],
          ["RPC_BIND_REFUSED", 2, "abstract_syntax_not_supported"],
        );
        return true;
      },
    );
    // The wrong major version of svcctl is refused the same way.
    await assert.rejects(
      RpcClient.bind(await openSvcctl(), { abstractSyntax: { ...SVCCTL, version: 3 }, ...call }),
      RpcBindRefusedError,
    );
  });

  it("rpc svcctl - a call to an opnum svcctl does not have is a FAULT nca_s_op_rng_error, and the binding goes on", async () => {
    const rpc = await RpcClient.bind(await openSvcctl(), { abstractSyntax: SVCCTL, ...call });
    await assert.rejects(rpc.call(250, Buffer.alloc(0), call), (err: unknown) => {
      assert.ok(err instanceof RpcFaultError, String(err));
      assert.deepEqual(
        [err.code, err.status, err.statusName, err.didNotExecute],
        ["RPC_FAULT", 0x1c010002, "nca_s_op_rng_error", true],
      );
      return true;
    });
    const stub = new NdrWriter().uniqueWstring(undefined).uniqueWstring(undefined).u32(0x0001).toBuffer();
    const answer = new NdrReader(await rpc.call(15, stub, call), "ROpenSCManagerW answer");
    answer.contextHandle();
    assert.equal(answer.u32(), 0);
  });

  it("rpc svcctl - a request stub of several fragments is reassembled by the server and answered", async () => {
    const rpc = await RpcClient.bind(await openSvcctl(), { abstractSyntax: SVCCTL, ...call });
    // ROpenSCManagerW with a 6000-character machine name: three fragments of at most 4280 bytes.
    // scm-peer decodes the whole stub (it faults with RPC_X_BAD_STUB_DATA on a partial one), then
    // opens the SCM and logs the name's length.
    const stub = new NdrWriter()
      .uniqueWstring("A".repeat(6000))
      .uniqueWstring(undefined)
      .u32(0x0001)
      .toBuffer();
    assert.ok(stub.length > 2 * (rpc.maxXmitFrag - 24), `a stub of ${stub.length} bytes`);
    const r = new NdrReader(await rpc.call(15, stub, call), "ROpenSCManagerW answer");
    assert.ok(!r.contextHandle().equals(Buffer.alloc(20)));
    assert.equal(r.u32(), 0, "ERROR_SUCCESS");
    assert.match(await peer!.logs(5), /ROpenSCManagerW\(machine='AAAA.*\(6002 chars\)/);
  });
});
