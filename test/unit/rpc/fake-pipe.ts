/**
 * An in-process named pipe with a scripted DCE/RPC server behind it, for the client's unit tests:
 * it decodes what the client sends and answers with fragments cut into the chunks a test asks for.
 */
import type { RpcCallOptions, RpcPipe } from "../../../actors/rpc/client.ts";
import { decodePdu, encodePdu, PType, WHOLE, type Pdu } from "../../../actors/rpc/pdu.ts";
import { NDR20 } from "../../../actors/rpc/uuid.ts";

/** What the server answers to a complete request: a list of chunks, each the bytes of one pipe read. */
export type Answer = (request: { callId: number; opnum: number; stub: Buffer; fragments: Pdu[] }) => Buffer[];

export class FakePipe implements RpcPipe {
  /** Every PDU the client sent, in order, with how it came (write or transceive). */
  readonly sent: { how: "write" | "transceive"; pdu: Pdu }[] = [];
  private queue: Buffer[] = [];
  private pending: Pdu[] = [];
  bindAnswer: (bind: Pdu) => Buffer[] = (bind) => [acceptBind(bind.callId)];
  answer: Answer = ({ callId, stub }) => [response(callId, stub, WHOLE)];
  /** When set, transceive waits for the signal and never answers. */
  silent = false;

  async transceive(input: Buffer, o: RpcCallOptions & { readonly maxOutput?: number }): Promise<Buffer> {
    if (this.silent)
      return new Promise((_, reject) =>
        o.signal?.addEventListener("abort", () => reject(o.signal?.reason as Error)),
      );
    this.take(input, "transceive");
    return this.queue.shift() ?? Buffer.alloc(0);
  }

  write(data: Buffer, _o: RpcCallOptions): Promise<void> {
    this.take(data, "write");
    return Promise.resolve();
  }

  read(o: RpcCallOptions & { readonly maxBytes: number }): Promise<Buffer> {
    const chunk = this.queue.shift() ?? Buffer.alloc(0);
    if (chunk.length > o.maxBytes)
      return Promise.reject(new Error(`a read of ${o.maxBytes} for a chunk of ${chunk.length}`));
    return Promise.resolve(chunk);
  }

  private take(data: Buffer, how: "write" | "transceive"): void {
    const pdu = decodePdu(data);
    this.sent.push({ how, pdu });
    if (pdu.ptype === PType.BIND) {
      this.queue.push(...this.bindAnswer(pdu));
      return;
    }
    if (pdu.ptype !== PType.REQUEST) throw new Error(`the client sent PDU type ${pdu.ptype}`);
    this.pending.push(pdu);
    if ((pdu.flags & 0x02) === 0) return;
    const fragments = this.pending;
    this.pending = [];
    const stub = Buffer.concat(
      fragments.map((f) => (f.ptype === PType.REQUEST ? f.body.stub : Buffer.alloc(0))),
    );
    const first = fragments[0]!;
    const opnum = first.ptype === PType.REQUEST ? first.body.opnum : -1;
    this.queue.push(...this.answer({ callId: pdu.callId, opnum, stub, fragments }));
  }
}

export function acceptBind(callId: number, maxXmit = 4280, maxRecv = 4280): Buffer {
  return encodePdu({
    ptype: PType.BIND_ACK,
    flags: WHOLE,
    callId,
    body: {
      maxXmitFrag: maxXmit,
      maxRecvFrag: maxRecv,
      assocGroupId: 0x1234,
      secondaryAddress: "\\PIPE\\svcctl",
      results: [{ result: 0, reason: 0, transferSyntax: NDR20 }],
    },
  });
}

export function response(callId: number, stub: Buffer, flags: number, allocHint = stub.length): Buffer {
  return encodePdu({
    ptype: PType.RESPONSE,
    flags,
    callId,
    body: { allocHint, contextId: 0, cancelCount: 0, stub },
  });
}

/** A response stub cut into fragments of at most `room` stub bytes. */
export function responseFragments(callId: number, stub: Buffer, room: number): Buffer[] {
  const out: Buffer[] = [];
  for (let at = 0; at < stub.length || at === 0; at += room) {
    const flags = (at === 0 ? 1 : 0) | (at + room >= stub.length ? 2 : 0);
    out.push(response(callId, stub.subarray(at, at + room), flags, stub.length - at));
    if (at + room >= stub.length) break;
  }
  return out;
}

export function fault(callId: number, status: number, flags = WHOLE | 0x20): Buffer {
  return encodePdu({
    ptype: PType.FAULT,
    flags,
    callId,
    body: { allocHint: 0, contextId: 0, cancelCount: 0, status, stub: Buffer.alloc(0) },
  });
}
