/**
 * The NetBIOS name service's packets that sumac sends and reads (RFC 1002 4.2, UDP 137): name
 * queries and their positive and negative answers, node status requests and their answers. Other
 * packets of the service (registrations, releases, WACK, redirects) are refused as not understood:
 * a client that only asks has no use for them.
 */
import { ByteReader, ByteWriter, check, decoding } from "../wire/bytes.ts";
import { nameBytes, nameFromBytes, readEncodedName, writeEncodedName, type NetbiosName } from "./name.ts";

/** RFC 1002 4.2.1.1: RR_TYPE and QUESTION_TYPE values. */
const Type = { NB: 0x0020, NBSTAT: 0x0021, NULL: 0x000a } as const;
const CLASS_IN = 0x0001;
const OPCODE_QUERY = 0;

/** NM_FLAGS (RFC 1002 4.2.1.1), placed in the 16-bit flags word after R and OPCODE. */
const Flag = {
  RESPONSE: 0x8000,
  AUTHORITATIVE: 0x0400,
  TRUNCATED: 0x0200,
  RECURSION_DESIRED: 0x0100,
  RECURSION_AVAILABLE: 0x0080,
  BROADCAST: 0x0010,
} as const;

/** RCODE values of negative answers (RFC 1002 4.2.6, 4.2.14). */
export const NameServiceRcode = {
  FORMAT_ERROR: 0x1,
  SERVER_FAILURE: 0x2,
  NAME_ERROR: 0x3,
  UNSUPPORTED: 0x4,
  REFUSED: 0x5,
} as const;

/** Answers list at most this many records; the first is the one read. */
const MAX_ANSWERS = 64;
/** Addresses in one positive answer (a multi-homed host or a small group). */
const MAX_ADDRESSES = 256;
/** RFC 1002 4.2.18: the unit id (a MAC address) leads the statistics. */
const UNIT_ID_LENGTH = 6;

/** NAME QUERY REQUEST (RFC 1002 4.2.12). */
export interface NameQueryRequest {
  readonly kind: "name-query-request";
  readonly transactionId: number;
  readonly name: NetbiosName;
  /** B: sent to a broadcast address rather than to a name server. */
  readonly broadcast: boolean;
  /** RD: asks a name server (NBNS, WINS) to answer for names it holds. */
  readonly recursionDesired: boolean;
}

/** NODE STATUS REQUEST (RFC 1002 4.2.17): which names does the host at an address hold? */
export interface NodeStatusRequest {
  readonly kind: "node-status-request";
  readonly transactionId: number;
  /** `*` (WILDCARD_NAME) asks any host; Windows answers to it and to its own names. */
  readonly name: NetbiosName;
}

/** NB_FLAGS of one address (RFC 1002 4.2.1.3). */
export interface NameAddress {
  /** G: a group name, held by several hosts. */
  readonly group: boolean;
  /** ONT: the owner's node type, 0 B, 1 P, 2 M, 3 H (Microsoft's). */
  readonly ownerNodeType: number;
  /** IPv4, dotted. */
  readonly address: string;
}

/** POSITIVE NAME QUERY RESPONSE (RFC 1002 4.2.13). */
export interface PositiveNameQueryResponse {
  readonly kind: "positive-name-query-response";
  readonly transactionId: number;
  readonly recursionDesired: boolean;
  readonly recursionAvailable: boolean;
  readonly name: NetbiosName;
  /** Seconds the answer may be kept. */
  readonly ttl: number;
  readonly addresses: readonly NameAddress[];
}

/** NEGATIVE NAME QUERY RESPONSE (RFC 1002 4.2.14): the name server does not know the name. */
export interface NegativeNameQueryResponse {
  readonly kind: "negative-name-query-response";
  readonly transactionId: number;
  readonly recursionDesired: boolean;
  readonly recursionAvailable: boolean;
  /** Non-zero, one of {@link NameServiceRcode} in practice. */
  readonly rcode: number;
  /** The name asked about, when the server repeats it in an answer record. */
  readonly name?: NetbiosName;
}

/** One entry of a node status answer's name table (RFC 1002 4.2.18). */
export interface NodeName {
  readonly name: string;
  readonly suffix: number;
  /** NAME_FLAGS raw: G 0x8000, ONT 0x6000, DRG 0x1000, CNF 0x0800, ACT 0x0400, PRM 0x0200. */
  readonly flags: number;
}

/** NAME_FLAGS bits of {@link NodeName.flags}. */
export const NodeNameFlag = {
  GROUP: 0x8000,
  DEREGISTERING: 0x1000,
  CONFLICT: 0x0800,
  ACTIVE: 0x0400,
  PERMANENT: 0x0200,
} as const;

/** NODE STATUS RESPONSE (RFC 1002 4.2.18). */
export interface NodeStatusResponse {
  readonly kind: "node-status-response";
  readonly transactionId: number;
  readonly name: NetbiosName;
  readonly names: readonly NodeName[];
  /** The unit id, `aa:bb:cc:dd:ee:ff` (zeros from Samba). */
  readonly unitId: string;
  /** The statistics after the unit id, kept as sent (jumpers, counters; no one reads them). */
  readonly statistics: Buffer;
}

export type NameServicePacket =
  | NameQueryRequest
  | NodeStatusRequest
  | PositiveNameQueryResponse
  | NegativeNameQueryResponse
  | NodeStatusResponse;

function header(w: ByteWriter, id: number, flags: number, counts: [number, number]): void {
  check(Number.isInteger(id) && id >= 0 && id <= 0xffff, `NetBIOS name service: transaction id ${id}`);
  w.u16be(id).u16be(flags).u16be(counts[0]).u16be(counts[1]).u16be(0).u16be(0);
}

function writeIpv4(w: ByteWriter, address: string): void {
  const parts = address.split(".").map(Number);
  check(
    parts.length === 4 && parts.every((p) => Number.isInteger(p) && p >= 0 && p <= 255),
    `NetBIOS name service: ${JSON.stringify(address)} is not an IPv4 address`,
  );
  for (const p of parts) w.u8(p);
}

function answerRecord(w: ByteWriter, name: NetbiosName, type: number, ttl: number, rdata: Buffer): void {
  writeEncodedName(w, name);
  w.u16be(type).u16be(CLASS_IN).u32be(ttl);
  check(rdata.length <= 0xffff, "NetBIOS name service: RDATA over 65535 bytes");
  w.u16be(rdata.length).bytes(rdata);
}

function recursion(p: { recursionDesired: boolean; recursionAvailable: boolean }): number {
  return (
    (p.recursionDesired ? Flag.RECURSION_DESIRED : 0) | (p.recursionAvailable ? Flag.RECURSION_AVAILABLE : 0)
  );
}

/** Encodes one packet (what the decoder reads back). */
export function encodeNameServicePacket(p: NameServicePacket): Buffer {
  const w = new ByteWriter(128);
  switch (p.kind) {
    case "name-query-request": {
      const flags = (p.broadcast ? Flag.BROADCAST : 0) | (p.recursionDesired ? Flag.RECURSION_DESIRED : 0);
      header(w, p.transactionId, flags, [1, 0]);
      writeEncodedName(w, p.name);
      w.u16be(Type.NB).u16be(CLASS_IN);
      break;
    }
    case "node-status-request":
      header(w, p.transactionId, 0, [1, 0]);
      writeEncodedName(w, p.name);
      w.u16be(Type.NBSTAT).u16be(CLASS_IN);
      break;
    case "positive-name-query-response": {
      check(p.addresses.length <= MAX_ADDRESSES, `NetBIOS name service: over ${MAX_ADDRESSES} addresses`);
      const rdata = new ByteWriter(6 * p.addresses.length);
      for (const a of p.addresses) {
        check(
          a.ownerNodeType >= 0 && a.ownerNodeType <= 3,
          `NetBIOS name service: node type ${a.ownerNodeType}`,
        );
        rdata.u16be((a.group ? 0x8000 : 0) | (a.ownerNodeType << 13));
        writeIpv4(rdata, a.address);
      }
      header(w, p.transactionId, Flag.RESPONSE | Flag.AUTHORITATIVE | recursion(p), [0, 1]);
      answerRecord(w, p.name, Type.NB, p.ttl, rdata.toBuffer());
      break;
    }
    case "negative-name-query-response":
      check(p.rcode >= 1 && p.rcode <= 0xf, `NetBIOS name service: negative answer with RCODE ${p.rcode}`);
      header(w, p.transactionId, Flag.RESPONSE | Flag.AUTHORITATIVE | recursion(p) | p.rcode, [
        0,
        p.name ? 1 : 0,
      ]);
      if (p.name) answerRecord(w, p.name, Type.NULL, 0, Buffer.alloc(0));
      break;
    case "node-status-response": {
      check(p.names.length <= 0xff, "NetBIOS name service: over 255 names in a node status");
      const rdata = new ByteWriter(64 + 18 * p.names.length).u8(p.names.length);
      for (const n of p.names) rdata.bytes(nameBytes(n)).u16be(n.flags);
      const mac = p.unitId.split(":").map((x) => (/^[0-9a-f]{2}$/.test(x) ? parseInt(x, 16) : NaN));
      check(mac.length === UNIT_ID_LENGTH && mac.every((b) => !isNaN(b)), `NetBIOS unit id ${p.unitId}`);
      rdata.bytes(Buffer.from(mac)).bytes(p.statistics);
      header(w, p.transactionId, Flag.RESPONSE | Flag.AUTHORITATIVE, [0, 1]);
      answerRecord(w, p.name, Type.NBSTAT, 0, rdata.toBuffer());
      break;
    }
  }
  return w.toBuffer();
}

function readAddresses(rdata: ByteReader): NameAddress[] {
  check(rdata.remaining % 6 === 0, `${rdata.what}: RDATA of ${rdata.remaining} bytes, not entries of 6`);
  const count = rdata.remaining / 6;
  check(count <= MAX_ADDRESSES, `${rdata.what}: ${count} addresses, over ${MAX_ADDRESSES}`);
  const out: NameAddress[] = [];
  for (let i = 0; i < count; i++) {
    const flags = rdata.u16be();
    const address = [...rdata.bytes(4)].join(".");
    out.push({ group: (flags & 0x8000) !== 0, ownerNodeType: (flags >> 13) & 3, address });
  }
  return out;
}

function readNodeStatus(rdata: ByteReader): Pick<NodeStatusResponse, "names" | "unitId" | "statistics"> {
  const count = rdata.u8();
  rdata.need(count * 18, "name table");
  const names: NodeName[] = [];
  for (let i = 0; i < count; i++) names.push({ ...nameFromBytes(rdata.bytes(16)), flags: rdata.u16be() });
  const unit = rdata.bytes(UNIT_ID_LENGTH, "unit id");
  const unitId = [...unit].map((b) => b.toString(16).padStart(2, "0")).join(":");
  return { names, unitId, statistics: Buffer.from(rdata.bytes(rdata.remaining)) };
}

/** Decodes one datagram of the name service; throws MalformedPacketError on anything else. */
export function decodeNameServicePacket(datagram: Buffer): NameServicePacket {
  return decoding("NetBIOS name service", () => {
    const r = new ByteReader(datagram, "NetBIOS name service");
    const transactionId = r.u16be();
    const flags = r.u16be();
    const [qd, an, ns, ar] = [r.u16be(), r.u16be(), r.u16be(), r.u16be()];
    check(((flags >> 11) & 0xf) === OPCODE_QUERY, `${r.what}: opcode ${(flags >> 11) & 0xf} is not a query`);
    check(
      an <= MAX_ANSWERS && ns <= MAX_ANSWERS && ar <= MAX_ANSWERS,
      `${r.what}: over ${MAX_ANSWERS} records`,
    );
    const recursionDesired = (flags & Flag.RECURSION_DESIRED) !== 0;
    const recursionAvailable = (flags & Flag.RECURSION_AVAILABLE) !== 0;
    if ((flags & Flag.RESPONSE) === 0) {
      check(qd === 1, `${r.what}: a request with ${qd} questions`);
      const name = readEncodedName(r);
      const type = r.u16be();
      check(r.u16be() === CLASS_IN, `${r.what}: a question class other than IN`);
      if (type === Type.NBSTAT) return { kind: "node-status-request", transactionId, name };
      check(type === Type.NB, `${r.what}: question type 0x${type.toString(16)}`);
      const broadcast = (flags & Flag.BROADCAST) !== 0;
      return { kind: "name-query-request", transactionId, name, broadcast, recursionDesired };
    }
    const rcode = flags & 0xf;
    if (rcode !== 0) {
      // RFC 1002 4.2.14 repeats the name in a record; some servers leave the record out.
      if (an === 0)
        return {
          kind: "negative-name-query-response",
          transactionId,
          recursionDesired,
          recursionAvailable,
          rcode,
        };
      const name = readEncodedName(r);
      return {
        kind: "negative-name-query-response",
        transactionId,
        recursionDesired,
        recursionAvailable,
        rcode,
        name,
      };
    }
    check(qd === 0 && an >= 1, `${r.what}: a response with ${qd} questions and ${an} answers`);
    const name = readEncodedName(r);
    const type = r.u16be();
    check(r.u16be() === CLASS_IN, `${r.what}: an answer class other than IN`);
    const ttl = r.u32be();
    const rdata = new ByteReader(r.bytes(r.u16be(), "RDATA"), `${r.what} RDATA`);
    if (type === Type.NB) {
      const addresses = readAddresses(rdata);
      return {
        kind: "positive-name-query-response",
        transactionId,
        recursionDesired,
        recursionAvailable,
        name,
        ttl,
        addresses,
      };
    }
    check(type === Type.NBSTAT, `${r.what}: answer type 0x${type.toString(16)}`);
    return { kind: "node-status-response", transactionId, name, ...readNodeStatus(rdata) };
  });
}
