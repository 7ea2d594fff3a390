import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { RpcClient } from "../../../actors/rpc/client.ts";
import { RpcBindRefusedError, RpcConfigError, RpcFaultError } from "../../../actors/rpc/errors.ts";
import { encodePdu, PType, WHOLE } from "../../../actors/rpc/pdu.ts";
import { MalformedPacketError } from "../../../actors/wire/bytes.ts";
import { acceptBind, fault, FakePipe, response, responseFragments } from "./fake-pipe.ts";

const SVCCTL = { uuid: "367abb81-9844-35f1-ad32-98f038001003", version: 2 };
const o = { timeoutMs: 2_000 };

function stubOf(n: number): Buffer {
  return Buffer.from(Array.from({ length: n }, (_, i) => (i * 7) & 0xff));
}

describe("rpc client", () => {
  it("rpc client - bind sends one BIND for the interface in NDR 2.0 and keeps the negotiated fragment sizes", async () => {
    const pipe = new FakePipe();
    pipe.bindAnswer = (b) => [acceptBind(b.callId, 2048, 3000)];
    const rpc = await RpcClient.bind(pipe, { abstractSyntax: SVCCTL, ...o });
    assert.equal(pipe.sent.length, 1);
    const bind = pipe.sent[0]!.pdu;
    assert.equal(bind.ptype, PType.BIND);
    if (bind.ptype !== PType.BIND) return;
    assert.deepEqual(bind.body.contexts[0]?.abstractSyntax, { ...SVCCTL, minor: 0 });
    assert.deepEqual([bind.body.maxXmitFrag, bind.body.maxRecvFrag, bind.callId], [4280, 4280, 1]);
    assert.deepEqual([rpc.maxXmitFrag, rpc.maxRecvFrag, rpc.assocGroupId], [3000, 2048, 0x1234]);
  });

  it("rpc client - a rejected context and a BIND_NAK are RpcBindRefusedError with the reason's name", async () => {
    const pipe = new FakePipe();
    pipe.bindAnswer = (b) => [
      encodePdu({
        ptype: PType.BIND_ACK,
        flags: WHOLE,
        callId: b.callId,
        body: {
          maxXmitFrag: 4280,
          maxRecvFrag: 4280,
          assocGroupId: 1,
          secondaryAddress: "",
          results: [
            {
              result: 2,
              reason: 1,
              transferSyntax: { uuid: "00000000-0000-0000-0000-000000000000", version: 0, minor: 0 },
            },
          ],
        },
      }),
    ];
    await assert.rejects(RpcClient.bind(pipe, { abstractSyntax: SVCCTL, ...o }), (err: unknown) => {
      assert.ok(err instanceof RpcBindRefusedError);
      assert.deepEqual(
        [err.code, err.result, err.reason, err.reasonName],
        ["RPC_BIND_REFUSED", 2, 1, "abstract_syntax_not_supported"],
      );
      return true;
    });
    pipe.bindAnswer = (b) => [
      encodePdu({
        ptype: PType.BIND_NAK,
        flags: WHOLE,
        callId: b.callId,
        body: { rejectReason: 4, versions: [[5, 0]] },
      }),
    ];
    await assert.rejects(RpcClient.bind(pipe, { abstractSyntax: SVCCTL, ...o }), (err: unknown) => {
      assert.ok(err instanceof RpcBindRefusedError);
      assert.deepEqual([err.result, err.reasonName], [undefined, "protocol_version_not_supported"]);
      return true;
    });
  });

  it("rpc client - a stub over max_xmit_frag goes as WRITEs then a last TRANSCEIVE, flags and alloc_hint right", async () => {
    const pipe = new FakePipe();
    let got: Buffer | undefined;
    pipe.answer = ({ callId, stub }) => {
      got = stub;
      return [response(callId, Buffer.from("ok"), WHOLE)];
    };
    const rpc = await RpcClient.bind(pipe, { abstractSyntax: SVCCTL, ...o });
    const stub = stubOf(10_000);
    assert.equal((await rpc.call(12, stub, o)).toString(), "ok");
    const req = pipe.sent.slice(1);
    assert.deepEqual(
      req.map((s) => s.how),
      ["write", "write", "transceive"],
    );
    const room = 4280 - 24;
    assert.deepEqual(
      req.map((s) =>
        s.pdu.ptype === PType.REQUEST
          ? [s.pdu.flags, s.pdu.body.allocHint, s.pdu.body.stub.length, s.pdu.body.opnum, s.pdu.callId]
          : [],
      ),
      [
        [1, 10_000, room, 12, 2],
        [0, 10_000 - room, room, 12, 2],
        [2, 10_000 - 2 * room, 10_000 - 2 * room, 12, 2],
      ],
    );
    assert.ok(got?.equals(stub));
  });

  it("rpc client - response fragments are reassembled however the pipe cuts them, and call ids increase", async () => {
    const pipe = new FakePipe();
    const stub = stubOf(9_000);
    const cuts: ((f: Buffer[]) => Buffer[])[] = [
      (f) => f, // one fragment per read
      (f) => [Buffer.concat(f)], // all in the transceive's answer
      (f) => {
        const all = Buffer.concat(f);
        return [all.subarray(0, 5), all.subarray(5, 4000), all.subarray(4000, 8000), all.subarray(8000)];
      },
    ];
    let cut = 0;
    pipe.answer = ({ callId }) => cuts[cut++]!(responseFragments(callId, stub, 4280 - 24));
    const rpc = await RpcClient.bind(pipe, { abstractSyntax: SVCCTL, ...o });
    for (let i = 0; i < cuts.length; i++)
      assert.ok((await rpc.call(1, Buffer.alloc(4), o)).equals(stub), `cut ${i}`);
    assert.deepEqual(
      pipe.sent.map((s) => s.pdu.callId),
      [1, 2, 3, 4],
    );
  });

  it("rpc client - an empty stub is one REQUEST fragment with both flags", async () => {
    const pipe = new FakePipe();
    const rpc = await RpcClient.bind(pipe, { abstractSyntax: SVCCTL, ...o });
    assert.equal((await rpc.call(0, Buffer.alloc(0), o)).length, 0);
    const req = pipe.sent[1]!;
    assert.deepEqual([req.how, req.pdu.flags], ["transceive", 3]);
  });

  it("rpc client - a FAULT is RpcFaultError with its status name, and the client goes on", async () => {
    const pipe = new FakePipe();
    pipe.answer = ({ callId, opnum, stub }) => [
      opnum === 99 ? fault(callId, 0x1c010002) : response(callId, stub, WHOLE),
    ];
    const rpc = await RpcClient.bind(pipe, { abstractSyntax: SVCCTL, ...o });
    await assert.rejects(rpc.call(99, Buffer.alloc(4), o), (err: unknown) => {
      assert.ok(err instanceof RpcFaultError);
      assert.deepEqual(
        [err.code, err.status, err.statusName, err.didNotExecute, err.retryable],
        ["RPC_FAULT", 0x1c010002, "nca_s_op_rng_error", true, false],
      );
      return true;
    });
    assert.equal((await rpc.call(1, Buffer.from("x"), o)).toString(), "x");
  });

  it("rpc client - an answer for another call id is malformed and the client refuses further calls", async () => {
    const pipe = new FakePipe();
    pipe.answer = ({ callId, stub }) => [response(callId + 1, stub, WHOLE)];
    const rpc = await RpcClient.bind(pipe, { abstractSyntax: SVCCTL, ...o });
    await assert.rejects(rpc.call(1, Buffer.alloc(4), o), MalformedPacketError);
    pipe.answer = ({ callId, stub }) => [response(callId, stub, WHOLE)];
    await assert.rejects(rpc.call(1, Buffer.alloc(4), o), MalformedPacketError);
    assert.equal(pipe.sent.length, 2, "the second call sent nothing");
  });

  it("rpc client - a response stub over the cap is refused before the rest is read", async () => {
    const pipe = new FakePipe();
    pipe.answer = ({ callId }) => responseFragments(callId, stubOf(20_000), 4000);
    const rpc = await RpcClient.bind(pipe, { abstractSyntax: SVCCTL, ...o, maxResponse: 10_000 });
    await assert.rejects(rpc.call(1, Buffer.alloc(4), o), /over its cap of 10000/);
  });

  it("rpc client - a continuation fragment first, or a fragment over max_recv_frag, is malformed", async () => {
    const pipe = new FakePipe();
    pipe.answer = ({ callId, stub }) => [response(callId, stub, 0x02)];
    let rpc = await RpcClient.bind(pipe, { abstractSyntax: SVCCTL, ...o });
    await assert.rejects(rpc.call(1, Buffer.alloc(4), o), /out of order/);
    const big = new FakePipe();
    big.answer = ({ callId }) => [response(callId, stubOf(5000), WHOLE)];
    rpc = await RpcClient.bind(big, { abstractSyntax: SVCCTL, ...o });
    await assert.rejects(rpc.call(1, Buffer.alloc(4), o), /over the negotiated 4280/);
  });

  it("rpc client - a pipe that never answers ends in a TIMEOUT at the call's deadline", async () => {
    const pipe = new FakePipe();
    const rpc = await RpcClient.bind(pipe, { abstractSyntax: SVCCTL, ...o });
    pipe.silent = true;
    const t0 = performance.now();
    await assert.rejects(rpc.call(1, Buffer.alloc(4), { timeoutMs: 50 }), (err: unknown) => {
      assert.equal((err as { code?: string }).code, "TIMEOUT");
      return true;
    });
    assert.ok(performance.now() - t0 < 1_000);
  });
  it("rpc client - a server that sends empty response fragments without end is cut off by a fragment cap", async () => {
    let reads = 0;
    class EndlessPipe extends FakePipe {
      override read(): Promise<Buffer> {
        reads += 1;
        // Without a cap the client would read until its deadline, which a pipe answering at once never lets come.
        if (reads > 100_000) return Promise.reject(new Error("the client is still reading"));
        return Promise.resolve(response(2, Buffer.alloc(0), 0));
      }
    }
    const pipe = new EndlessPipe();
    pipe.answer = ({ callId }) => [response(callId, Buffer.alloc(0), 0x01)];
    const rpc = await RpcClient.bind(pipe, { abstractSyntax: SVCCTL, ...o, maxResponse: 64 * 1024 });
    await assert.rejects(rpc.call(1, Buffer.alloc(4), o), (err: unknown) => {
      assert.ok(err instanceof MalformedPacketError, String(err));
      assert.match(err.message, /fragments/);
      return true;
    });
    assert.ok(reads < 1_000, `${reads} reads`);
  });
  it("rpc client - a pipe read longer than the bytes asked for is malformed", async () => {
    let pushed = 0;
    class OverlongPipe extends FakePipe {
      override read(): Promise<Buffer> {
        // A pipe that passes on whatever the server put in its READ response (say 1 MiB of fragments).
        const chunk = Buffer.concat(Array.from({ length: 1000 }, () => response(2, Buffer.alloc(1000), 0)));
        pushed += chunk.length;
        return Promise.resolve(chunk);
      }
    }
    const pipe = new OverlongPipe();
    pipe.answer = ({ callId }) => [response(callId, Buffer.alloc(0), 0x01)];
    const rpc = await RpcClient.bind(pipe, { abstractSyntax: SVCCTL, ...o });
    await assert.rejects(rpc.call(1, Buffer.alloc(4), o), (err: unknown) => {
      assert.ok(err instanceof MalformedPacketError, String(err));
      assert.match(err.message, /asked for/);
      return true;
    });
    assert.ok(pushed <= 1_100_000);
  });
  it("rpc client - a server's max_xmit_frag over the client's max_recv_frag does not raise the fragment cap", async () => {
    const pipe = new FakePipe();
    pipe.bindAnswer = (b) => [acceptBind(b.callId, 0xffff, 0xffff)];
    pipe.answer = ({ callId }) => [response(callId, stubOf(20_000), WHOLE)];
    const rpc = await RpcClient.bind(pipe, { abstractSyntax: SVCCTL, ...o });
    assert.deepEqual([rpc.maxXmitFrag, rpc.maxRecvFrag], [4280, 4280]);
    await assert.rejects(rpc.call(1, Buffer.alloc(4), o), /over the negotiated 4280/);
  });
  it("rpc client - a FAULT with bytes after it leaves the client refusing further calls", async () => {
    const pipe = new FakePipe();
    pipe.answer = ({ callId }) => [
      Buffer.concat([fault(callId, 0x1c010002), response(callId + 1, stubOf(8), WHOLE)]),
    ];
    const rpc = await RpcClient.bind(pipe, { abstractSyntax: SVCCTL, ...o });
    await assert.rejects(rpc.call(1, Buffer.alloc(4), o), MalformedPacketError);
    pipe.answer = ({ callId, stub }) => [response(callId, stub, WHOLE)];
    await assert.rejects(rpc.call(1, Buffer.alloc(4), o), MalformedPacketError);
  });
  it("rpc client - a response cap that is not a positive whole number is RpcConfigError, so no cap is ever off", async () => {
    for (const maxResponse of [Infinity, Number.NaN, -1, 0, 1.5]) {
      await assert.rejects(
        RpcClient.bind(new FakePipe(), { abstractSyntax: SVCCTL, ...o, maxResponse }),
        RpcConfigError,
        String(maxResponse),
      );
    }
  });
});
