/**
 * TREE_CONNECT and TREE_DISCONNECT requests and responses (MS-SMB2 2.2.9 to 2.2.12): a share is
 * reached by its UNC path, and the response says what kind of share it is and how to protect it.
 */
import { ByteWriter, decoding } from "../../wire/bytes.ts";
import { NONE, ONE_ZERO, bodyReader, checkFits, endOf, headerOffset, readTrailer, textAt } from "./body.ts";

/** ShareType (MS-SMB2 2.2.10). */
export const ShareType = { DISK: 0x01, PIPE: 0x02, PRINT: 0x03 } as const;

/** ShareFlags (MS-SMB2 2.2.10); the caching policy lives in the bits under 0x30. */
export const ShareFlag = {
  MANUAL_CACHING: 0x00000000,
  AUTO_CACHING: 0x00000010,
  VDO_CACHING: 0x00000020,
  NO_CACHING: 0x00000030,
  DFS: 0x00000001,
  DFS_ROOT: 0x00000002,
  RESTRICT_EXCLUSIVE_OPENS: 0x00000100,
  FORCE_SHARED_DELETE: 0x00000200,
  ALLOW_NAMESPACE_CACHING: 0x00000400,
  ACCESS_BASED_DIRECTORY_ENUM: 0x00000800,
  FORCE_LEVELII_OPLOCK: 0x00001000,
  ENABLE_HASH_V1: 0x00002000,
  ENABLE_HASH_V2: 0x00004000,
  ENCRYPT_DATA: 0x00008000,
  IDENTITY_REMOTING: 0x00040000,
  COMPRESS_DATA: 0x00100000,
  ISOLATED_TRANSPORT: 0x00200000,
} as const;

/** Capabilities of a share (MS-SMB2 2.2.10). */
export const ShareCapability = {
  DFS: 0x00000008,
  CONTINUOUS_AVAILABILITY: 0x00000010,
  SCALEOUT: 0x00000020,
  CLUSTER: 0x00000040,
  ASYMMETRIC: 0x00000080,
  REDIRECT_TO_OWNER: 0x00000100,
} as const;

/** Flags of the 3.1.1 request (MS-SMB2 2.2.9). */
export const TreeConnectFlag = {
  CLUSTER_RECONNECT: 0x0001,
  REDIRECT_TO_OWNER: 0x0002,
  EXTENSION_PRESENT: 0x0004,
} as const;

/** MS-SMB2 2.2.9. */
export interface TreeConnectRequest {
  readonly flags: number;
  /** `\\server\share`. */
  readonly path: string;
  /** Padding after the path, when not the encoder's (none; one zero byte for an empty path). */
  readonly trailer?: Buffer;
}

/** MS-SMB2 2.2.10. */
export interface TreeConnectResponse {
  readonly shareType: number;
  readonly shareFlags: number;
  readonly capabilities: number;
  /** The access mask the user has on the share's root. */
  readonly maximalAccess: number;
}

/** MS-SMB2 2.2.11 and 2.2.12: nothing but a reserved field. */
export type TreeDisconnect = Record<string, never>;

/** Encodes the body of a TREE_CONNECT request. */
export function encodeTreeConnectRequest(req: TreeConnectRequest): Buffer {
  const path = Buffer.from(req.path, "utf16le");
  checkFits(path.length, 16, "TREE_CONNECT PathLength");
  return new ByteWriter(8 + path.length + 1)
    .u16le(9)
    .u16le(req.flags)
    .u16le(headerOffset(8))
    .u16le(path.length)
    .bytes(path)
    .bytes(req.trailer ?? (path.length === 0 ? ONE_ZERO : NONE))
    .toBuffer();
}

/** Decodes a whole TREE_CONNECT request message. */
export function decodeTreeConnectRequest(message: Buffer): TreeConnectRequest {
  return decoding("TREE_CONNECT request", () => {
    const r = bodyReader(message, "TREE_CONNECT request", 9);
    const flags = r.u16le();
    const offset = r.u16le();
    const length = r.u16le();
    const path = textAt(r, offset, length, "path");
    const end = Math.max(headerOffset(8), endOf(offset, length));
    const trailer = readTrailer(r, end, length === 0 ? ONE_ZERO : NONE);
    return trailer ? { flags, path, trailer } : { flags, path };
  });
}

/** Encodes the body of a TREE_CONNECT response. */
export function encodeTreeConnectResponse(res: TreeConnectResponse): Buffer {
  return new ByteWriter(16)
    .u16le(16)
    .u8(res.shareType)
    .u8(0)
    .u32le(res.shareFlags)
    .u32le(res.capabilities)
    .u32le(res.maximalAccess)
    .toBuffer();
}

/** Decodes a whole TREE_CONNECT response message. */
export function decodeTreeConnectResponse(message: Buffer): TreeConnectResponse {
  return decoding("TREE_CONNECT response", () => {
    const r = bodyReader(message, "TREE_CONNECT response", 16);
    const shareType = r.u8();
    r.skip(1, "reserved");
    return { shareType, shareFlags: r.u32le(), capabilities: r.u32le(), maximalAccess: r.u32le() };
  });
}

/** Encodes the body of a TREE_DISCONNECT request or response (the same 4 bytes). */
export function encodeTreeDisconnect(_: TreeDisconnect = {}): Buffer {
  return new ByteWriter(4).u16le(4).u16le(0).toBuffer();
}

/** Decodes a whole TREE_DISCONNECT request or response message. */
export function decodeTreeDisconnect(message: Buffer): TreeDisconnect {
  return decoding("TREE_DISCONNECT", () => {
    bodyReader(message, "TREE_DISCONNECT", 4).skip(2, "reserved");
    return {};
  });
}

/** Encodes the body of a TREE_DISCONNECT request (MS-SMB2 2.2.11). */
export const encodeTreeDisconnectRequest = encodeTreeDisconnect;
/** Decodes a whole TREE_DISCONNECT request message. */
export const decodeTreeDisconnectRequest = decodeTreeDisconnect;
/** Encodes the body of a TREE_DISCONNECT response (MS-SMB2 2.2.12). */
export const encodeTreeDisconnectResponse = encodeTreeDisconnect;
/** Decodes a whole TREE_DISCONNECT response message. */
export const decodeTreeDisconnectResponse = decodeTreeDisconnect;
