/**
 * Connection-oriented DCE/RPC PDUs (C706 chapter 12, MS-RPCE 2.2.2) that sumac's client sends and
 * reads over a named pipe: one typed union, one encoder and one decoder. Pure functions over
 * bytes: the pipe is the client's business (client.ts).
 *
 * @example
 * const bind = encodePdu({ ptype: PType.BIND, flags: WHOLE, callId: 1, body: {
 *   maxXmitFrag: 4280, maxRecvFrag: 4280, assocGroupId: 0,
 *   contexts: [{ contextId: 0, abstractSyntax: SVCCTL, transferSyntaxes: [NDR20] }] } });
 * const answer = decodePdu(fragment); // answer.ptype === PType.BIND_ACK narrows answer.body
 */
import { ByteReader, decoding, MalformedPacketError } from "../wire/bytes.ts";
import { readBind, readBindAck, readBindNak, writeBind, writeBindAck, writeBindNak } from "./pdu-bind.ts";
import type { BindAckBody, BindBody, BindNakBody } from "./pdu-bind.ts";
import { readFault, readRequest, readResponse, writeFault, writeRequest, writeResponse } from "./pdu-call.ts";
import type { FaultBody, RequestBody, ResponseBody } from "./pdu-call.ts";
import { finishPdu, PType, readHeader, startPdu, type PduCommon } from "./pdu-header.ts";

export type { BindAckBody, BindBody, BindNakBody, ContextElement, ContextResultElement } from "./pdu-bind.ts";
export type { FaultBody, RequestBody, ResponseBody } from "./pdu-call.ts";
export { ContextResult, PROVIDER_REASONS, REJECT_REASONS } from "./pdu-bind.ts";
export { FAULT_NAMES, faultName } from "./pdu-call.ts";
export { fragmentLength, MAX_FRAG, PDU_HEADER_SIZE, PfcFlag, PType, WHOLE } from "./pdu-header.ts";

/** One PDU of the kinds sumac speaks; `ptype` says which body it carries. */
export type Pdu =
  | (PduCommon & { readonly ptype: typeof PType.BIND; readonly body: BindBody })
  | (PduCommon & { readonly ptype: typeof PType.BIND_ACK; readonly body: BindAckBody })
  | (PduCommon & { readonly ptype: typeof PType.BIND_NAK; readonly body: BindNakBody })
  | (PduCommon & { readonly ptype: typeof PType.REQUEST; readonly body: RequestBody })
  | (PduCommon & { readonly ptype: typeof PType.RESPONSE; readonly body: ResponseBody })
  | (PduCommon & { readonly ptype: typeof PType.FAULT; readonly body: FaultBody });

/** Encodes one PDU (one fragment), its frag_length computed, auth_length 0. */
export function encodePdu(pdu: Pdu): Buffer {
  const w = startPdu(pdu.ptype, pdu);
  switch (pdu.ptype) {
    case PType.BIND:
      writeBind(w, pdu.body);
      break;
    case PType.BIND_ACK:
      writeBindAck(w, pdu.body);
      break;
    case PType.BIND_NAK:
      writeBindNak(w, pdu.body);
      break;
    case PType.REQUEST:
      writeRequest(w, pdu.flags, pdu.body);
      break;
    case PType.RESPONSE:
      writeResponse(w, pdu.body);
      break;
    case PType.FAULT:
      writeFault(w, pdu.body);
      break;
  }
  return finishPdu(w);
}

/**
 * Decodes one whole fragment (exactly frag_length bytes: cut it out with `fragmentLength` first).
 * Throws only MalformedPacketError: for a truncated or inconsistent PDU, a big-endian drep, an
 * auth verifier, or a PDU type sumac does not speak.
 */
export function decodePdu(fragment: Buffer): Pdu {
  return decoding("DCE/RPC PDU", () => {
    const r = new ByteReader(fragment, "DCE/RPC PDU");
    const h = readHeader(r);
    const common = { flags: h.flags, callId: h.callId };
    switch (h.ptype) {
      case PType.BIND:
        return { ptype: PType.BIND, ...common, body: readBind(r) };
      case PType.BIND_ACK:
        return { ptype: PType.BIND_ACK, ...common, body: readBindAck(r) };
      case PType.BIND_NAK:
        return { ptype: PType.BIND_NAK, ...common, body: readBindNak(r) };
      case PType.REQUEST:
        return { ptype: PType.REQUEST, ...common, body: readRequest(r, h.flags) };
      case PType.RESPONSE:
        return { ptype: PType.RESPONSE, ...common, body: readResponse(r) };
      case PType.FAULT:
        return { ptype: PType.FAULT, ...common, body: readFault(r) };
    }
    throw new MalformedPacketError(`DCE/RPC PDU: type ${h.ptype} is not one sumac speaks`);
  });
}
