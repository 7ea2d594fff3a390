/**
 * The transport framing of SMB2 over TCP (MS-SMB2 2.1): each message goes after a 4-byte header, a
 * zero byte and the message's length in 24 bits big-endian. The same header is the NetBIOS session
 * service's SESSION MESSAGE (RFC 1002 4.3.1, type 0x00), so one deframer serves port 445 and a
 * session opened on port 139, where the server may also send SESSION KEEP ALIVE packets (type 0x85,
 * RFC 1002 4.3.7) that carry nothing and are skipped.
 */
import { MalformedPacketError } from "../../wire/bytes.ts";

/** The frame header's size. */
export const FRAME_HEADER_SIZE = 4;
/** The largest length 24 bits can say. */
export const MAX_FRAME_LENGTH = 0xffffff;

/** NetBIOS session packet types a client may receive on a session (RFC 1002 4.3.1). */
const SESSION_MESSAGE = 0x00;
const SESSION_KEEP_ALIVE = 0x85;

/** A message with its frame header in front, ready for the socket. */
export function encodeFrame(message: Buffer): Buffer {
  if (message.length > MAX_FRAME_LENGTH) {
    throw new MalformedPacketError(`an SMB2 message of ${message.length} bytes does not fit a frame`);
  }
  const header = Buffer.alloc(FRAME_HEADER_SIZE);
  header.writeUInt32BE(message.length); // the top byte stays 0: SESSION MESSAGE
  return Buffer.concat([header, message]);
}

/**
 * Cuts a byte stream into messages. Bytes arrive in chunks of any size; {@link push} returns the
 * messages completed by a chunk. A frame whose length is over the cap is refused from its header,
 * before anything is allocated for it: a hostile server cannot make the client hold 16 MiB.
 *
 * @example
 * const deframer = new Deframer(64 * 1024);
 * socket.on("data", (chunk) => { for (const message of deframer.push(chunk)) route(message); });
 */
export class Deframer {
  private cap: number;
  private readonly pending: Buffer[] = [];
  private pendingBytes = 0;
  /** The frame being filled, once its header has been read. */
  private frame: Buffer | undefined;
  private filled = 0;

  /** `maxFrameLength` is the largest message length accepted (see {@link setCap}). */
  constructor(maxFrameLength: number) {
    this.cap = Deframer.checkCap(maxFrameLength);
  }

  private static checkCap(cap: number): number {
    if (!Number.isInteger(cap) || cap < 64 || cap > MAX_FRAME_LENGTH) {
      throw new RangeError(`a frame cap of ${cap} bytes: 64 to ${MAX_FRAME_LENGTH}`);
    }
    return cap;
  }

  /** The largest message length accepted now. */
  get maxFrameLength(): number {
    return this.cap;
  }

  /** Changes the cap (it grows once NEGOTIATE has said the sizes the server uses). */
  setCap(maxFrameLength: number): void {
    this.cap = Deframer.checkCap(maxFrameLength);
  }

  /** Bytes held that do not make a whole message yet. */
  get buffered(): number {
    return this.pendingBytes + this.filled;
  }

  /** Takes a chunk; returns the messages it completes. Throws {@link MalformedPacketError}. */
  push(chunk: Buffer): Buffer[] {
    const out: Buffer[] = [];
    let at = 0;
    while (at < chunk.length) {
      if (this.frame === undefined) {
        const want = FRAME_HEADER_SIZE - this.pendingBytes;
        const take = Math.min(want, chunk.length - at);
        this.pending.push(chunk.subarray(at, at + take));
        this.pendingBytes += take;
        at += take;
        if (this.pendingBytes < FRAME_HEADER_SIZE) break;
        const header = Buffer.concat(this.pending, FRAME_HEADER_SIZE);
        this.pending.length = 0;
        this.pendingBytes = 0;
        const length = this.startFrame(header);
        if (length === 0) continue; // keep-alive
        if (this.frame === undefined) throw new MalformedPacketError("an SMB2 frame of 0 bytes");
      }
      const frame: Buffer = this.frame;
      const take = Math.min(frame.length - this.filled, chunk.length - at);
      chunk.copy(frame, this.filled, at, at + take);
      this.filled += take;
      at += take;
      if (this.filled === frame.length) {
        out.push(frame);
        this.frame = undefined;
        this.filled = 0;
      }
    }
    return out;
  }

  /** Reads a frame header; allocates the frame when it carries a message. Returns its length. */
  private startFrame(header: Buffer): number {
    const type = header.readUInt8(0);
    const length = header.readUIntBE(1, 3);
    if (type === SESSION_KEEP_ALIVE) {
      if (length !== 0) throw new MalformedPacketError(`a NetBIOS keep-alive of ${length} bytes`);
      return 0;
    }
    if (type !== SESSION_MESSAGE) {
      throw new MalformedPacketError(`a frame of type 0x${type.toString(16)}, not a session message`);
    }
    if (length > this.cap) {
      throw new MalformedPacketError(`an SMB2 frame of ${length} bytes is over the cap of ${this.cap}`);
    }
    if (length === 0) throw new MalformedPacketError("an SMB2 frame of 0 bytes");
    this.frame = Buffer.allocUnsafe(length);
    this.filled = 0;
    return length;
  }
}
