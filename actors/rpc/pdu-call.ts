/**
 * REQUEST, RESPONSE and FAULT bodies (C706 12.6.4.9, 12.6.4.10, 12.6.4.7; MS-RPCE 2.2.2.9-2.2.2.11):
 * a call's fragments and its answer's.
 */
import type { ByteReader, ByteWriter } from "../wire/bytes.ts";
import { PfcFlag } from "./pdu-header.ts";
import { encodeUuid, readUuid } from "./uuid.ts";

/** REQUEST's body. */
export interface RequestBody {
  /** The stub bytes of the whole call from this fragment on (a hint; 0 when unknown). */
  readonly allocHint: number;
  readonly contextId: number;
  readonly opnum: number;
  /** Present exactly when the PDU's flags have OBJECT_UUID. */
  readonly object?: string;
  readonly stub: Buffer;
}

/** RESPONSE's body. */
export interface ResponseBody {
  readonly allocHint: number;
  readonly contextId: number;
  readonly cancelCount: number;
  readonly stub: Buffer;
}

/** FAULT's body. */
export interface FaultBody {
  readonly allocHint: number;
  readonly contextId: number;
  readonly cancelCount: number;
  readonly status: number;
  /** Extended error data some servers append (MS-RPCE 2.2.2.11); usually empty. */
  readonly stub: Buffer;
}

/** Fault statuses by number (C706 Appendix E; MS-RPCE 2.2.2.11 and its Win32 codes). */
export const FAULT_NAMES: Readonly<Record<number, string>> = {
  0x00000005: "rpc_s_access_denied",
  0x000006d1: "rpc_s_procnum_out_of_range",
  0x000006e4: "rpc_s_cannot_support",
  0x000006f7: "nca_s_fault_ndr",
  0x0000071a: "rpc_s_call_cancelled",
  0x1c010001: "nca_s_comm_failure",
  0x1c010002: "nca_s_op_rng_error",
  0x1c010003: "nca_s_unk_if",
  0x1c010006: "nca_s_wrong_boot_time",
  0x1c010009: "nca_s_you_crashed",
  0x1c01000b: "nca_s_proto_error",
  0x1c010013: "nca_s_out_args_too_big",
  0x1c010014: "nca_s_server_too_busy",
  0x1c010015: "nca_s_fault_string_too_long",
  0x1c010017: "nca_s_unsupported_type",
  0x1c000001: "nca_s_fault_int_div_by_zero",
  0x1c000002: "nca_s_fault_addr_error",
  0x1c00000d: "nca_s_fault_cancel",
  0x1c00000e: "nca_s_fault_ill_inst",
  0x1c000012: "nca_s_fault_unspec",
  0x1c00001a: "nca_s_fault_context_mismatch",
  0x1c00001b: "nca_s_fault_remote_no_memory",
  0x1c00001c: "nca_s_invalid_pres_context_id",
  0x1c00001d: "nca_s_unsupported_authn_level",
  0x1c00001f: "nca_s_invalid_checksum",
};

/** The name of a fault status, or "unknown". */
export function faultName(status: number): string {
  return FAULT_NAMES[status >>> 0] ?? "unknown";
}

export function writeRequest(w: ByteWriter, flags: number, b: RequestBody): void {
  w.u32le(b.allocHint).u16le(b.contextId).u16le(b.opnum);
  if ((flags & PfcFlag.OBJECT_UUID) !== 0) w.bytes(encodeUuid(b.object ?? ""));
  w.bytes(b.stub);
}

export function readRequest(r: ByteReader, flags: number): RequestBody {
  const allocHint = r.u32le();
  const contextId = r.u16le();
  const opnum = r.u16le();
  const object = (flags & PfcFlag.OBJECT_UUID) !== 0 ? readUuid(r) : undefined;
  const stub = Buffer.from(r.bytes(r.remaining, "stub"));
  return object === undefined
    ? { allocHint, contextId, opnum, stub }
    : { allocHint, contextId, opnum, object, stub };
}

export function writeResponse(w: ByteWriter, b: ResponseBody): void {
  w.u32le(b.allocHint).u16le(b.contextId).u8(b.cancelCount).u8(0).bytes(b.stub);
}

export function readResponse(r: ByteReader): ResponseBody {
  const allocHint = r.u32le();
  const contextId = r.u16le();
  const cancelCount = r.u8();
  r.skip(1, "reserved");
  return { allocHint, contextId, cancelCount, stub: Buffer.from(r.bytes(r.remaining, "stub")) };
}

export function writeFault(w: ByteWriter, b: FaultBody): void {
  w.u32le(b.allocHint).u16le(b.contextId).u8(b.cancelCount).u8(0).u32le(b.status).u32le(0).bytes(b.stub);
}

export function readFault(r: ByteReader): FaultBody {
  const allocHint = r.u32le();
  const contextId = r.u16le();
  const cancelCount = r.u8();
  r.skip(1, "reserved");
  const status = r.u32le();
  r.skip(4, "reserved");
  return { allocHint, contextId, cancelCount, status, stub: Buffer.from(r.bytes(r.remaining, "stub")) };
}
