/**
 * The failures of sumac's DCE/RPC client (actors/rpc): a fault from the server, a bind it refused.
 * Malformed PDUs are the wire's MalformedPacketError.
 */
import { errorClass } from "../../base/errors.ts";

/** The RPC server answered a call with a FAULT PDU (C706 12.6.4.7, MS-RPCE 2.2.2.11). */
export class RpcFaultError extends errorClass("RPC_FAULT") {
  /** The fault's status, e.g. 0x1c010002. */
  readonly status: number;
  /** Its name, e.g. "nca_s_op_rng_error", or "unknown" for a status sumac has no name for. */
  readonly statusName: string;
  /** Set when the server says the call did not run (PFC_DID_NOT_EXECUTE): it may be sent again. */
  readonly didNotExecute: boolean;

  constructor(status: number, statusName: string, didNotExecute: boolean, what: string) {
    super(
      `${what}: the RPC server answered with fault ${statusName} (0x${status.toString(16).padStart(8, "0")})`,
    );
    this.status = status;
    this.statusName = statusName;
    this.didNotExecute = didNotExecute;
  }
}

/** The RPC server refused a bind: a BIND_NAK, or a BIND_ACK whose presentation result is not acceptance. */
export class RpcBindRefusedError extends errorClass("RPC_BIND_REFUSED") {
  /** The result (C706 p_cont_def_result_t: 1 user_rejection, 2 provider_rejection) or undefined for a BIND_NAK. */
  readonly result: number | undefined;
  /** The reason's number: p_provider_reason_t for a rejection, p_reject_reason_t for a BIND_NAK. */
  readonly reason: number;
  /** The reason's name, e.g. "abstract_syntax_not_supported". */
  readonly reasonName: string;

  constructor(message: string, result: number | undefined, reason: number, reasonName: string) {
    super(message);
    this.result = result;
    this.reason = reason;
    this.reasonName = reasonName;
  }
}

/** Options a caller gave that cannot be used (an interface UUID that is not one, a fragment size out of range). */
export class RpcConfigError extends errorClass("CONFIG_INVALID") {}
