/**
 * The AV_PAIR list of NTLM (MS-NLMP 2.2.2.1): the server's TargetInfo in its CHALLENGE_MESSAGE, which
 * the client copies, with a few pairs of its own, into its NTLMv2 response (2.2.2.7).
 *
 * A list is kept as the pairs before MsvAvEOL, values as raw bytes: the client must send back the
 * server's pairs as they came, including ones this code does not know.
 */
import { ByteReader, ByteWriter, check, decoding } from "../../wire/bytes.ts";

/** AvId values (MS-NLMP 2.2.2.1). */
export const AvId = {
  MsvAvEOL: 0x0000,
  MsvAvNbComputerName: 0x0001,
  MsvAvNbDomainName: 0x0002,
  MsvAvDnsComputerName: 0x0003,
  MsvAvDnsDomainName: 0x0004,
  MsvAvDnsTreeName: 0x0005,
  MsvAvFlags: 0x0006,
  MsvAvTimestamp: 0x0007,
  MsvAvSingleHost: 0x0008,
  MsvAvTargetName: 0x0009,
  MsvAvChannelBindings: 0x000a,
} as const;

/** Bits of the MsvAvFlags value (MS-NLMP 2.2.2.1). */
export const AvFlag = {
  /** The account is constrained. */
  CONSTRAINED: 0x00000001,
  /** The AUTHENTICATE_MESSAGE carries a MIC. */
  MIC_PRESENT: 0x00000002,
  /** The client's target name came from an untrusted source. */
  UNTRUSTED_SPN_SOURCE: 0x00000004,
} as const;

/** One AV_PAIR: its AvId and its value, raw. */
export interface AvPair {
  readonly id: number;
  readonly value: Buffer;
}

/** The largest TargetInfo accepted (a Windows server sends a few hundred bytes). */
export const MAX_TARGET_INFO = 4096;

/** Encodes the pairs followed by MsvAvEOL. */
export function encodeAvPairs(pairs: readonly AvPair[]): Buffer {
  const w = new ByteWriter();
  for (const pair of pairs) {
    check(pair.id !== AvId.MsvAvEOL, "AV_PAIR list: MsvAvEOL inside the list");
    check(pair.value.length <= 0xffff, `AV_PAIR list: a value of ${pair.value.length} bytes`);
    w.u16le(pair.id).u16le(pair.value.length).bytes(pair.value);
  }
  w.u16le(AvId.MsvAvEOL).u16le(0);
  check(w.length <= MAX_TARGET_INFO, `AV_PAIR list: ${w.length} bytes, over ${MAX_TARGET_INFO}`);
  return w.toBuffer();
}

/**
 * Decodes a list up to its MsvAvEOL (MS-NLMP 2.2.2.1: the last pair, of length 0); bytes after it
 * are ignored, as the NTLMv2 client challenge has 4 zero bytes there.
 */
export function decodeAvPairs(bytes: Buffer): AvPair[] {
  return decoding("AV_PAIR list", () => {
    check(bytes.length <= MAX_TARGET_INFO, `AV_PAIR list: ${bytes.length} bytes, over ${MAX_TARGET_INFO}`);
    const r = new ByteReader(bytes, "AV_PAIR list");
    const pairs: AvPair[] = [];
    for (;;) {
      const id = r.u16le();
      const length = r.u16le();
      if (id === AvId.MsvAvEOL) {
        check(length === 0, `AV_PAIR list: MsvAvEOL with a length of ${length}`);
        return pairs;
      }
      pairs.push({ id, value: Buffer.from(r.bytes(length, `AV_PAIR ${id}`)) });
    }
  });
}

/** The value of the first pair with `id`, if any. */
export function findAvPair(pairs: readonly AvPair[], id: number): Buffer | undefined {
  return pairs.find((p) => p.id === id)?.value;
}

/** The server's MsvAvTimestamp (a FILETIME), if it sent one; throws when it is not 8 bytes. */
export function avTimestamp(pairs: readonly AvPair[]): bigint | undefined {
  const value = findAvPair(pairs, AvId.MsvAvTimestamp);
  if (value === undefined) return undefined;
  check(value.length === 8, `MsvAvTimestamp of ${value.length} bytes, not 8`);
  return value.readBigUInt64LE(0);
}

/** The MsvAvFlags value, if present; throws when it is not 4 bytes. */
export function avFlags(pairs: readonly AvPair[]): number | undefined {
  const value = findAvPair(pairs, AvId.MsvAvFlags);
  if (value === undefined) return undefined;
  check(value.length === 4, `MsvAvFlags of ${value.length} bytes, not 4`);
  return value.readUInt32LE(0);
}

/** A pair whose value is UTF-16LE text (the names, MsvAvTargetName). */
export function avText(id: number, text: string): AvPair {
  return { id, value: Buffer.from(text, "utf16le") };
}
