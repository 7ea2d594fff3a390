/**
 * The common header of connection-oriented DCE/RPC PDUs (C706 12.6.1, MS-RPCE 2.2.2.1): 16 bytes
 * before every fragment.
 */
import { type ByteReader, ByteWriter, check } from "../wire/bytes.ts";

/** The header's size. */
export const PDU_HEADER_SIZE = 16;
/** A fragment's size is a 16-bit field, so no fragment is larger. */
export const MAX_FRAG = 0xffff;

/** PDU types (C706 12.6.4, MS-RPCE 2.2.2.1). */
export const PType = {
  REQUEST: 0,
  RESPONSE: 2,
  FAULT: 3,
  BIND: 11,
  BIND_ACK: 12,
  BIND_NAK: 13,
  ALTER_CONTEXT: 14,
  ALTER_CONTEXT_RESP: 15,
  AUTH3: 16,
  SHUTDOWN: 17,
  CO_CANCEL: 18,
  ORPHANED: 19,
} as const;

/** pfc_flags (C706 12.6.3.1, MS-RPCE 2.2.2.3). */
export const PfcFlag = {
  FIRST_FRAG: 0x01,
  LAST_FRAG: 0x02,
  PENDING_CANCEL: 0x04,
  CONC_MPX: 0x10,
  DID_NOT_EXECUTE: 0x20,
  MAYBE: 0x40,
  OBJECT_UUID: 0x80,
} as const;

/** A whole (unfragmented) PDU's flags. */
export const WHOLE = PfcFlag.FIRST_FRAG | PfcFlag.LAST_FRAG;

/**
 * The packed drep sumac sends and accepts (C706 14.1): little-endian integers, ASCII characters,
 * IEEE floats. Servers answer in the client's representation; a big-endian answer is refused.
 */
const DREP = Buffer.from([0x10, 0x00, 0x00, 0x00]);

/** The header fields a PDU's encoder needs (frag_length and auth_length are computed). */
export interface PduCommon {
  readonly flags: number;
  readonly callId: number;
}

/** A decoded header. */
export interface PduHeader extends PduCommon {
  readonly ptype: number;
  readonly fragLength: number;
  readonly authLength: number;
}

/** Writes the header with a zero frag_length, to be patched by {@link finishPdu}. */
export function startPdu(ptype: number, c: PduCommon): ByteWriter {
  return new ByteWriter(128)
    .u8(5)
    .u8(0)
    .u8(ptype)
    .u8(c.flags)
    .bytes(DREP)
    .u16le(0)
    .u16le(0) // auth_length: no RPC-level security over SMB pipes (see client.ts)
    .u32le(c.callId);
}

/** Patches frag_length and returns the PDU. */
export function finishPdu(w: ByteWriter): Buffer {
  check(w.length <= MAX_FRAG, `DCE/RPC: a fragment of ${w.length} bytes, over ${MAX_FRAG}`);
  return w.patchU16le(8, w.length).toBuffer();
}

/**
 * Reads the header at the start of `r` and checks it against the buffer: the fragment must be
 * wholly present (the caller cuts fragments out with {@link fragmentLength} first).
 */
export function readHeader(r: ByteReader): PduHeader {
  check(r.remaining >= PDU_HEADER_SIZE, `${r.what}: ${r.remaining} bytes, fewer than a header`);
  const vers = r.u8();
  const minor = r.u8();
  check(vers === 5 && minor <= 1, `${r.what}: version ${vers}.${minor}, not 5.0 or 5.1`);
  const ptype = r.u8();
  const flags = r.u8();
  const drep = r.bytes(4, "drep");
  check(
    drep[0] === DREP[0],
    `${r.what}: data representation 0x${drep.toString("hex")} is not little-endian ASCII`,
  );
  const fragLength = r.u16le();
  const authLength = r.u16le();
  const callId = r.u32le();
  check(
    fragLength >= PDU_HEADER_SIZE && fragLength === r.buffer.length,
    `${r.what}: frag_length ${fragLength} for a fragment of ${r.buffer.length} bytes`,
  );
  check(authLength === 0, `${r.what}: an auth verifier of ${authLength} bytes, and none was negotiated`);
  return { ptype, flags, callId, fragLength, authLength };
}

/**
 * The length of the fragment that starts `data` (its frag_length), or undefined when fewer than
 * the 10 bytes up to frag_length are there yet. Throws MalformedPacketError for a length below
 * the header's size.
 */
export function fragmentLength(data: Buffer): number | undefined {
  if (data.length < 10) return undefined;
  const n = data.readUInt16LE(8);
  check(n >= PDU_HEADER_SIZE, `DCE/RPC: frag_length ${n} is shorter than the header`);
  return n;
}
