/**
 * Reading and setting a file's or directory's security (MS-SMB2 2.2.37 and 2.2.39 with InfoType
 * SMB2_0_INFO_SECURITY; MS-SMB2 3.3.5.20.3, 3.3.5.21.3): a CREATE with READ_CONTROL or WRITE_DAC,
 * one QUERY_INFO or SET_INFO whose buffer is a self-relative security descriptor (MS-DTYP 2.4.6),
 * and a CLOSE. The object is always opened as itself (FILE_OPEN_REPARSE_POINT): the descriptor of
 * a junction or symbolic link is the link's, never that of what it points to.
 */
import { Command } from "../codec/header.ts";
import { Access, CreateOption } from "../codec/create.ts";
import { InfoType } from "../codec/file-info.ts";
import { decodeQueryInfoResponse, encodeQueryInfoRequest } from "../codec/query-info.ts";
import { encodeSetInfoRequest } from "../codec/set-info.ts";
import {
  decodeSecurityDescriptor,
  encodeSecurityDescriptor,
  SdControl,
  SECURITY_DESCRIPTOR_MAX,
  SecurityInformation,
  type Acl,
  type SecurityDescriptor,
} from "../codec/security-descriptor.ts";
import { NtStatus, SmbStatusError } from "../codec/status.ts";
import { MalformedPacketError } from "../../wire/bytes.ts";
import { Budget } from "./budget.ts";
import type { CallOptions } from "./connection.ts";
import type { TreeIo } from "./tree-io.ts";

/** Which parts of the descriptor to read; both when neither is asked for. */
export interface SecurityParts {
  readonly owner?: boolean;
  readonly dacl?: boolean;
}

/** InfoType SECURITY has no information classes (MS-SMB2 2.2.37: FileInfoClass MUST be 0). */
const NO_CLASS = 0;
/** Any kind of object: the caller may ask about a file or a directory. */
const ANY_KIND = 0;

/**
 * The owner and/or DACL of `path` (a wire path). Rejects with SMB_STATUS as the server answers:
 * a server without security information says STATUS_NOT_SUPPORTED, STATUS_INVALID_INFO_CLASS or
 * STATUS_INVALID_PARAMETER; MALFORMED_PACKET when its descriptor does not decode or lacks a part
 * asked for.
 */
export async function getSecurity(
  io: TreeIo,
  path: string,
  options: CallOptions & SecurityParts,
): Promise<SecurityDescriptor> {
  const both = options.owner !== true && options.dacl !== true;
  const wanted =
    (both || options.owner === true ? SecurityInformation.OWNER : 0) |
    (both || options.dacl === true ? SecurityInformation.DACL : 0);
  const budget = new Budget(options);
  const spec = { access: Access.READ_CONTROL, options: ANY_KIND | CreateOption.OPEN_REPARSE_POINT };
  return io.withOpen(
    path,
    spec,
    () => budget.next(),
    async (f) => {
      const outputBufferLength = Math.min(io.maxTransact, SECURITY_DESCRIPTOR_MAX);
      const body = encodeQueryInfoRequest({
        infoType: InfoType.SECURITY,
        fileInfoClass: NO_CLASS,
        outputBufferLength,
        input: Buffer.alloc(0),
        additionalInformation: wanted,
        flags: 0,
        fileId: f.fileId,
      });
      const response = await io.call(
        Command.QUERY_INFO,
        body,
        `QUERY_INFO security ${path || "\\"}`,
        budget.next(),
        { payloadSize: outputBufferLength },
      );
      const sd = decodeSecurityDescriptor(decodeQueryInfoResponse(response.message).output);
      if ((wanted & SecurityInformation.OWNER) !== 0 && sd.owner === undefined)
        throw new MalformedPacketError(`QUERY_INFO security ${path || "\\"}: no owner in the answer`);
      if ((wanted & SecurityInformation.DACL) !== 0 && sd.dacl === undefined)
        throw new MalformedPacketError(`QUERY_INFO security ${path || "\\"}: no DACL in the answer`);
      return sd;
    },
  );
}

/**
 * Replaces the DACL of `path` (a wire path). With `protected`, the DACL inherits nothing from the
 * parent (SE_DACL_PROTECTED, MS-DTYP 2.4.6, and PROTECTED_DACL_SECURITY_INFORMATION, 2.4.7);
 * without, it takes the parent's inheritable ACEs again. A server that refuses the PROTECTED or
 * UNPROTECTED bit of AdditionalInformation with STATUS_INVALID_PARAMETER gets the request once
 * more with DACL alone: the descriptor's control says the same. What the server kept is for the
 * caller to read back ({@link getSecurity}): a server may answer success and store less.
 */
export async function setDacl(
  io: TreeIo,
  path: string,
  dacl: Acl,
  options: CallOptions & { readonly protected: boolean },
): Promise<void> {
  const budget = new Budget(options);
  const buffer = encodeSecurityDescriptor({
    control: options.protected ? SdControl.DACL_PROTECTED : 0,
    dacl,
  });
  const inheritance = options.protected
    ? SecurityInformation.PROTECTED_DACL
    : SecurityInformation.UNPROTECTED_DACL;
  const spec = { access: Access.WRITE_DAC, options: ANY_KIND | CreateOption.OPEN_REPARSE_POINT };
  const what = `SET_INFO security ${path || "\\"}`;
  await io.withOpen(
    path,
    spec,
    () => budget.next(),
    async (f) => {
      const send = (additionalInformation: number) =>
        io.call(
          Command.SET_INFO,
          encodeSetInfoRequest({
            infoType: InfoType.SECURITY,
            fileInfoClass: NO_CLASS,
            buffer,
            additionalInformation,
            fileId: f.fileId,
          }),
          what,
          budget.next(),
        );
      try {
        await send(SecurityInformation.DACL | inheritance);
      } catch (err) {
        if (!(err instanceof SmbStatusError) || err.status !== NtStatus.INVALID_PARAMETER) throw err;
        await send(SecurityInformation.DACL);
      }
    },
  );
}
