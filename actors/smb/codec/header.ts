/**
 * The SMB2 packet header (MS-SMB2 2.2.1): 64 bytes before every request and response, in its sync
 * form (2.2.1.2, with a TreeId) or its async form (2.2.1.1, with an AsyncId, on answers that the
 * server finishes later after a STATUS_PENDING).
 */
import { ByteReader, ByteWriter, check, decoding } from "../../wire/bytes.ts";

/** The header's size, and where a message's body starts. */
export const HEADER_SIZE = 64;
/** Where the 16-byte signature lies in the header. */
export const SIGNATURE_OFFSET = 48;
/** Where Flags lies (the signer sets SMB2_FLAGS_SIGNED there before signing). */
export const FLAGS_OFFSET = 16;

const PROTOCOL_ID = Buffer.from([0xfe, 0x53, 0x4d, 0x42]); // 0xFE 'S' 'M' 'B'

/** Command codes (MS-SMB2 2.2.1.2). */
export const Command = {
  NEGOTIATE: 0x0000,
  SESSION_SETUP: 0x0001,
  LOGOFF: 0x0002,
  TREE_CONNECT: 0x0003,
  TREE_DISCONNECT: 0x0004,
  CREATE: 0x0005,
  CLOSE: 0x0006,
  FLUSH: 0x0007,
  READ: 0x0008,
  WRITE: 0x0009,
  LOCK: 0x000a,
  IOCTL: 0x000b,
  CANCEL: 0x000c,
  ECHO: 0x000d,
  QUERY_DIRECTORY: 0x000e,
  CHANGE_NOTIFY: 0x000f,
  QUERY_INFO: 0x0010,
  SET_INFO: 0x0011,
  OPLOCK_BREAK: 0x0012,
} as const;
export type CommandCode = (typeof Command)[keyof typeof Command];

/** Header flags (MS-SMB2 2.2.1.2). */
export const HeaderFlag = {
  SERVER_TO_REDIR: 0x00000001,
  ASYNC_COMMAND: 0x00000002,
  RELATED_OPERATIONS: 0x00000004,
  SIGNED: 0x00000008,
  DFS_OPERATIONS: 0x10000000,
  REPLAY_OPERATION: 0x20000000,
} as const;

/** One SMB2 header, sync or async, request or response. */
export interface Smb2Header {
  /** Credits this message costs (1 per 64 KiB of payload; 0 on 2.0.2). */
  readonly creditCharge: number;
  /**
   * NTSTATUS on responses. On requests of 3.x this field is ChannelSequence (low 16 bits) and
   * Reserved; requests of 2.x send 0.
   */
  readonly status: number;
  readonly command: number;
  /** Credits asked for (requests) or granted (responses). */
  readonly credits: number;
  readonly flags: number;
  /** Offset of the next header in a compound, 0 for the last. */
  readonly nextCommand: number;
  readonly messageId: bigint;
  /** Present when ASYNC_COMMAND is set: the server's handle on a pending operation. */
  readonly asyncId?: bigint;
  /** Present when ASYNC_COMMAND is not set. */
  readonly treeId?: number;
  readonly sessionId: bigint;
  /** 16 bytes, zeros when unsigned. */
  readonly signature: Buffer;
}

/** Encodes the 64-byte header. */
export function encodeHeader(h: Smb2Header): Buffer {
  const async = (h.flags & HeaderFlag.ASYNC_COMMAND) !== 0;
  const w = new ByteWriter(HEADER_SIZE)
    .bytes(PROTOCOL_ID)
    .u16le(HEADER_SIZE)
    .u16le(h.creditCharge)
    .u32le(h.status)
    .u16le(h.command)
    .u16le(h.credits)
    .u32le(h.flags)
    .u32le(h.nextCommand)
    .u64le(h.messageId);
  if (async) w.u64le(h.asyncId ?? 0n);
  else w.u32le(0).u32le(h.treeId ?? 0);
  w.u64le(h.sessionId);
  check(h.signature.length === 16, `SMB2 header: a signature of ${h.signature.length} bytes, not 16`);
  w.bytes(h.signature);
  return w.toBuffer();
}

/** Decodes the header at the start of `message`; the body follows at {@link HEADER_SIZE}. */
export function decodeHeader(message: Buffer): Smb2Header {
  return decoding("SMB2 header", () => {
    const r = new ByteReader(message, "SMB2 header");
    check(r.remaining >= HEADER_SIZE, `SMB2 header: ${message.length} bytes, fewer than ${HEADER_SIZE}`);
    check(r.bytes(4).equals(PROTOCOL_ID), "SMB2 header: not an SMB2 packet (protocol id)");
    check(r.u16le() === HEADER_SIZE, "SMB2 header: structure size is not 64");
    const creditCharge = r.u16le();
    const status = r.u32le();
    const command = r.u16le();
    const credits = r.u16le();
    const flags = r.u32le();
    const nextCommand = r.u32le();
    const messageId = r.u64le();
    const common = { creditCharge, status, command, credits, flags, nextCommand, messageId };
    if ((flags & HeaderFlag.ASYNC_COMMAND) !== 0) {
      const asyncId = r.u64le();
      const sessionId = r.u64le();
      return { ...common, asyncId, sessionId, signature: Buffer.from(r.bytes(16)) };
    }
    r.skip(4, "reserved");
    const treeId = r.u32le();
    const sessionId = r.u64le();
    return { ...common, treeId, sessionId, signature: Buffer.from(r.bytes(16)) };
  });
}
