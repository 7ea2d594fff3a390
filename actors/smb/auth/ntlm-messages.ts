/**
 * The three NTLMSSP messages (MS-NLMP 2.2.1.1 NEGOTIATE_MESSAGE, 2.2.1.2 CHALLENGE_MESSAGE, 2.2.1.3
 * AUTHENTICATE_MESSAGE), the VERSION structure (2.2.2.10) and the NegotiateFlags (2.2.2.5).
 *
 * Each message is a fixed part of descriptors (length, maximum length, offset) followed by a payload
 * the descriptors point into. Whether the optional VERSION (and, in AUTHENTICATE, the MIC) is there
 * is read from where the payload starts, as the flags alone do not say it reliably: the first
 * non-empty field's offset, or the message's end when all are empty.
 */
import { ByteReader, ByteWriter, check, decoding } from "../../wire/bytes.ts";
import { decodeAvPairs, encodeAvPairs, MAX_TARGET_INFO, type AvPair } from "./ntlm-av-pairs.ts";

/** NegotiateFlags (MS-NLMP 2.2.2.5). Combine with `|` and normalise with `>>> 0`. */
export const NegotiateFlags = {
  UNICODE: 0x00000001,
  OEM: 0x00000002,
  REQUEST_TARGET: 0x00000004,
  SIGN: 0x00000010,
  SEAL: 0x00000020,
  DATAGRAM: 0x00000040,
  LM_KEY: 0x00000080,
  NTLM: 0x00000200,
  ANONYMOUS: 0x00000800,
  OEM_DOMAIN_SUPPLIED: 0x00001000,
  OEM_WORKSTATION_SUPPLIED: 0x00002000,
  ALWAYS_SIGN: 0x00008000,
  TARGET_TYPE_DOMAIN: 0x00010000,
  TARGET_TYPE_SERVER: 0x00020000,
  EXTENDED_SESSIONSECURITY: 0x00080000,
  IDENTIFY: 0x00100000,
  REQUEST_NON_NT_SESSION_KEY: 0x00400000,
  TARGET_INFO: 0x00800000,
  VERSION: 0x02000000,
  NEGOTIATE_128: 0x20000000,
  KEY_EXCH: 0x40000000,
  NEGOTIATE_56: 0x80000000,
} as const;

/** The VERSION structure (MS-NLMP 2.2.2.10); for debugging only, never checked. */
export interface NtlmVersion {
  readonly major: number;
  readonly minor: number;
  readonly build: number;
  /** NTLMRevisionCurrent: 0x0f (NTLMSSP_REVISION_W2K3). */
  readonly revision: number;
}

/** NEGOTIATE_MESSAGE (MS-NLMP 2.2.1.1). Domain and workstation are OEM text, usually empty. */
export interface NegotiateMessage {
  readonly flags: number;
  readonly domain: string;
  readonly workstation: string;
  readonly version?: NtlmVersion;
}

/** CHALLENGE_MESSAGE (MS-NLMP 2.2.1.2). */
export interface ChallengeMessage {
  readonly flags: number;
  /** UTF-16LE when the flags have UNICODE, OEM otherwise. */
  readonly targetName: string;
  /** 8 bytes. */
  readonly serverChallenge: Buffer;
  /** The AV_PAIR list without its MsvAvEOL; undefined when the message has none. */
  readonly targetInfo?: readonly AvPair[];
  readonly version?: NtlmVersion;
}

/** AUTHENTICATE_MESSAGE (MS-NLMP 2.2.1.3). Texts are UTF-16LE when the flags have UNICODE. */
export interface AuthenticateMessage {
  readonly flags: number;
  readonly lmChallengeResponse: Buffer;
  readonly ntChallengeResponse: Buffer;
  readonly domain: string;
  readonly user: string;
  readonly workstation: string;
  readonly encryptedRandomSessionKey: Buffer;
  /** Written as zeros when absent and a MIC is given (the MIC follows the VERSION). */
  readonly version?: NtlmVersion;
  /** 16 bytes. */
  readonly mic?: Buffer;
}

const SIGNATURE = Buffer.from("NTLMSSP\0", "latin1");
const MessageType = { NEGOTIATE: 1, CHALLENGE: 2, AUTHENTICATE: 3 } as const;

/** Caps on what a peer may send (a real exchange is a few hundred bytes each). */
const MAX_MESSAGE = 16 * 1024;
const MAX_NAME = 1024;
const MAX_LM_RESPONSE = 24;
const MAX_NT_RESPONSE = 8 * 1024;
const MAX_SESSION_KEY = 16;

/** Where the MIC lies in an AUTHENTICATE_MESSAGE that has one (MS-NLMP 2.2.1.3). */
export const MIC_OFFSET = 72;
const VERSION_SIZE = 8;

const text = (unicode: boolean, value: string): Buffer => Buffer.from(value, unicode ? "utf16le" : "latin1");

function encodeVersion(w: ByteWriter, v: NtlmVersion | undefined): void {
  if (v === undefined) w.zeros(VERSION_SIZE);
  else w.u8(v.major).u8(v.minor).u16le(v.build).zeros(3).u8(v.revision);
}

function decodeVersion(r: ByteReader): NtlmVersion {
  const major = r.u8();
  const minor = r.u8();
  const build = r.u16le();
  r.skip(3, "VERSION reserved");
  return { major, minor, build, revision: r.u8() };
}

/**
 * Writes a message: the signature and type, then `layout` writes the rest of the fixed part,
 * calling `descriptor(i)` where field i's (length, maximum length, offset) goes; the payloads follow
 * in the order of `fields`, each descriptor patched to point at its own.
 */
function encodeMessage(
  type: number,
  fields: readonly Buffer[],
  fixedSize: number,
  layout: (w: ByteWriter, descriptor: (i: number) => void) => void,
): Buffer {
  const w = new ByteWriter(fixedSize + fields.reduce((n, f) => n + f.length, 0));
  w.bytes(SIGNATURE).u32le(type);
  const at: number[] = [];
  layout(w, (i) => {
    at[i] = w.length;
    w.zeros(8);
  });
  check(w.length === fixedSize, `NTLM message ${type}: fixed part of ${w.length} bytes, not ${fixedSize}`);
  fields.forEach((field, i) => {
    check(field.length <= 0xffff, `NTLM message ${type}: a field of ${field.length} bytes`);
    const descriptor = at[i] as number;
    w.patchU16le(descriptor, field.length)
      .patchU16le(descriptor + 2, field.length)
      .patchU32le(descriptor + 4, w.length);
    w.bytes(field);
  });
  return w.toBuffer();
}

interface Descriptor {
  readonly length: number;
  readonly offset: number;
}

/** Reads the signature and type, and checks the size and the cap. */
function openMessage(bytes: Buffer, type: number, what: string, minimum: number): ByteReader {
  check(bytes.length <= MAX_MESSAGE, `${what}: ${bytes.length} bytes, over ${MAX_MESSAGE}`);
  check(bytes.length >= minimum, `${what}: ${bytes.length} bytes, fewer than ${minimum}`);
  const r = new ByteReader(bytes, what);
  check(r.bytes(8).equals(SIGNATURE), `${what}: no NTLMSSP signature`);
  const actual = r.u32le();
  check(actual === type, `${what}: message type ${actual}, not ${type}`);
  return r;
}

function readDescriptor(r: ByteReader): Descriptor {
  const length = r.u16le();
  r.skip(2, "maximum length");
  return { length, offset: r.u32le() };
}

/** Where the payload starts: the first non-empty field, or the end of the message. */
function payloadStart(bytes: Buffer, descriptors: readonly Descriptor[]): number {
  const used = descriptors.filter((d) => d.length > 0).map((d) => d.offset);
  return used.length === 0 ? bytes.length : Math.min(...used);
}

/** A field's bytes, which must lie in the payload (past the fixed part) and under `cap`. */
function field(r: ByteReader, d: Descriptor, fixedEnd: number, cap: number, name: string): Buffer {
  check(d.length === 0 || d.offset >= fixedEnd, `${r.what}: ${name} at ${d.offset}, inside the fixed part`);
  return Buffer.from(r.slice(d.offset, d.length, cap, name));
}

function readText(r: ByteReader, d: Descriptor, fixedEnd: number, unicode: boolean, name: string): string {
  const bytes = field(r, d, fixedEnd, MAX_NAME, name);
  check(!unicode || bytes.length % 2 === 0, `${r.what}: ${name} has an odd length ${bytes.length}`);
  return bytes.toString(unicode ? "utf16le" : "latin1");
}

const NEGOTIATE_FIXED = 32;

/** Encodes a NEGOTIATE_MESSAGE. */
export function encodeNegotiate(m: NegotiateMessage): Buffer {
  const fixed = NEGOTIATE_FIXED + (m.version === undefined ? 0 : VERSION_SIZE);
  return encodeMessage(
    MessageType.NEGOTIATE,
    [text(false, m.domain), text(false, m.workstation)],
    fixed,
    (w, d) => {
      w.u32le(m.flags);
      d(0);
      d(1);
      if (m.version !== undefined) encodeVersion(w, m.version);
    },
  );
}

/** Decodes a NEGOTIATE_MESSAGE. */
export function decodeNegotiate(bytes: Buffer): NegotiateMessage {
  return decoding("NTLM NEGOTIATE", () => {
    const r = openMessage(bytes, MessageType.NEGOTIATE, "NTLM NEGOTIATE", NEGOTIATE_FIXED);
    const flags = r.u32le();
    const domain = readDescriptor(r);
    const workstation = readDescriptor(r);
    const hasVersion = payloadStart(bytes, [domain, workstation]) >= NEGOTIATE_FIXED + VERSION_SIZE;
    const version = hasVersion ? decodeVersion(r) : undefined;
    const fixedEnd = r.offset;
    return {
      flags,
      domain: readText(r, domain, fixedEnd, false, "domain"),
      workstation: readText(r, workstation, fixedEnd, false, "workstation"),
      ...(version === undefined ? {} : { version }),
    };
  });
}

const CHALLENGE_FIXED = 48;

/** Encodes a CHALLENGE_MESSAGE (for tests, and a server one day). */
export function encodeChallenge(m: ChallengeMessage): Buffer {
  check(m.serverChallenge.length === 8, "NTLM CHALLENGE: a server challenge of other than 8 bytes");
  const unicode = (m.flags & NegotiateFlags.UNICODE) !== 0;
  const info = m.targetInfo === undefined ? Buffer.alloc(0) : encodeAvPairs(m.targetInfo);
  const fixed = CHALLENGE_FIXED + (m.version === undefined ? 0 : VERSION_SIZE);
  return encodeMessage(MessageType.CHALLENGE, [text(unicode, m.targetName), info], fixed, (w, d) => {
    d(0);
    w.u32le(m.flags).bytes(m.serverChallenge).zeros(8);
    d(1);
    if (m.version !== undefined) encodeVersion(w, m.version);
  });
}

/** Decodes a CHALLENGE_MESSAGE. */
export function decodeChallenge(bytes: Buffer): ChallengeMessage {
  return decoding("NTLM CHALLENGE", () => {
    const r = openMessage(bytes, MessageType.CHALLENGE, "NTLM CHALLENGE", CHALLENGE_FIXED);
    const targetName = readDescriptor(r);
    const flags = r.u32le();
    const serverChallenge = Buffer.from(r.bytes(8, "server challenge"));
    r.skip(8, "reserved");
    const targetInfo = readDescriptor(r);
    const hasVersion = payloadStart(bytes, [targetName, targetInfo]) >= CHALLENGE_FIXED + VERSION_SIZE;
    const version = hasVersion ? decodeVersion(r) : undefined;
    const fixedEnd = r.offset;
    const unicode = (flags & NegotiateFlags.UNICODE) !== 0;
    const info = field(r, targetInfo, fixedEnd, MAX_TARGET_INFO, "target info");
    return {
      flags,
      targetName: readText(r, targetName, fixedEnd, unicode, "target name"),
      serverChallenge,
      ...(info.length === 0 ? {} : { targetInfo: decodeAvPairs(info) }),
      ...(version === undefined ? {} : { version }),
    };
  });
}

const AUTHENTICATE_FIXED = 64;

/** Encodes an AUTHENTICATE_MESSAGE, its payload in the order of MS-NLMP 4.2.4.3's example. */
export function encodeAuthenticate(m: AuthenticateMessage): Buffer {
  const unicode = (m.flags & NegotiateFlags.UNICODE) !== 0;
  check(m.mic === undefined || m.mic.length === 16, "NTLM AUTHENTICATE: a MIC of other than 16 bytes");
  // Descriptors in wire order: LM, NT, domain, user, workstation, session key.
  const payload = [
    text(unicode, m.domain),
    text(unicode, m.user),
    text(unicode, m.workstation),
    m.lmChallengeResponse,
    m.ntChallengeResponse,
    m.encryptedRandomSessionKey,
  ];
  const withVersion = m.version !== undefined || m.mic !== undefined;
  const fixed = AUTHENTICATE_FIXED + (withVersion ? VERSION_SIZE : 0) + (m.mic === undefined ? 0 : 16);
  return encodeMessage(MessageType.AUTHENTICATE, payload, fixed, (w, d) => {
    for (const i of [3, 4, 0, 1, 2, 5]) d(i);
    w.u32le(m.flags);
    if (withVersion) encodeVersion(w, m.version);
    if (m.mic !== undefined) w.bytes(m.mic);
  });
}

/** Decodes an AUTHENTICATE_MESSAGE (for tests, and a server one day). */
export function decodeAuthenticate(bytes: Buffer): AuthenticateMessage {
  return decoding("NTLM AUTHENTICATE", () => {
    const r = openMessage(bytes, MessageType.AUTHENTICATE, "NTLM AUTHENTICATE", AUTHENTICATE_FIXED);
    const [lm, nt, domain, user, workstation, key] = [0, 1, 2, 3, 4, 5].map(() => readDescriptor(r)) as [
      Descriptor,
      Descriptor,
      Descriptor,
      Descriptor,
      Descriptor,
      Descriptor,
    ];
    const flags = r.u32le();
    const start = payloadStart(bytes, [lm, nt, domain, user, workstation, key]);
    const version = start >= AUTHENTICATE_FIXED + VERSION_SIZE ? decodeVersion(r) : undefined;
    const mic = start >= MIC_OFFSET + 16 ? Buffer.from(r.bytes(16, "MIC")) : undefined;
    const fixedEnd = r.offset;
    const unicode = (flags & NegotiateFlags.UNICODE) !== 0;
    return {
      flags,
      lmChallengeResponse: field(r, lm, fixedEnd, MAX_LM_RESPONSE, "LM response"),
      ntChallengeResponse: field(r, nt, fixedEnd, MAX_NT_RESPONSE, "NT response"),
      domain: readText(r, domain, fixedEnd, unicode, "domain"),
      user: readText(r, user, fixedEnd, unicode, "user"),
      workstation: readText(r, workstation, fixedEnd, unicode, "workstation"),
      encryptedRandomSessionKey: field(r, key, fixedEnd, MAX_SESSION_KEY, "session key"),
      ...(version === undefined ? {} : { version }),
      ...(mic === undefined ? {} : { mic }),
    };
  });
}
