/**
 * The NetBIOS session service's packets (RFC 1002 4.3, TCP 139): the session request that names
 * the server asked for and the client, its answers (positive, negative, retarget), keep-alives,
 * and the session messages that carry SMB once the session is up.
 *
 * Every packet starts with a 4-byte header (RFC 1002 4.3.1): TYPE, FLAGS whose low bit E extends
 * LENGTH to 17 bits, and LENGTH, big-endian, of what follows.
 */
import { ByteReader, ByteWriter, check, decoding } from "../wire/bytes.ts";
import { readEncodedName, writeEncodedName, type NetbiosName } from "./name.ts";

/** The header's size. */
export const SESSION_HEADER_LENGTH = 4;
/** LENGTH with the E bit: the largest trailer a packet can carry (RFC 1002 4.3.1). */
export const MAX_SESSION_TRAILER = 0x1ffff;

/** TYPE values (RFC 1002 4.3.1). */
export const SessionPacketType = {
  MESSAGE: 0x00,
  REQUEST: 0x81,
  POSITIVE_RESPONSE: 0x82,
  NEGATIVE_RESPONSE: 0x83,
  RETARGET_RESPONSE: 0x84,
  KEEP_ALIVE: 0x85,
} as const;

/** ERROR_CODE of a negative session response (RFC 1002 4.3.4). */
export const NegativeSessionCode = {
  NOT_LISTENING_ON_CALLED_NAME: 0x80,
  NOT_LISTENING_FOR_CALLING_NAME: 0x81,
  CALLED_NAME_NOT_PRESENT: 0x82,
  INSUFFICIENT_RESOURCES: 0x83,
  UNSPECIFIED: 0x8f,
} as const;

const meanings: Readonly<Record<number, string>> = {
  0x80: "not listening on the called name",
  0x81: "not listening for the calling name",
  0x82: "called name not present",
  0x83: "called name present, but insufficient resources",
  0x8f: "unspecified error",
};

/** What a negative response's code means, in RFC 1002's words. */
export function negativeSessionMeaning(code: number): string {
  return meanings[code] ?? `unknown error code 0x${code.toString(16).padStart(2, "0")}`;
}

export type SessionPacket =
  | {
      readonly kind: "session-request";
      /** The server's name, suffix 0x20 for SMB (or `*SMBSERVER`, which Windows and Samba accept). */
      readonly called: NetbiosName;
      /** The client's name, suffix 0x00. */
      readonly calling: NetbiosName;
    }
  | { readonly kind: "positive-session-response" }
  | { readonly kind: "negative-session-response"; readonly errorCode: number }
  | { readonly kind: "retarget-session-response"; readonly address: string; readonly port: number }
  | { readonly kind: "keep-alive" }
  | { readonly kind: "session-message"; readonly payload: Buffer };

/** The 4-byte header of a packet whose trailer is `length` bytes. */
export function encodeSessionHeader(type: number, length: number): Buffer {
  check(
    Number.isInteger(length) && length >= 0 && length <= MAX_SESSION_TRAILER,
    `NetBIOS session: a trailer of ${length} bytes, over ${MAX_SESSION_TRAILER}`,
  );
  return new ByteWriter(SESSION_HEADER_LENGTH)
    .u8(type)
    .u8(length >> 16)
    .u16be(length & 0xffff)
    .toBuffer();
}

/** The type and trailer length in a packet's first 4 bytes. */
export function decodeSessionHeader(header: Buffer): { type: number; length: number } {
  return decoding("NetBIOS session header", () => {
    const r = new ByteReader(header, "NetBIOS session header");
    const type = r.u8();
    const flags = r.u8();
    check((flags & 0xfe) === 0, `${r.what}: reserved flag bits 0x${flags.toString(16)}`);
    return { type, length: ((flags & 1) << 16) | r.u16be() };
  });
}

/** Encodes one packet, header and trailer. */
export function encodeSessionPacket(p: SessionPacket): Buffer {
  const trailer = new ByteWriter(72);
  let type: number;
  switch (p.kind) {
    case "session-request":
      type = SessionPacketType.REQUEST;
      writeEncodedName(trailer, p.called);
      writeEncodedName(trailer, p.calling);
      break;
    case "positive-session-response":
      type = SessionPacketType.POSITIVE_RESPONSE;
      break;
    case "negative-session-response":
      type = SessionPacketType.NEGATIVE_RESPONSE;
      check(p.errorCode >= 0 && p.errorCode <= 0xff, `NetBIOS session: error code ${p.errorCode}`);
      trailer.u8(p.errorCode);
      break;
    case "retarget-session-response": {
      type = SessionPacketType.RETARGET_RESPONSE;
      const parts = p.address.split(".").map(Number);
      check(
        parts.length === 4 && parts.every((x) => Number.isInteger(x) && x >= 0 && x <= 255),
        `NetBIOS session: ${JSON.stringify(p.address)} is not an IPv4 address`,
      );
      check(Number.isInteger(p.port) && p.port >= 0 && p.port <= 0xffff, `NetBIOS session: port ${p.port}`);
      trailer.bytes(Buffer.from(parts)).u16be(p.port);
      break;
    }
    case "keep-alive":
      type = SessionPacketType.KEEP_ALIVE;
      break;
    case "session-message":
      type = SessionPacketType.MESSAGE;
      trailer.bytes(p.payload);
      break;
  }
  const body = trailer.toBuffer();
  return Buffer.concat([encodeSessionHeader(type, body.length), body]);
}

/**
 * Decodes one whole packet: `packet` is exactly its header and trailer (the stream's framing,
 * with {@link decodeSessionHeader}, cut it).
 */
export function decodeSessionPacket(packet: Buffer): SessionPacket {
  return decoding("NetBIOS session", () => {
    const { type, length } = decodeSessionHeader(packet.subarray(0, SESSION_HEADER_LENGTH));
    const what = "NetBIOS session";
    check(
      packet.length === SESSION_HEADER_LENGTH + length,
      `${what}: ${packet.length} bytes for a trailer of ${length}`,
    );
    const r = new ByteReader(packet, what, SESSION_HEADER_LENGTH);
    const empty = (kind: "positive-session-response" | "keep-alive"): SessionPacket => {
      check(length === 0, `${what}: ${kind} with a trailer of ${length} bytes`);
      return { kind };
    };
    switch (type) {
      case SessionPacketType.MESSAGE:
        return { kind: "session-message", payload: Buffer.from(r.bytes(length)) };
      case SessionPacketType.REQUEST: {
        const called = readEncodedName(r, false);
        const calling = readEncodedName(r, false);
        check(r.remaining === 0, `${what}: ${r.remaining} bytes after the calling name`);
        return { kind: "session-request", called, calling };
      }
      case SessionPacketType.POSITIVE_RESPONSE:
        return empty("positive-session-response");
      case SessionPacketType.NEGATIVE_RESPONSE:
        check(length === 1, `${what}: a negative response of ${length} bytes, not 1`);
        return { kind: "negative-session-response", errorCode: r.u8() };
      case SessionPacketType.RETARGET_RESPONSE: {
        check(length === 6, `${what}: a retarget response of ${length} bytes, not 6`);
        const address = [...r.bytes(4)].join(".");
        return { kind: "retarget-session-response", address, port: r.u16be() };
      }
      case SessionPacketType.KEEP_ALIVE:
        return empty("keep-alive");
      default:
        throw new Error(`unknown packet type 0x${type.toString(16)}`);
    }
  });
}
