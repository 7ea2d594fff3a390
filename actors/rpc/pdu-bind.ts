/**
 * BIND, BIND_ACK and BIND_NAK bodies (C706 12.6.4.3-5, MS-RPCE 2.2.2.4-2.2.2.6): the client
 * proposes presentation contexts, the server accepts or rejects each.
 */
import { type ByteReader, type ByteWriter, check } from "../wire/bytes.ts";
import { readSyntax, writeSyntax, type SyntaxId } from "./uuid.ts";

/** At most this many contexts, transfer syntaxes, results or versions in a list (each count is a u8). */
const MAX_LIST = 255;
/** A secondary address longer than this is refused (Windows sends "\PIPE\svcctl"-like names). */
const MAX_SECONDARY_ADDRESS = 1024;

/** One proposed presentation context (C706 p_cont_elem_t). */
export interface ContextElement {
  readonly contextId: number;
  readonly abstractSyntax: SyntaxId;
  readonly transferSyntaxes: readonly SyntaxId[];
}

/** BIND's body (C706 12.6.4.3). */
export interface BindBody {
  readonly maxXmitFrag: number;
  readonly maxRecvFrag: number;
  readonly assocGroupId: number;
  readonly contexts: readonly ContextElement[];
}

/** Presentation results (C706 p_cont_def_result_t; 3 is MS-RPCE 2.2.2.4's negotiate_ack). */
export const ContextResult = {
  ACCEPTANCE: 0,
  USER_REJECTION: 1,
  PROVIDER_REJECTION: 2,
  NEGOTIATE_ACK: 3,
} as const;

/** Reasons of a rejected context (C706 p_provider_reason_t), by number. */
export const PROVIDER_REASONS: Readonly<Record<number, string>> = {
  0: "reason_not_specified",
  1: "abstract_syntax_not_supported",
  2: "proposed_transfer_syntaxes_not_supported",
  3: "local_limit_exceeded",
};

/** Reasons of a BIND_NAK (C706 p_reject_reason_t; 8 and 9 from MS-RPCE 2.2.2.5). */
export const REJECT_REASONS: Readonly<Record<number, string>> = {
  0: "reason_not_specified",
  1: "temporary_congestion",
  2: "local_limit_exceeded",
  3: "called_paddr_unknown",
  4: "protocol_version_not_supported",
  5: "default_context_not_supported",
  6: "user_data_not_readable",
  7: "no_psap_available",
  8: "authentication_type_not_recognized",
  9: "invalid_checksum",
};

/** One result of BIND_ACK (C706 p_result_t). */
export interface ContextResultElement {
  readonly result: number;
  readonly reason: number;
  readonly transferSyntax: SyntaxId;
}

/** BIND_ACK's body (C706 12.6.4.4). */
export interface BindAckBody {
  readonly maxXmitFrag: number;
  readonly maxRecvFrag: number;
  readonly assocGroupId: number;
  /** The port_spec without its NUL ("" when the server sends none). */
  readonly secondaryAddress: string;
  readonly results: readonly ContextResultElement[];
}

/** BIND_NAK's body (C706 12.6.4.5). */
export interface BindNakBody {
  readonly rejectReason: number;
  /** Protocol versions the server supports, as [major, minor]. */
  readonly versions: readonly (readonly [number, number])[];
}

function checkList(n: number, what: string): void {
  check(Number.isInteger(n) && n >= 0 && n <= MAX_LIST, `DCE/RPC: ${n} ${what}, more than ${MAX_LIST}`);
}

export function writeBind(w: ByteWriter, b: BindBody): void {
  checkList(b.contexts.length, "presentation contexts");
  w.u16le(b.maxXmitFrag).u16le(b.maxRecvFrag).u32le(b.assocGroupId);
  w.u8(b.contexts.length).u8(0).u16le(0);
  for (const c of b.contexts) {
    checkList(c.transferSyntaxes.length, "transfer syntaxes");
    w.u16le(c.contextId).u8(c.transferSyntaxes.length).u8(0);
    writeSyntax(w, c.abstractSyntax);
    for (const t of c.transferSyntaxes) writeSyntax(w, t);
  }
}

export function readBind(r: ByteReader): BindBody {
  const maxXmitFrag = r.u16le();
  const maxRecvFrag = r.u16le();
  const assocGroupId = r.u32le();
  const n = r.u8();
  r.skip(3, "reserved");
  const contexts: ContextElement[] = [];
  for (let i = 0; i < n; i++) {
    const contextId = r.u16le();
    const nt = r.u8();
    r.skip(1, "reserved");
    const abstractSyntax = readSyntax(r);
    r.need(nt * 20, "transfer syntaxes");
    const transferSyntaxes: SyntaxId[] = [];
    for (let j = 0; j < nt; j++) transferSyntaxes.push(readSyntax(r));
    contexts.push({ contextId, abstractSyntax, transferSyntaxes });
  }
  return { maxXmitFrag, maxRecvFrag, assocGroupId, contexts };
}

export function writeBindAck(w: ByteWriter, b: BindAckBody): void {
  checkList(b.results.length, "presentation results");
  const port = b.secondaryAddress === "" ? Buffer.alloc(0) : Buffer.from(`${b.secondaryAddress}\0`, "latin1");
  check(port.length <= MAX_SECONDARY_ADDRESS, "DCE/RPC: a secondary address over its cap");
  w.u16le(b.maxXmitFrag).u16le(b.maxRecvFrag).u32le(b.assocGroupId);
  w.u16le(port.length).bytes(port).align(4); // the writer starts at the PDU's first byte
  w.u8(b.results.length).u8(0).u16le(0);
  for (const res of b.results) {
    w.u16le(res.result).u16le(res.reason);
    writeSyntax(w, res.transferSyntax);
  }
}

export function readBindAck(r: ByteReader): BindAckBody {
  const maxXmitFrag = r.u16le();
  const maxRecvFrag = r.u16le();
  const assocGroupId = r.u32le();
  const portLength = r.u16le();
  check(portLength <= MAX_SECONDARY_ADDRESS, `${r.what}: a secondary address of ${portLength} bytes`);
  const port = r.bytes(portLength, "secondary address");
  check(portLength === 0 || port[portLength - 1] === 0, `${r.what}: a secondary address without its NUL`);
  const secondaryAddress = port.subarray(0, Math.max(0, portLength - 1)).toString("latin1");
  // The results are 4-aligned from the PDU's start (C706 12.6.4.4), where the reader began.
  r.skip((4 - (r.offset % 4)) % 4, "padding");
  const n = r.u8();
  r.skip(3, "reserved");
  r.need(n * 24, "presentation results");
  const results: ContextResultElement[] = [];
  for (let i = 0; i < n; i++) {
    const result = r.u16le();
    const reason = r.u16le();
    results.push({ result, reason, transferSyntax: readSyntax(r) });
  }
  return { maxXmitFrag, maxRecvFrag, assocGroupId, secondaryAddress, results };
}

export function writeBindNak(w: ByteWriter, b: BindNakBody): void {
  checkList(b.versions.length, "protocol versions");
  w.u16le(b.rejectReason).u8(b.versions.length);
  for (const [major, minor] of b.versions) w.u8(major).u8(minor);
}

export function readBindNak(r: ByteReader): BindNakBody {
  const rejectReason = r.u16le();
  // Some servers stop after the reason; the version list is then empty.
  if (r.remaining === 0) return { rejectReason, versions: [] };
  const n = r.u8();
  r.need(n * 2, "protocol versions");
  const versions: (readonly [number, number])[] = [];
  for (let i = 0; i < n; i++) versions.push([r.u8(), r.u8()] as const);
  return { rejectReason, versions };
}
