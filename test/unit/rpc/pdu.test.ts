import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import fc from "fast-check";
import { MalformedPacketError, ByteReader } from "../../../actors/wire/bytes.ts";
import { decodePdu, encodePdu, faultName, PType, WHOLE, type Pdu } from "../../../actors/rpc/pdu.ts";
import { encodeUuid, NDR20, readUuid } from "../../../actors/rpc/uuid.ts";
import { NdrWriter } from "../../../actors/rpc/ndr.ts";
import { pdu, uuid } from "./arbitraries.ts";

interface Vectors {
  bind_svcctl: { call_id: number; max_frag: number; hex: string };
  requests: { call_id: number; opnum: number; flags: number; stub: string; hex: string }[];
  ndr: { ROpenSCManagerW: string; ROpenServiceW: string };
}
const vectors = JSON.parse(
  readFileSync(new URL("../../fixtures/rpc/impacket.json", import.meta.url), "utf8"),
) as Vectors;

const SVCCTL = { uuid: "367abb81-9844-35f1-ad32-98f038001003", version: 2, minor: 0 };

describe("rpc pdu", () => {
  it("rpc pdu - a UUID is mixed-endian on the wire (MS-DTYP 2.3.4.2) and reads back", () => {
    assert.equal(encodeUuid(NDR20.uuid).toString("hex"), "045d888aeb1cc9119fe808002b104860");
    fc.assert(fc.property(uuid, (u) => assert.equal(readUuid(new ByteReader(encodeUuid(u), "t")), u)));
    assert.throws(() => encodeUuid("not-a-uuid"), MalformedPacketError);
  });

  it("rpc pdu - a BIND for svcctl v2.0 with NDR 2.0 is byte for byte impacket's", () => {
    const v = vectors.bind_svcctl;
    const bind = encodePdu({
      ptype: PType.BIND,
      flags: WHOLE,
      callId: v.call_id,
      body: {
        maxXmitFrag: v.max_frag,
        maxRecvFrag: v.max_frag,
        assocGroupId: 0,
        contexts: [{ contextId: 0, abstractSyntax: SVCCTL, transferSyntaxes: [NDR20] }],
      },
    });
    assert.equal(bind.toString("hex"), v.hex);
  });

  it("rpc pdu - REQUEST PDUs around a stub are byte for byte impacket's (alloc_hint = stub length)", () => {
    assert.equal(vectors.requests.length, 2);
    for (const v of vectors.requests) {
      const stub = Buffer.from(v.stub, "hex");
      const request = encodePdu({
        ptype: PType.REQUEST,
        flags: v.flags,
        callId: v.call_id,
        body: { allocHint: stub.length, contextId: 0, opnum: v.opnum, stub },
      });
      assert.equal(request.toString("hex"), v.hex);
    }
  });

  it("rpc pdu - NDR stubs of ROpenSCManagerW and ROpenServiceW are byte for byte impacket's", () => {
    const openScm = new NdrWriter().uniqueWstring("DUMMY").uniqueWstring(undefined).u32(0xf003f).toBuffer();
    assert.equal(openScm.toString("hex"), vectors.ndr.ROpenSCManagerW);
    const handle = Buffer.from(Array.from({ length: 20 }, (_, i) => i));
    const openSvc = new NdrWriter().contextHandle(handle).wstring("sumac").u32(0xf01ff).toBuffer();
    assert.equal(openSvc.toString("hex"), vectors.ndr.ROpenServiceW);
  });

  it("rpc pdu - a BIND_ACK as Windows sends it decodes: secondary address, padding to 4, one acceptance", () => {
    const hex =
      "05000c03100000004400000001000000" +
      "b810b810f0120000" +
      "0d005c706970655c6e747376637300" + // "\pipe\ntsvcs" and NUL: 13 bytes after its length
      "00" + // pad to 4 from the PDU's start (offset 39 to 40)
      "01000000" +
      "0000" +
      "0000" +
      "045d888aeb1cc9119fe808002b10486002000000";
    const ack = decodePdu(Buffer.from(hex, "hex"));
    assert.equal(ack.ptype, PType.BIND_ACK);
    if (ack.ptype !== PType.BIND_ACK) return;
    assert.deepEqual(ack.body, {
      maxXmitFrag: 4280,
      maxRecvFrag: 4280,
      assocGroupId: 0x12f0,
      secondaryAddress: "\\pipe\\ntsvcs",
      results: [{ result: 0, reason: 0, transferSyntax: NDR20 }],
    });
    assert.equal(encodePdu(ack).toString("hex"), hex);
  });

  it("rpc pdu - a FAULT decodes with its status, and the status has its name", () => {
    const hex =
      "05000323100000002000000009000000" + "00000000" + "0000" + "00" + "00" + "0200011c" + "00000000";
    const fault = decodePdu(Buffer.from(hex, "hex"));
    assert.equal(fault.ptype, PType.FAULT);
    if (fault.ptype !== PType.FAULT) return;
    assert.deepEqual([fault.callId, fault.flags, fault.body.status], [9, 0x23, 0x1c010002]);
    assert.equal(faultName(fault.body.status), "nca_s_op_rng_error");
    assert.deepEqual(
      [faultName(0x1c010003), faultName(5), faultName(0x6f7), faultName(0x12345)],
      ["nca_s_unk_if", "rpc_s_access_denied", "nca_s_fault_ndr", "unknown"],
    );
  });

  it("rpc pdu - decode(encode(pdu)) equals pdu for every PDU type", () => {
    fc.assert(
      fc.property(pdu, (p: Pdu) => {
        assert.deepEqual(decodePdu(encodePdu(p)), p);
      }),
      { numRuns: 500 },
    );
  });

  it("rpc pdu - random and mutated bytes throw only MalformedPacketError", () => {
    const decodeOnlyTyped = (b: Buffer): void => {
      try {
        decodePdu(b);
      } catch (err) {
        assert.ok(err instanceof MalformedPacketError, String(err));
      }
    };
    fc.assert(fc.property(fc.uint8Array({ maxLength: 120 }), (b) => decodeOnlyTyped(Buffer.from(b))));
    fc.assert(
      fc.property(
        pdu,
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }),
        fc.nat(),
        (p, edits, cut) => {
          const b = encodePdu(p);
          for (const [at, v] of edits) b[at % b.length] = v;
          decodeOnlyTyped(b);
          decodeOnlyTyped(b.subarray(0, cut % (b.length + 1)));
        },
      ),
      { numRuns: 1000 },
    );
  });

  it("rpc pdu - a fragment whose frag_length differs from its size, a big-endian drep or an auth verifier is malformed", () => {
    const ok = encodePdu({
      ptype: PType.RESPONSE,
      flags: WHOLE,
      callId: 1,
      body: { allocHint: 0, contextId: 0, cancelCount: 0, stub: Buffer.from("abcd") },
    });
    assert.equal(decodePdu(ok).ptype, PType.RESPONSE);
    assert.throws(() => decodePdu(Buffer.concat([ok, Buffer.alloc(1)])), MalformedPacketError);
    const be = Buffer.from(ok);
    be[4] = 0x00;
    assert.throws(() => decodePdu(be), MalformedPacketError);
    const auth = Buffer.from(ok);
    auth.writeUInt16LE(4, 10);
    assert.throws(() => decodePdu(auth), MalformedPacketError);
    const other = Buffer.from(ok);
    other[2] = PType.SHUTDOWN;
    assert.throws(() => decodePdu(other), MalformedPacketError);
  });
});
