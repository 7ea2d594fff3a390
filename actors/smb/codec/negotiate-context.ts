/**
 * SMB 3.1.1 negotiate contexts (MS-SMB2 2.2.3.1 and 2.2.4.1), carried after the dialects of a
 * NEGOTIATE request and after the security buffer of its response, each at an 8-byte boundary.
 * The ones a client acts on are typed; any other is kept as raw bytes so that it round-trips.
 */
import { ByteReader, ByteWriter, check } from "../../wire/bytes.ts";
import { Cap, checkFits } from "./body.ts";

/** ContextType values (MS-SMB2 2.2.3.1). */
export const NegotiateContextType = {
  PREAUTH_INTEGRITY_CAPABILITIES: 0x0001,
  ENCRYPTION_CAPABILITIES: 0x0002,
  COMPRESSION_CAPABILITIES: 0x0003,
  NETNAME_NEGOTIATE_CONTEXT_ID: 0x0005,
  TRANSPORT_CAPABILITIES: 0x0006,
  RDMA_TRANSFORM_CAPABILITIES: 0x0007,
  SIGNING_CAPABILITIES: 0x0008,
} as const;

/** HashAlgorithms (MS-SMB2 2.2.3.1.1): SHA-512 is the only one defined. */
export const HashAlgorithm = { SHA512: 0x0001 } as const;

/** Ciphers (MS-SMB2 2.2.3.1.2). */
export const Cipher = {
  AES_128_CCM: 0x0001,
  AES_128_GCM: 0x0002,
  AES_256_CCM: 0x0003,
  AES_256_GCM: 0x0004,
} as const;

/** SigningAlgorithms (MS-SMB2 2.2.3.1.7). */
export const SigningAlgorithm = { HMAC_SHA256: 0x0000, AES_CMAC: 0x0001, AES_GMAC: 0x0002 } as const;

/** One negotiate context, typed when the client acts on it, raw otherwise. */
export type NegotiateContext =
  | { readonly kind: "preauth"; readonly hashAlgorithms: readonly number[]; readonly salt: Buffer }
  | { readonly kind: "encryption"; readonly ciphers: readonly number[] }
  | { readonly kind: "signing"; readonly signingAlgorithms: readonly number[] }
  | { readonly kind: "netname"; readonly netName: string }
  | { readonly kind: "raw"; readonly type: number; readonly data: Buffer };

const typed = new Set<number>([
  NegotiateContextType.PREAUTH_INTEGRITY_CAPABILITIES,
  NegotiateContextType.ENCRYPTION_CAPABILITIES,
  NegotiateContextType.SIGNING_CAPABILITIES,
  NegotiateContextType.NETNAME_NEGOTIATE_CONTEXT_ID,
]);

function ids(w: ByteWriter, list: readonly number[], field: string): void {
  check(list.length <= Cap.ALGORITHMS, `${field}: ${list.length} ids, over the cap of ${Cap.ALGORITHMS}`);
  w.u16le(list.length);
  for (const id of list) w.u16le(id);
}

function contextData(c: NegotiateContext): { type: number; data: Buffer } {
  const w = new ByteWriter(64);
  switch (c.kind) {
    case "preauth":
      check(c.hashAlgorithms.length <= Cap.ALGORITHMS, "preauth context: too many hash algorithms");
      checkFits(c.salt.length, 16, "preauth salt length");
      w.u16le(c.hashAlgorithms.length).u16le(c.salt.length);
      for (const id of c.hashAlgorithms) w.u16le(id);
      w.bytes(c.salt);
      return { type: NegotiateContextType.PREAUTH_INTEGRITY_CAPABILITIES, data: w.toBuffer() };
    case "encryption":
      ids(w, c.ciphers, "encryption context");
      return { type: NegotiateContextType.ENCRYPTION_CAPABILITIES, data: w.toBuffer() };
    case "signing":
      ids(w, c.signingAlgorithms, "signing context");
      return { type: NegotiateContextType.SIGNING_CAPABILITIES, data: w.toBuffer() };
    case "netname":
      return {
        type: NegotiateContextType.NETNAME_NEGOTIATE_CONTEXT_ID,
        data: Buffer.from(c.netName, "utf16le"),
      };
    case "raw":
      check(!typed.has(c.type), `raw negotiate context of the typed type ${c.type}`);
      return { type: c.type, data: c.data };
  }
}

/**
 * Appends `contexts` to `w` (which holds the body from its first byte, so that 8-byte alignment of
 * the body is alignment from the header, whose size is a multiple of 8). Each context starts at an
 * 8-byte boundary; the last is not padded after its data (MS-SMB2 2.2.3.1).
 */
export function writeNegotiateContexts(w: ByteWriter, contexts: readonly NegotiateContext[]): void {
  check(contexts.length <= Cap.NEGOTIATE_CONTEXTS, `${contexts.length} negotiate contexts, over the cap`);
  for (const c of contexts) {
    w.align(8);
    const { type, data } = contextData(c);
    checkFits(data.length, 16, "negotiate context DataLength");
    w.u16le(type).u16le(data.length).u32le(0).bytes(data);
  }
}

function readIds(r: ByteReader, count: number, field: string): number[] {
  check(count <= Cap.ALGORITHMS, `${r.what}: ${count} ${field}, over the cap of ${Cap.ALGORITHMS}`);
  r.need(count * 2, field);
  const list: number[] = [];
  for (let i = 0; i < count; i++) list.push(r.u16le());
  return list;
}

function parseContext(type: number, data: Buffer, what: string): NegotiateContext {
  const r = new ByteReader(data, `${what} context ${type}`);
  let c: NegotiateContext;
  switch (type) {
    case NegotiateContextType.PREAUTH_INTEGRITY_CAPABILITIES: {
      const count = r.u16le();
      const saltLength = r.u16le();
      const hashAlgorithms = readIds(r, count, "hash algorithms");
      c = { kind: "preauth", hashAlgorithms, salt: Buffer.from(r.bytes(saltLength, "salt")) };
      break;
    }
    case NegotiateContextType.ENCRYPTION_CAPABILITIES:
      c = { kind: "encryption", ciphers: readIds(r, r.u16le(), "ciphers") };
      break;
    case NegotiateContextType.SIGNING_CAPABILITIES:
      c = { kind: "signing", signingAlgorithms: readIds(r, r.u16le(), "signing algorithms") };
      break;
    case NegotiateContextType.NETNAME_NEGOTIATE_CONTEXT_ID:
      c = { kind: "netname", netName: r.utf16le(r.remaining, "net name") };
      break;
    default:
      return { kind: "raw", type, data: Buffer.from(data) };
  }
  // Bytes past the fields would be lost on re-encoding: a context is exactly its fields.
  check(r.remaining === 0, `${r.what}: ${r.remaining} bytes after its fields`);
  return c;
}

/**
 * Reads `count` contexts starting at header offset `offset` of `message`, each at the first 8-byte
 * boundary after the previous one.
 */
export function readNegotiateContexts(r: ByteReader, offset: number, count: number): NegotiateContext[] {
  check(count <= Cap.NEGOTIATE_CONTEXTS, `${r.what}: ${count} negotiate contexts, over the cap`);
  if (count === 0) return [];
  check(offset % 8 === 0, `${r.what}: NegotiateContextOffset ${offset} is not 8-byte aligned`);
  r.seek(offset, "NegotiateContextOffset");
  const contexts: NegotiateContext[] = [];
  for (let i = 0; i < count; i++) {
    if (i > 0) r.skip((8 - (r.offset % 8)) % 8, "context padding");
    const type = r.u16le();
    const length = r.u16le();
    r.skip(4, "context reserved");
    contexts.push(parseContext(type, r.bytes(length, "context data"), r.what));
  }
  return contexts;
}
