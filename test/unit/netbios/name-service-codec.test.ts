import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import {
  decodeNameServicePacket,
  encodeNameServicePacket,
  NodeNameFlag,
  type NameServicePacket,
} from "../../../actors/netbios/name-service-codec.ts";
import { WILDCARD_NAME } from "../../../actors/netbios/name.ts";
import { MalformedPacketError } from "../../../actors/wire/bytes.ts";
import { ipv4, nameText, netbiosName } from "./arbitraries.ts";

const WINTARGET_20 = Buffer.from(`FHEJEOFEEBFCEHEFFE${"CA".repeat(7)}`).toString("hex");
const server = { name: "WINTARGET", suffix: 0x20, scope: "" };

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ""), "hex");

describe("netbios name service codec", () => {
  it("name service - a broadcast name query request, byte for byte (RFC 1002 4.2.12)", () => {
    const bytes = encodeNameServicePacket({
      kind: "name-query-request",
      transactionId: 0x1234,
      name: server,
      broadcast: true,
      recursionDesired: true,
    });
    assert.equal(
      bytes.toString("hex"),
      `1234 0110 0001 0000 0000 0000 20${WINTARGET_20}00 0020 0001`.replace(/ /g, ""),
    );
  });

  it("name service - a unicast query has no B flag, a node status request asks NBSTAT of '*'", () => {
    const query = encodeNameServicePacket({
      kind: "name-query-request",
      transactionId: 1,
      name: server,
      broadcast: false,
      recursionDesired: true,
    });
    assert.equal(query.readUInt16BE(2), 0x0100);
    const status = encodeNameServicePacket({
      kind: "node-status-request",
      transactionId: 2,
      name: WILDCARD_NAME,
    });
    assert.equal(
      status.toString("hex"),
      `0002 0000 0001 0000 0000 0000 20 434b${"41".repeat(30)} 00 0021 0001`.replace(/ /g, ""),
    );
  });

  it("name service - a positive answer with two addresses and their NB_FLAGS (RFC 1002 4.2.13)", () => {
    const answer = hex(`1234 8580 0000 0001 0000 0000 20${WINTARGET_20}00 0020 0001 000493e0 000c
      6000 ac110002  e000 0a000005`);
    assert.deepEqual(decodeNameServicePacket(answer), {
      kind: "positive-name-query-response",
      transactionId: 0x1234,
      recursionDesired: true,
      recursionAvailable: true,
      name: server,
      ttl: 300_000,
      addresses: [
        { group: false, ownerNodeType: 3, address: "172.17.0.2" },
        { group: true, ownerNodeType: 3, address: "10.0.0.5" },
      ],
    });
  });

  it("name service - a negative answer carries its RCODE, with or without the name's record", () => {
    const withRecord = hex(`0007 8583 0000 0001 0000 0000 20${WINTARGET_20}00 000a 0001 00000000 0000`);
    assert.deepEqual(decodeNameServicePacket(withRecord), {
      kind: "negative-name-query-response",
      transactionId: 7,
      recursionDesired: true,
      recursionAvailable: true,
      rcode: 3,
      name: server,
    });
    assert.deepEqual(decodeNameServicePacket(hex("0007 8403 0000 0000 0000 0000")), {
      kind: "negative-name-query-response",
      transactionId: 7,
      recursionDesired: false,
      recursionAvailable: false,
      rcode: 3,
    });
  });

  it("name service - a node status answer: the name table, the unit id, statistics kept raw (4.2.18)", () => {
    const table =
      Buffer.from("WINTARGET      \x20", "latin1").toString("hex") +
      "0400" +
      Buffer.from("WORKGROUP      \x00", "latin1").toString("hex") +
      "8400";
    const stats = "0011223344ff" + "00".repeat(40);
    const rdlength = (1 + 36 + 46).toString(16).padStart(4, "0");
    const answer = hex(
      `0009 8400 0000 0001 0000 0000 20434b${"41".repeat(30)}00 0021 0001 00000000 ${rdlength} 02 ${table} ${stats}`,
    );
    const decoded = decodeNameServicePacket(answer);
    assert.deepEqual(decoded, {
      kind: "node-status-response",
      transactionId: 9,
      name: WILDCARD_NAME,
      names: [
        { name: "WINTARGET", suffix: 0x20, flags: NodeNameFlag.ACTIVE },
        { name: "WORKGROUP", suffix: 0x00, flags: NodeNameFlag.GROUP | NodeNameFlag.ACTIVE },
      ],
      unitId: "00:11:22:33:44:ff",
      statistics: Buffer.alloc(40),
    });
    assert.deepEqual(encodeNameServicePacket(decoded), answer);
  });

  it("name service - an RDATA length past the datagram, a name table past RDATA, too many records: refused", () => {
    const head = `0009 8400 0000 0001 0000 0000 20434b${"41".repeat(30)}00 0021 0001 00000000`;
    assert.throws(() => decodeNameServicePacket(hex(`${head} 0010 00`)), /RDATA needs 16 bytes/);
    assert.throws(() => decodeNameServicePacket(hex(`${head} 0007 05 000000000000`)), /name table/);
    assert.throws(() => decodeNameServicePacket(hex("0009 8400 0000 0041 0000 0000")), /over 64 records/);
    assert.throws(() => decodeNameServicePacket(hex("0009 a800 0000 0001 0000 0000")), /opcode 5/);
  });

  const packet: fc.Arbitrary<NameServicePacket> = fc.oneof(
    fc.record({
      kind: fc.constant("name-query-request" as const),
      transactionId: fc.nat(0xffff),
      name: netbiosName,
      broadcast: fc.boolean(),
      recursionDesired: fc.boolean(),
    }),
    fc.record({
      kind: fc.constant("node-status-request" as const),
      transactionId: fc.nat(0xffff),
      name: netbiosName,
    }),
    fc.record({
      kind: fc.constant("positive-name-query-response" as const),
      transactionId: fc.nat(0xffff),
      recursionDesired: fc.boolean(),
      recursionAvailable: fc.boolean(),
      name: netbiosName,
      ttl: fc.nat(),
      addresses: fc.array(fc.record({ group: fc.boolean(), ownerNodeType: fc.nat(3), address: ipv4 }), {
        maxLength: 8,
      }),
    }),
    fc.record(
      {
        kind: fc.constant("negative-name-query-response" as const),
        transactionId: fc.nat(0xffff),
        recursionDesired: fc.boolean(),
        recursionAvailable: fc.boolean(),
        rcode: fc.integer({ min: 1, max: 15 }),
        name: netbiosName,
      },
      { requiredKeys: ["kind", "transactionId", "recursionDesired", "recursionAvailable", "rcode"] },
    ),
    fc.record({
      kind: fc.constant("node-status-response" as const),
      transactionId: fc.nat(0xffff),
      name: netbiosName,
      names: fc.array(fc.record({ name: nameText, suffix: fc.nat(255), flags: fc.nat(0xffff) }), {
        maxLength: 10,
      }),
      unitId: fc
        .uint8Array({ minLength: 6, maxLength: 6 })
        .map((b) => [...b].map((x) => x.toString(16).padStart(2, "0")).join(":")),
      statistics: fc.uint8Array({ maxLength: 60 }).map((b) => Buffer.from(b)),
    }),
  );

  /** fc.record's objects have a null prototype; the decoder's do not. */
  const plain = (p: NameServicePacket): unknown => JSON.parse(JSON.stringify(p)) as unknown;

  it("name service - decode(encode(x)) is x", () => {
    fc.assert(
      fc.property(packet, (p) => {
        assert.deepEqual(plain(decodeNameServicePacket(encodeNameServicePacket(p))), plain(p));
      }),
      { numRuns: 500 },
    );
  });

  it("name service - random and mutated datagrams throw MalformedPacketError or decode, nothing else", () => {
    const decodeOrMalformed = (bytes: Uint8Array): void => {
      try {
        decodeNameServicePacket(Buffer.from(bytes));
      } catch (err) {
        assert.ok(err instanceof MalformedPacketError, String(err));
      }
    };
    fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), decodeOrMalformed), { numRuns: 2000 });
    fc.assert(
      fc.property(packet, fc.nat(), fc.nat(255), (p, at, value) => {
        const bytes = encodeNameServicePacket(p);
        bytes[at % bytes.length] = value;
        decodeOrMalformed(bytes.subarray(0, bytes.length - (at % 3)));
      }),
      { numRuns: 2000 },
    );
  });
});
