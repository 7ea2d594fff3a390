/**
 * Requests on one tree connect (MS-SMB2 3.2.4.1.8: every request after TREE_CONNECT carries its
 * TreeId): the status check every operation shares, CREATE and CLOSE of handles, and the sizes
 * one READ, WRITE or IOCTL may move.
 */
import { Command } from "../codec/header.ts";
import {
  CreateDisposition,
  decodeCreateResponse,
  encodeCreateRequest,
  FileAttribute,
  ImpersonationLevel,
  OplockLevel,
  ShareAccess,
} from "../codec/create.ts";
import { encodeCloseRequest } from "../codec/close.ts";
import { NtStatus, SmbStatusError } from "../codec/status.ts";
import type { CallOptions, SmbConnection, SmbResponse } from "./connection.ts";
import type { Negotiated } from "./negotiate.ts";
import type { Session } from "./session.ts";

/** What a tree needs of its client. */
export interface TreeContext {
  readonly conn: SmbConnection;
  readonly host: string;
  readonly negotiated: Negotiated;
  readonly session: Session;
}

/** The largest READ or WRITE the client sends: a MiB moves well, and 16 credits are easy to get. */
const CHUNK_CAP = 1024 * 1024;
/** Without multi-credit (2.0.2, or no LARGE_MTU) one request moves at most 64 KiB (MS-SMB2 3.2.4.1.5). */
const SINGLE_CREDIT_CAP = 65536;

/** How a CREATE opens a path. */
export interface OpenSpec {
  readonly access: number;
  readonly disposition?: number;
  readonly options?: number;
  readonly attributes?: number;
  readonly shareAccess?: number;
}

/** An open handle and what CREATE said of it. */
export interface OpenFile {
  readonly fileId: Buffer;
  readonly endOfFile: bigint;
  readonly directory: boolean;
  /** A junction or symbolic link, seen as itself (opened with FILE_OPEN_REPARSE_POINT). */
  readonly reparsePoint: boolean;
  readonly createAction: number;
}

/** The machinery of one tree connect. */
export class TreeIo {
  readonly ctx: TreeContext;
  readonly share: string;
  readonly treeId: number;
  /** Requests on this tree are encrypted (the session's or the share's ENCRYPT_DATA). */
  readonly encrypted: boolean;
  /** Bytes one READ may ask for, one WRITE may carry, one IOCTL may return. */
  readonly maxRead: number;
  readonly maxWrite: number;
  readonly maxTransact: number;

  constructor(ctx: TreeContext, share: string, treeId: number, encrypted: boolean) {
    this.ctx = ctx;
    this.share = share;
    this.treeId = treeId;
    this.encrypted = encrypted;
    const n = ctx.negotiated;
    const cap = n.multiCredit ? CHUNK_CAP : SINGLE_CREDIT_CAP;
    this.maxRead = Math.max(1, Math.min(n.maxReadSize, cap));
    this.maxWrite = Math.max(1, Math.min(n.maxWriteSize, cap));
    this.maxTransact = Math.max(1, Math.min(n.maxTransactSize, cap));
  }

  /**
   * One request on this tree; rejects with SMB_STATUS unless its status is SUCCESS or one of `ok`
   * (e.g. BUFFER_OVERFLOW, NO_MORE_FILES, END_OF_FILE, which callers handle).
   */
  async call(
    command: number,
    body: Buffer,
    what: string,
    options: CallOptions,
    extra: {
      readonly payloadSize?: number;
      readonly ok?: readonly number[];
      readonly inPlace?: Buffer;
      readonly late?: (response: SmbResponse) => void;
    } = {},
  ): Promise<SmbResponse> {
    const response = await this.ctx.conn.send(
      {
        command,
        body,
        treeId: this.treeId,
        encrypt: this.encrypted,
        ...(extra.payloadSize !== undefined ? { payloadSize: extra.payloadSize } : {}),
        ...(extra.inPlace !== undefined ? { inPlace: extra.inPlace } : {}),
        ...(extra.late !== undefined ? { late: extra.late } : {}),
      },
      options,
    );
    const status = response.header.status >>> 0;
    if (status !== NtStatus.SUCCESS && !(extra.ok ?? []).includes(status)) {
      throw new SmbStatusError(`${what} on \\\\${this.ctx.host}\\${this.share}`, status);
    }
    return response;
  }

  /** CREATE (MS-SMB2 2.2.13): opens `path` (a wire path, "" for the share's root). */
  async open(path: string, spec: OpenSpec, options: CallOptions): Promise<OpenFile> {
    const body = encodeCreateRequest({
      requestedOplockLevel: OplockLevel.NONE,
      impersonationLevel: ImpersonationLevel.IMPERSONATION,
      desiredAccess: spec.access,
      fileAttributes: spec.attributes ?? 0,
      shareAccess: spec.shareAccess ?? ShareAccess.READ | ShareAccess.WRITE | ShareAccess.DELETE,
      createDisposition: spec.disposition ?? CreateDisposition.OPEN,
      createOptions: spec.options ?? 0,
      name: path,
      createContexts: Buffer.alloc(0),
    });
    // A handle opened after the caller gave up would stay open on the server (and hold the file
    // against a retry's delete or rename): it is closed as soon as its answer comes.
    const late = (answer: SmbResponse): void => {
      try {
        void this.closeQuietly(decodeCreateResponse(answer.message).fileId);
      } catch {
        // a malformed late answer: nothing was opened that sumac could name
      }
    };
    const response = await this.call(Command.CREATE, body, `CREATE ${path || "\\"}`, options, { late });
    const created = decodeCreateResponse(response.message);
    return {
      fileId: created.fileId,
      endOfFile: created.endOfFile,
      directory: (created.fileAttributes & FileAttribute.DIRECTORY) !== 0,
      reparsePoint: (created.fileAttributes & FileAttribute.REPARSE_POINT) !== 0,
      createAction: created.createAction,
    };
  }

  /** CLOSE (MS-SMB2 2.2.15). */
  async close(fileId: Buffer, options: CallOptions): Promise<void> {
    await this.call(Command.CLOSE, encodeCloseRequest({ flags: 0, fileId }), "CLOSE", options);
  }

  /**
   * CLOSE after a failure: on its own short deadline (the operation's may be spent), and silent,
   * since the failure that brought it here is the one to report.
   */
  async closeQuietly(fileId: Buffer): Promise<void> {
    if (this.ctx.conn.closedBy !== undefined) return;
    try {
      await this.close(fileId, { timeoutMs: 5_000 });
    } catch {
      // the handle dies with the session at worst
    }
  }

  /** Runs `use` on an open handle and closes it afterwards, on success or failure. */
  async withOpen<T>(
    path: string,
    spec: OpenSpec,
    options: () => CallOptions,
    use: (file: OpenFile) => Promise<T>,
  ): Promise<T> {
    const file = await this.open(path, spec, options());
    let result: T;
    try {
      result = await use(file);
    } catch (err) {
      await this.closeQuietly(file.fileId);
      throw err;
    }
    await this.close(file.fileId, options());
    return result;
  }
}

/** True for the statuses of a name that is not there (MS-ERREF 2.3.1). */
export function isMissing(err: unknown): boolean {
  if (!(err instanceof SmbStatusError)) return false;
  return (
    err.status === NtStatus.OBJECT_NAME_NOT_FOUND ||
    err.status === NtStatus.OBJECT_PATH_NOT_FOUND ||
    err.status === NtStatus.NO_SUCH_FILE
  );
}
