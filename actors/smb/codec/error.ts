/**
 * The error response (MS-SMB2 2.2.2): the body of any response whose status is an error (and of
 * the interim STATUS_PENDING answer), whatever its command.
 */
import { ByteReader, ByteWriter, check, decoding } from "../../wire/bytes.ts";
import { Cap, NONE, ONE_ZERO, bodyReader, headerOffset, readTrailer } from "./body.ts";
import { Command } from "./header.ts";
import { NtStatus } from "./status.ts";

/** MS-SMB2 2.2.2. */
export interface ErrorResponse {
  /** Error contexts (2.2.2.1) in ErrorData; 0 before 3.1.1. */
  readonly errorContextCount: number;
  /** Raw ErrorData (contexts, or a symbolic link error, 2.2.2.2), empty for none. */
  readonly errorData: Buffer;
  /**
   * The byte that stands for an empty ErrorData (which the server SHOULD zero but need not), or
   * padding after ErrorData, when not the encoder's.
   */
  readonly trailer?: Buffer;
}

/** Encodes the body of an error response. */
export function encodeErrorResponse(res: ErrorResponse): Buffer {
  check(res.errorData.length <= Cap.CONTEXTS, "error response: ErrorData over its cap");
  return new ByteWriter(9 + res.errorData.length)
    .u16le(9)
    .u8(res.errorContextCount)
    .u8(0)
    .u32le(res.errorData.length)
    .bytes(res.errorData)
    .bytes(res.trailer ?? (res.errorData.length === 0 ? ONE_ZERO : NONE))
    .toBuffer();
}

/** Decodes the body of a whole response message as an error response. */
export function decodeErrorResponse(message: Buffer): ErrorResponse {
  return decoding("error response", () => {
    const r = bodyReader(message, "error response", 9);
    const errorContextCount = r.u8();
    r.skip(1, "reserved");
    const byteCount = r.u32le();
    check(byteCount <= Cap.CONTEXTS, `error response: ByteCount ${byteCount} over its cap`);
    const errorData = Buffer.from(r.bytes(byteCount, "ErrorData"));
    const trailer = readTrailer(r, headerOffset(8) + byteCount, byteCount === 0 ? ONE_ZERO : NONE);
    return trailer ? { errorContextCount, errorData, trailer } : { errorContextCount, errorData };
  });
}

/**
 * True when a response with `status` to `command` carries the error response body rather than the
 * command's own (MS-SMB2 3.3.4.4): every status but success and the few warnings that come with a
 * full body. The interim STATUS_PENDING answer carries it too. STATUS_INVALID_PARAMETER with a
 * copychunk body (FSCTL_SRV_COPYCHUNK) is not told apart: a client that sends no copychunk never
 * meets it.
 */
export function hasErrorBody(status: number, command: number): boolean {
  switch (status >>> 0) {
    case NtStatus.SUCCESS:
      return false;
    case NtStatus.MORE_PROCESSING_REQUIRED:
      return command !== Command.SESSION_SETUP;
    case NtStatus.BUFFER_OVERFLOW:
      return command !== Command.QUERY_INFO && command !== Command.IOCTL && command !== Command.READ;
    case NtStatus.NOTIFY_ENUM_DIR:
      return command !== Command.CHANGE_NOTIFY;
    default:
      return true;
  }
}

/** ErrorId of an error context (MS-SMB2 2.2.2.1). */
export const ErrorId = { DEFAULT: 0x00000000, SHARE_REDIRECT: 0x72645253 } as const;

/** One error context of a 3.1.1 error response (MS-SMB2 2.2.2.1), its data raw. */
export interface ErrorContext {
  readonly errorId: number;
  readonly data: Buffer;
}

/** Encodes error contexts as ErrorData, each 8-byte aligned (MS-SMB2 2.2.2.1). */
export function encodeErrorContexts(contexts: readonly ErrorContext[]): Buffer {
  check(contexts.length <= 0xff, "error response: more than 255 error contexts");
  const w = new ByteWriter(64);
  for (const c of contexts) {
    w.align(8);
    check(c.data.length <= Cap.CONTEXTS, "error context: data over its cap");
    w.u32le(c.data.length).u32le(c.errorId).bytes(c.data);
  }
  return w.toBuffer();
}

/**
 * Decodes the `errorContextCount` error contexts of an ErrorData (3.1.1 only; before it, ErrorData
 * is the status's own structure, MS-SMB2 2.2.2.2).
 */
export function decodeErrorContexts(errorData: Buffer, errorContextCount: number): ErrorContext[] {
  return decoding("error contexts", () => {
    const r = new ByteReader(errorData, "error contexts");
    const contexts: ErrorContext[] = [];
    for (let i = 0; i < errorContextCount; i++) {
      if (i > 0) r.skip((8 - (r.offset % 8)) % 8, "context padding");
      const length = r.u32le();
      const errorId = r.u32le();
      contexts.push({ errorId, data: Buffer.from(r.bytes(length, "ErrorContextData")) });
    }
    return contexts;
  });
}
