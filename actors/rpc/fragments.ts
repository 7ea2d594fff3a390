/**
 * Cuts whole DCE/RPC fragments out of what a pipe gives. A message-mode pipe gives one fragment
 * per read, but a server behind a byte-stream relay (impacket's, Samba's external RPC servers) may
 * give two fragments in one answer or one fragment over two reads; frag_length (C706 12.6.1)
 * says where each ends, so the reader keeps what is left over for the next fragment.
 */
import { check } from "../wire/bytes.ts";
import { fragmentLength } from "./pdu-header.ts";

/** Fragments from a sequence of chunks; `more` fetches the next chunk when a fragment is incomplete. */
export class FragmentReader {
  private pending: Buffer = Buffer.alloc(0);
  private readonly maxFrag: number;

  /** `maxFrag`: the largest fragment accepted (the negotiated max_recv_frag). */
  constructor(maxFrag: number) {
    this.maxFrag = maxFrag;
  }

  /** Bytes held that are not yet a whole fragment, or a fragment not yet taken. */
  get buffered(): number {
    return this.pending.length;
  }

  /** Adds a chunk the pipe gave. */
  push(chunk: Buffer): void {
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
  }

  /** The next whole fragment, or undefined when more bytes are needed. */
  next(): Buffer | undefined {
    const n = fragmentLength(this.pending);
    if (n === undefined) return undefined;
    check(n <= this.maxFrag, `DCE/RPC: a fragment of ${n} bytes, over the negotiated ${this.maxFrag}`);
    if (this.pending.length < n) return undefined;
    const fragment = this.pending.subarray(0, n);
    this.pending = this.pending.subarray(n);
    return fragment;
  }
}
