/**
 * FSCTL_VALIDATE_NEGOTIATE_INFO (MS-SMB2 3.2.5.14.12 and 2.2.31.4): on 3.0 and 3.0.2, whose
 * NEGOTIATE is not covered by a pre-authentication hash, the client repeats over the signed
 * session what it offered and checks that the server saw the same and answers what it answered.
 * A man in the middle who downgraded the NEGOTIATE cannot sign the answer.
 */
import { Command } from "../codec/header.ts";
import {
  CtlCode,
  decodeIoctlResponse,
  decodeValidateNegotiateInfoResponse,
  encodeIoctlRequest,
  encodeValidateNegotiateInfoRequest,
  IoctlFlag,
  NO_FILE_ID,
} from "../codec/ioctl.ts";
import { NtStatus, statusName } from "../codec/status.ts";
import { SmbIntegrityError } from "../crypto/errors.ts";
import type { Budget } from "./budget.ts";
import type { Negotiated } from "./negotiate.ts";
import { connectTree } from "./tree.ts";
import type { TreeContext } from "./tree-io.ts";

/** The output of VALIDATE_NEGOTIATE_INFO: Capabilities, Guid, SecurityMode, Dialect (24 bytes). */
const OUTPUT_SIZE = 24;

/** Validates the negotiation on IPC$; rejects with SMB_INTEGRITY_FAILED when it does not hold. */
export async function validateNegotiate(
  ctx: TreeContext,
  negotiated: Negotiated,
  budget: Budget,
): Promise<void> {
  const ipc = await connectTree(ctx, "IPC$", budget.next());
  const sent = negotiated.request;
  const body = encodeIoctlRequest({
    ctlCode: CtlCode.FSCTL_VALIDATE_NEGOTIATE_INFO,
    fileId: NO_FILE_ID,
    input: encodeValidateNegotiateInfoRequest({
      capabilities: sent.capabilities,
      guid: sent.clientGuid,
      securityMode: sent.securityMode,
      dialects: sent.dialects,
    }),
    maxInputResponse: 0,
    output: Buffer.alloc(0),
    maxOutputResponse: OUTPUT_SIZE,
    flags: IoctlFlag.IS_FSCTL,
  });
  const response = await ctx.conn.send(
    // MS-SMB2 3.2.4.1.1: signed even when the session does not sign everything; else a man in the
    // middle who cleared SIGNING_REQUIRED in the NEGOTIATE answer could answer this one too.
    { command: Command.IOCTL, body, treeId: ipc.treeId, encrypt: ipc.encrypted, sign: true },
    budget.next(),
  );
  const refuse = (why: string): never => {
    throw new SmbIntegrityError(`${ctx.host}: the validation of the negotiation failed: ${why}`);
  };
  const status = response.header.status >>> 0;
  if (status !== NtStatus.SUCCESS) refuse(statusName(status));
  const got = decodeValidateNegotiateInfoResponse(decodeIoctlResponse(response.message).output);
  if (got.dialect !== negotiated.dialect) refuse(`dialect 0x${got.dialect.toString(16)}`);
  if (got.securityMode !== negotiated.serverSecurityMode) refuse(`security mode ${got.securityMode}`);
  if (got.capabilities !== negotiated.serverCapabilities)
    refuse(`capabilities 0x${got.capabilities.toString(16)}`);
  if (!got.guid.equals(negotiated.serverGuid)) refuse("another server GUID");
  await ipc.disconnect(budget.next());
}
