/** fast-check arbitraries for DCE/RPC PDUs (test/unit/rpc). */
import fc from "fast-check";
import { PType, type Pdu } from "../../../actors/rpc/pdu.ts";
import type { SyntaxId } from "../../../actors/rpc/uuid.ts";

/** Records with a plain prototype, as decoders build them (deepEqual compares prototypes). */
const record: typeof fc.record = ((model: never) => fc.record(model, { noNullPrototype: true })) as never;
const u8 = fc.integer({ min: 0, max: 0xff });
const u16 = fc.integer({ min: 0, max: 0xffff });
const u32 = fc.integer({ min: 0, max: 0xffffffff });
const stub = fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b));

export const uuid = fc.uuid({ version: [1, 2, 3, 4, 5] }).map((u) => u.toLowerCase());
export const syntax: fc.Arbitrary<SyntaxId> = record({ uuid, version: u16, minor: u16 });

const common = { flags: u8, callId: u32 };

export const pdu: fc.Arbitrary<Pdu> = fc.oneof(
  record({
    ptype: fc.constant(PType.BIND),
    ...common,
    body: record({
      maxXmitFrag: u16,
      maxRecvFrag: u16,
      assocGroupId: u32,
      contexts: fc.array(
        record({
          contextId: u16,
          abstractSyntax: syntax,
          transferSyntaxes: fc.array(syntax, { maxLength: 3 }),
        }),
        { maxLength: 3 },
      ),
    }),
  }),
  record({
    ptype: fc.constant(PType.BIND_ACK),
    ...common,
    body: record({
      maxXmitFrag: u16,
      maxRecvFrag: u16,
      assocGroupId: u32,
      secondaryAddress: fc.stringMatching(/^[\\A-Za-z0-9]{0,30}$/),
      results: fc.array(record({ result: u16, reason: u16, transferSyntax: syntax }), { maxLength: 3 }),
    }),
  }),
  record({
    ptype: fc.constant(PType.BIND_NAK),
    ...common,
    body: record({
      rejectReason: u16,
      versions: fc.array(fc.tuple(u8, u8), { maxLength: 3 }),
    }),
  }),
  record({ flags: u8, callId: u32 }).chain(({ flags, callId }) =>
    record({
      ptype: fc.constant(PType.REQUEST),
      flags: fc.constant(flags),
      callId: fc.constant(callId),
      body:
        (flags & 0x80) !== 0
          ? record({ allocHint: u32, contextId: u16, opnum: u16, object: uuid, stub })
          : record({ allocHint: u32, contextId: u16, opnum: u16, stub }),
    }),
  ),
  record({
    ptype: fc.constant(PType.RESPONSE),
    ...common,
    body: record({ allocHint: u32, contextId: u16, cancelCount: u8, stub }),
  }),
  record({
    ptype: fc.constant(PType.FAULT),
    ...common,
    body: record({ allocHint: u32, contextId: u16, cancelCount: u8, status: u32, stub }),
  }),
);
