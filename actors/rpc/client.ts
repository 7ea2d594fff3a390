/**
 * A DCE/RPC client over an SMB named pipe (C706 chapter 12 on the ncacn_np transport, MS-RPCE
 * 2.1.1.2): one association, one presentation context (the interface, in NDR 2.0), calls one at a
 * time.
 *
 * No RPC-level authentication (auth_length 0, no sec_trailer): over a named pipe the call travels
 * inside the SMB session, which signs or encrypts it, and the server takes the caller's identity
 * from that session. So the SMB session must be signed or encrypted, which sumac's SMB client
 * does unless told otherwise (`requireSigning`, `encrypt`).
 *
 * Sending a request of several fragments: every fragment but the last is a WRITE on the pipe and
 * the last goes in the FSCTL_PIPE_TRANSCEIVE that also brings the first answer back. A transceive
 * of an earlier fragment would wait for an answer the server gives only after the last one. This
 * is verified against scm-peer (impacket's SMB server, test/integration/rpc-svcctl.test.ts), not
 * yet against Windows. Receiving: the first fragment (or several) comes with the transceive, the
 * others by READs until LAST_FRAG, cut by frag_length and reassembled up to a cap.
 */
import { withDeadline } from "../../base/deadline.ts";
import { RemoteTimeoutError } from "../remote-errors.ts";
import { check, MalformedPacketError } from "../wire/bytes.ts";
import { RpcBindRefusedError, RpcConfigError, RpcFaultError } from "./errors.ts";
import { FragmentReader } from "./fragments.ts";
import { ContextResult, PROVIDER_REASONS, REJECT_REASONS } from "./pdu-bind.ts";
import { faultName } from "./pdu-call.ts";
import { MAX_FRAG, PDU_HEADER_SIZE, PfcFlag, PType, WHOLE } from "./pdu-header.ts";
import { decodePdu, encodePdu, type Pdu } from "./pdu.ts";
import { isUuid, NDR20, sameSyntax, type SyntaxId } from "./uuid.ts";

/** A deadline and a signal, as every pipe operation takes them. */
export interface RpcCallOptions {
  readonly timeoutMs: number;
  readonly signal?: AbortSignal | undefined;
}

/** The pipe the client needs (sumac's SmbPipe, actors/smb/client/pipe.ts, is one). */
export interface RpcPipe {
  /** Writes `input` and reads one answer (FSCTL_PIPE_TRANSCEIVE). */
  transceive(input: Buffer, options: RpcCallOptions & { readonly maxOutput?: number }): Promise<Buffer>;
  /** One write into the pipe. */
  write(data: Buffer, options: RpcCallOptions): Promise<void>;
  /** One read of at most `maxBytes`. */
  read(options: RpcCallOptions & { readonly maxBytes: number }): Promise<Buffer>;
}

/** The interface to bind: its UUID and major version, and its minor version (0 by default). */
export interface AbstractSyntax {
  readonly uuid: string;
  readonly version: number;
  readonly minor?: number;
}

export interface RpcBindOptions extends RpcCallOptions {
  readonly abstractSyntax: AbstractSyntax;
  /** The fragment size proposed both ways (default 4280, what Windows proposes over SMB). */
  readonly maxFrag?: number;
  /** The cap of one call's reassembled response stub (default 4 MiB). */
  readonly maxResponse?: number;
}

/** The fragment size Windows proposes over named pipes (and impacket's client too). */
export const DEFAULT_MAX_FRAG = 4280;
/** The default cap of a reassembled response stub. */
export const DEFAULT_MAX_RESPONSE = 4 * 1024 * 1024;
/** The smallest fragment size accepted from a server (C706 12.6.3.1 MUST_RECV_FRAG_SIZE). */
const MIN_FRAG = 1432;
/** A REQUEST's fixed part after the common header (alloc_hint, p_cont_id, opnum). */
const REQUEST_HEADER = 8;
const CONTEXT_ID = 0;
/**
 * The least stub a response fragment is counted for when capping the number of fragments: a
 * server fills every fragment but the last to its max_xmit_frag (C706 12.6.3.1, at least 1432), so
 * a response of many tiny or empty fragments is a server stalling the client, not a big answer.
 */
const MIN_FRAGMENT_STUB = 256;

/**
 * A bound DCE/RPC association over one pipe. The caller owns the pipe and closes it.
 *
 * @example
 * const pipe = await tree.openPipe("svcctl", { timeoutMs });
 * const rpc = await RpcClient.bind(pipe, { abstractSyntax: SVCCTL, timeoutMs });
 * const answer = await rpc.call(15, stub, { timeoutMs }); // ROpenSCManagerW
 */
export class RpcClient {
  /** Largest fragment sent (the smaller of ours and the server's max_recv_frag). */
  readonly maxXmitFrag: number;
  /** Largest fragment accepted (what the server said it will send, at most what the client proposed). */
  readonly maxRecvFrag: number;
  readonly assocGroupId: number;
  private readonly pipe: RpcPipe;
  private readonly maxResponse: number;
  private nextCallId = 2;
  private queue: Promise<unknown> = Promise.resolve();
  /** Set when a call failed half-way: the pipe's message stream is then out of step. */
  private broken: Error | undefined;

  private constructor(pipe: RpcPipe, xmit: number, recv: number, group: number, maxResponse: number) {
    this.pipe = pipe;
    this.maxXmitFrag = xmit;
    this.maxRecvFrag = recv;
    this.assocGroupId = group;
    this.maxResponse = maxResponse;
  }

  /**
   * Binds `abstractSyntax` in NDR 2.0 (C706 12.4.2.1). Throws RpcBindRefusedError on a BIND_NAK or
   * a rejected context, RpcConfigError for a UUID, fragment size or response cap that cannot be used,
   * MalformedPacketError on an answer that is not a BIND_ACK for this bind,
   * RemoteTimeoutError when the deadline passes.
   */
  static async bind(pipe: RpcPipe, options: RpcBindOptions): Promise<RpcClient> {
    const syntax: SyntaxId = { ...options.abstractSyntax, minor: options.abstractSyntax.minor ?? 0 };
    if (!isUuid(syntax.uuid))
      throw new RpcConfigError(`RPC bind: ${JSON.stringify(syntax.uuid)} is not a lower-case UUID`);
    const frag = options.maxFrag ?? DEFAULT_MAX_FRAG;
    if (!Number.isInteger(frag) || frag < MIN_FRAG || frag > MAX_FRAG)
      throw new RpcConfigError(`RPC bind: a fragment size of ${frag}, not ${MIN_FRAG} to ${MAX_FRAG}`);
    const maxResponse = options.maxResponse ?? DEFAULT_MAX_RESPONSE;
    if (!Number.isSafeInteger(maxResponse) || maxResponse < 1)
      throw new RpcConfigError(`RPC bind: a response cap of ${maxResponse}, not a positive whole number`);
    const what = `RPC bind of ${syntax.uuid} v${syntax.version}.${syntax.minor}`;
    const timeout = new RemoteTimeoutError(`${what} did not finish within ${options.timeoutMs} ms`);
    const ack = await withDeadline(
      { ms: options.timeoutMs, timeout, signal: options.signal },
      async (signal) => {
        const budget = deadlineOf(options.timeoutMs, signal);
        const bind = encodePdu({
          ptype: PType.BIND,
          flags: WHOLE,
          callId: 1,
          body: {
            maxXmitFrag: frag,
            maxRecvFrag: frag,
            assocGroupId: 0,
            contexts: [{ contextId: CONTEXT_ID, abstractSyntax: syntax, transferSyntaxes: [NDR20] }],
          },
        });
        const reader = new FragmentReader(MAX_FRAG);
        reader.push(await pipe.transceive(bind, { ...budget(), maxOutput: frag }));
        return decodePdu(await nextFragment(pipe, reader, frag, budget));
      },
    );
    check(ack.callId === 1, `${what}: an answer for call ${ack.callId}`);
    if (ack.ptype === PType.BIND_NAK) {
      const reason = ack.body.rejectReason;
      const name = REJECT_REASONS[reason] ?? "unknown";
      throw new RpcBindRefusedError(
        `${what}: the server refused the bind (bind_nak, ${name})`,
        undefined,
        reason,
        name,
      );
    }
    if (ack.ptype !== PType.BIND_ACK) throw unexpected(what, ack);
    check((ack.flags & WHOLE) === WHOLE, `${what}: a BIND_ACK in fragments`);
    const result = ack.body.results[0];
    check(
      ack.body.results.length === 1 && result !== undefined,
      `${what}: ${ack.body.results.length} results for one context`,
    );
    if (result.result !== ContextResult.ACCEPTANCE) {
      const name = PROVIDER_REASONS[result.reason] ?? "unknown";
      throw new RpcBindRefusedError(
        `${what}: the server rejected the interface (result ${result.result}, ${name})`,
        result.result,
        result.reason,
        name,
      );
    }
    check(sameSyntax(result.transferSyntax, NDR20), `${what}: accepted in a transfer syntax not proposed`);
    const { maxXmitFrag: serverXmit, maxRecvFrag: serverRecv } = ack.body;
    check(
      serverRecv >= MIN_FRAG && serverXmit >= MIN_FRAG,
      `${what}: fragment sizes ${serverXmit}/${serverRecv}`,
    );
    return new RpcClient(
      pipe,
      Math.min(frag, serverRecv),
      // The server may not send over the max_recv_frag the client proposed (C706 12.6.3.1), whatever it announces.
      Math.min(frag, serverXmit),
      ack.body.assocGroupId,
      maxResponse,
    );
  }

  /**
   * Calls operation `opnum` with an NDR stub and returns the response stub. Calls on one client
   * run one after another. Throws RpcFaultError for a FAULT, MalformedPacketError for an answer
   * that breaks the protocol or its cap, RemoteTimeoutError at the deadline; after any failure
   * but a fault, the client refuses further calls (the pipe is mid-message).
   */
  call(opnum: number, stub: Buffer, options: RpcCallOptions): Promise<Buffer> {
    const run = this.queue.then(() => this.callNow(opnum, stub, options));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async callNow(opnum: number, stub: Buffer, options: RpcCallOptions): Promise<Buffer> {
    if (this.broken) throw this.broken;
    const callId = this.nextCallId;
    this.nextCallId = (this.nextCallId + 1) >>> 0 || 1;
    const what = `RPC call ${callId} (opnum ${opnum})`;
    const timeout = new RemoteTimeoutError(`${what} did not finish within ${options.timeoutMs} ms`);
    try {
      return await withDeadline({ ms: options.timeoutMs, timeout, signal: options.signal }, (signal) =>
        this.exchange(callId, opnum, stub, what, deadlineOf(options.timeoutMs, signal)),
      );
    } catch (err) {
      if (!(err instanceof RpcFaultError)) this.broken = err instanceof Error ? err : new Error(String(err));
      throw err;
    }
  }

  private async exchange(
    callId: number,
    opnum: number,
    stub: Buffer,
    what: string,
    budget: () => RpcCallOptions,
  ): Promise<Buffer> {
    const fragments = this.requestFragments(callId, opnum, stub);
    for (const f of fragments.slice(0, -1)) await this.pipe.write(f, budget());
    const reader = new FragmentReader(this.maxRecvFrag);
    reader.push(await this.pipe.transceive(fragments.at(-1)!, { ...budget(), maxOutput: this.maxRecvFrag }));
    const parts: Buffer[] = [];
    let total = 0;
    const maxFragments = Math.ceil(this.maxResponse / MIN_FRAGMENT_STUB) + 1;
    for (;;) {
      check(parts.length < maxFragments, `${what}: a response of more than ${maxFragments} fragments`);
      const pdu = decodePdu(await nextFragment(this.pipe, reader, this.maxRecvFrag, budget));
      check(pdu.callId === callId, `${what}: an answer for call ${pdu.callId}`);
      if (pdu.ptype === PType.FAULT) {
        const status = pdu.body.status >>> 0;
        const didNotExecute = (pdu.flags & PfcFlag.DID_NOT_EXECUTE) !== 0;
        // A fault leaves the client usable only when it ends the server's answer: anything after it
        // would be read as the next call's answer.
        check(
          (pdu.flags & PfcFlag.LAST_FRAG) !== 0 && reader.buffered === 0,
          `${what}: a FAULT (0x${status.toString(16).padStart(8, "0")}) with more to follow`,
        );
        throw new RpcFaultError(status, faultName(status), didNotExecute, what);
      }
      if (pdu.ptype !== PType.RESPONSE) throw unexpected(what, pdu);
      const first = (pdu.flags & PfcFlag.FIRST_FRAG) !== 0;
      check(first === (parts.length === 0), `${what}: a response fragment out of order`);
      check(pdu.body.contextId === CONTEXT_ID, `${what}: an answer in context ${pdu.body.contextId}`);
      total += pdu.body.stub.length;
      check(total <= this.maxResponse, `${what}: a response over its cap of ${this.maxResponse} bytes`);
      parts.push(pdu.body.stub);
      if ((pdu.flags & PfcFlag.LAST_FRAG) !== 0) break;
    }
    check(reader.buffered === 0, `${what}: ${reader.buffered} bytes after the last fragment`);
    return Buffer.concat(parts, total);
  }

  /** The REQUEST fragments of one call, each within max_xmit_frag (C706 12.6.2: alloc_hint is what remains). */
  private requestFragments(callId: number, opnum: number, stub: Buffer): Buffer[] {
    const room = this.maxXmitFrag - PDU_HEADER_SIZE - REQUEST_HEADER;
    const out: Buffer[] = [];
    let offset = 0;
    do {
      const chunk = stub.subarray(offset, offset + room);
      let flags = offset === 0 ? PfcFlag.FIRST_FRAG : 0;
      if (offset + chunk.length >= stub.length) flags |= PfcFlag.LAST_FRAG;
      out.push(
        encodePdu({
          ptype: PType.REQUEST,
          flags,
          callId,
          body: { allocHint: stub.length - offset, contextId: CONTEXT_ID, opnum, stub: chunk },
        }),
      );
      offset += chunk.length;
    } while (offset < stub.length);
    return out;
  }
}

/** The time left of one operation's deadline, for each pipe operation it makes. */
function deadlineOf(timeoutMs: number, signal: AbortSignal): () => RpcCallOptions {
  const end = performance.now() + timeoutMs;
  return () => ({ timeoutMs: Math.max(1, Math.ceil(end - performance.now())), signal });
}

/** The next whole fragment, reading from the pipe while the reader has none. */
async function nextFragment(
  pipe: RpcPipe,
  reader: FragmentReader,
  maxFrag: number,
  budget: () => RpcCallOptions,
): Promise<Buffer> {
  for (;;) {
    const fragment = reader.next();
    if (fragment) return fragment;
    const chunk = await pipe.read({ ...budget(), maxBytes: maxFrag });
    // The pipe passes on what the server's READ response holds, which the server sizes.
    check(chunk.length <= maxFrag, `DCE/RPC: a pipe read of ${chunk.length} bytes, ${maxFrag} asked for`);
    check(chunk.length > 0, "DCE/RPC: the pipe gave no data while a fragment was due");
    reader.push(chunk);
  }
}

function unexpected(what: string, pdu: Pdu): MalformedPacketError {
  return new MalformedPacketError(`${what}: an answer of PDU type ${pdu.ptype}`);
}
