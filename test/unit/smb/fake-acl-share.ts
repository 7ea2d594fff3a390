/**
 * A share with owners and DACLs, on the fake SMB server (test/support/smb-fake-server.ts) behind a
 * real SmbTree: CREATE (with FILE_OPEN_IF, the directory flag, reparse points seen as themselves
 * only when asked, delete on close), CLOSE, QUERY_DIRECTORY, and QUERY_INFO and SET_INFO of
 * security, each checked against the access the handle was opened with, as Windows does
 * (MS-SMB2 3.3.5.20.3, 3.3.5.21.3). Tests set which statuses the server answers instead, and
 * what happens just before a DACL is set (a local user's file landing in the window).
 */
import { SmbTree } from "../../../actors/smb/client/tree.ts";
import { decodeCloseRequest, encodeCloseResponse } from "../../../actors/smb/codec/close.ts";
import {
  Access,
  CreateAction,
  CreateDisposition,
  CreateOption,
  decodeCreateRequest,
  encodeCreateResponse,
  FileAttribute,
} from "../../../actors/smb/codec/create.ts";
import { FileInfoClass, InfoType } from "../../../actors/smb/codec/file-info.ts";
import { Command } from "../../../actors/smb/codec/header.ts";
import {
  encodeDirectoryEntries,
  encodeQueryDirectoryResponse,
  decodeQueryDirectoryRequest,
} from "../../../actors/smb/codec/query-directory.ts";
import { decodeQueryInfoRequest, encodeQueryInfoResponse } from "../../../actors/smb/codec/query-info.ts";
import { decodeSetInfoRequest, encodeSetInfoResponse } from "../../../actors/smb/codec/set-info.ts";
import {
  decodeSecurityDescriptor,
  encodeSecurityDescriptor,
  SdControl,
  SecurityInformation,
  type Acl,
  type SecurityDescriptor,
} from "../../../actors/smb/codec/security-descriptor.ts";
import { NtStatus } from "../../../actors/smb/codec/status.ts";
import { answer, startFakeServer, type FakeServer } from "../../support/smb-fake-server.ts";
import { fakeTree } from "./fake-tree.ts";

/** One file or directory of the share. */
export interface Node {
  directory: boolean;
  owner: string;
  dacl: Acl;
  protected: boolean;
  /** A junction: opened without FILE_OPEN_REPARSE_POINT it is the directory it points to. */
  reparse?: boolean;
}

/** What C:\Windows\Temp hands down: Users may create files and folders, CREATOR OWNER full control. */
export const tempLikeDacl: Acl = {
  revision: 2,
  aces: [
    { type: "allowed", flags: 0x13, mask: 0x001f01ff, sid: "S-1-5-18" },
    { type: "allowed", flags: 0x13, mask: 0x001f01ff, sid: "S-1-5-32-544" },
    { type: "allowed", flags: 0x12, mask: 0x00000026, sid: "S-1-5-32-545" },
    { type: "allowed", flags: 0x1b, mask: 0x10000000, sid: "S-1-3-0" },
  ],
};

export interface AclShareOptions {
  /** The owner of what the client creates: its account, or Administrators for an administrator. */
  readonly account: string;
  /** Nodes there before the test, by share path; `Temp` (SYSTEM's) is always there. */
  readonly nodes?: Record<string, Partial<Node>>;
  /** QUERY_INFO of security answered with this status. */
  readonly queryStatus?: number;
  /** SET_INFO of security answered with this status, for the AdditionalInformation sent. */
  readonly setStatus?: (additionalInformation: number) => number;
  /** QUERY_INFO of security leaves the owner out even when asked for it. */
  readonly omitOwner?: boolean;
  /** SET_INFO of security answers success and changes nothing (Samba mapping to POSIX ACLs). */
  readonly setIgnored?: boolean;
  /** Runs just before a DACL is set on `path`. */
  readonly beforeSet?: (path: string, nodes: Map<string, Node>) => void;
}

/** A SET_INFO of security the server received. */
export interface SetRecord {
  readonly path: string;
  readonly additionalInformation: number;
  readonly descriptor: SecurityDescriptor;
}

export interface AclShare {
  readonly tree: SmbTree;
  readonly nodes: Map<string, Node>;
  /** `CREATE <path> access=0x.. options=0x..`, `QUERY_INFO <path> 0x..`, `SET_INFO <path> 0x..`. */
  readonly log: string[];
  readonly sets: SetRecord[];
  readonly server: FakeServer;
}

const closeBody = encodeCloseResponse({
  flags: 0,
  creationTime: 0n,
  lastAccessTime: 0n,
  lastWriteTime: 0n,
  changeTime: 0n,
  allocationSize: 0n,
  endOfFile: 0n,
  fileAttributes: 0,
});

function parentOf(path: string): string {
  return path.includes("\\") ? path.slice(0, path.lastIndexOf("\\")) : "";
}

/** Starts the server and returns a tree on it; the caller stops `server`. */
export async function startAclShare(options: AclShareOptions): Promise<AclShare> {
  const nodes = new Map<string, Node>();
  const node = (n: Partial<Node>): Node => ({
    directory: true,
    owner: options.account,
    dacl: tempLikeDacl,
    protected: false,
    ...n,
  });
  nodes.set("", node({ owner: "S-1-5-80-956008885-3418522649-1831038044-1853292631-2271478464" }));
  nodes.set("Temp", node({ owner: "S-1-5-18", protected: true }));
  for (const [path, n] of Object.entries(options.nodes ?? {})) nodes.set(path, node(n));
  const handles = new Map<number, { path: string; access: number; deleteOnClose: boolean }>();
  const listed = new Set<number>();
  const log: string[] = [];
  const sets: SetRecord[] = [];
  let nextId = 1;

  const server = await startFakeServer((req, s) => {
    const h = req.header;
    const reply = (body?: Buffer, status = 0): void =>
      s.send(answer(h, { status, credits: 8 }, ...(body ? [body] : [])));
    const handleOf = (fileId: Buffer) => handles.get(fileId.readUInt32LE(0));

    if (h.command === Command.CREATE) {
      const c = decodeCreateRequest(req.message);
      log.push(
        `CREATE ${c.name} access=0x${c.desiredAccess.toString(16)} options=0x${c.createOptions.toString(16)}`,
      );
      const asItself = (c.createOptions & CreateOption.OPEN_REPARSE_POINT) !== 0;
      const wantsDir = (c.createOptions & CreateOption.DIRECTORY_FILE) !== 0;
      const parent = nodes.get(parentOf(c.name));
      if (parent === undefined || !parent.directory) return reply(undefined, NtStatus.OBJECT_PATH_NOT_FOUND);
      let n = nodes.get(c.name);
      let createAction: number = CreateAction.OPENED;
      if (n === undefined) {
        if (c.createDisposition === CreateDisposition.OPEN)
          return reply(undefined, NtStatus.OBJECT_NAME_NOT_FOUND);
        n = node({ directory: wantsDir, owner: options.account, dacl: parent.dacl });
        nodes.set(c.name, n);
        createAction = CreateAction.CREATED;
      } else if (c.createDisposition === CreateDisposition.CREATE) {
        return reply(undefined, NtStatus.OBJECT_NAME_COLLISION);
      }
      if (wantsDir && !n.directory) return reply(undefined, NtStatus.NOT_A_DIRECTORY);
      const id = nextId++;
      handles.set(id, {
        path: c.name,
        access: c.desiredAccess,
        deleteOnClose: (c.createOptions & CreateOption.DELETE_ON_CLOSE) !== 0,
      });
      const fileId = Buffer.alloc(16);
      fileId.writeUInt32LE(id, 0);
      const attributes =
        (n.directory ? FileAttribute.DIRECTORY : FileAttribute.NORMAL) |
        (n.reparse === true && asItself ? FileAttribute.REPARSE_POINT : 0);
      return reply(
        encodeCreateResponse({
          oplockLevel: 0,
          flags: 0,
          createAction,
          creationTime: 0n,
          lastAccessTime: 0n,
          lastWriteTime: 0n,
          changeTime: 0n,
          allocationSize: 0n,
          endOfFile: 0n,
          fileAttributes: attributes,
          fileId,
          createContexts: Buffer.alloc(0),
        }),
      );
    }
    if (h.command === Command.CLOSE) {
      const id = decodeCloseRequest(req.message).fileId.readUInt32LE(0);
      const open = handles.get(id);
      handles.delete(id);
      if (open?.deleteOnClose === true) nodes.delete(open.path);
      return reply(closeBody);
    }
    if (h.command === Command.QUERY_DIRECTORY) {
      const q = decodeQueryDirectoryRequest(req.message);
      const id = q.fileId.readUInt32LE(0);
      const open = handles.get(id);
      if (open === undefined) return reply(undefined, NtStatus.INVALID_HANDLE);
      if (listed.has(id)) return reply(undefined, NtStatus.NO_MORE_FILES);
      listed.add(id);
      const children = [...nodes.entries()].filter(([p]) => p !== "" && parentOf(p) === open.path);
      if (children.length === 0) return reply(undefined, NtStatus.NO_MORE_FILES);
      const entries = children.map(([p, n]) => ({
        fileIndex: 0,
        creationTime: 0n,
        lastAccessTime: 0n,
        lastWriteTime: 0n,
        changeTime: 0n,
        endOfFile: 0n,
        allocationSize: 0n,
        // A listing shows a link's own attributes (MS-FSCC 2.4.10).
        fileAttributes:
          (n.directory ? FileAttribute.DIRECTORY : FileAttribute.NORMAL) |
          (n.reparse === true ? FileAttribute.REPARSE_POINT : 0),
        fileName: p.slice(open.path === "" ? 0 : open.path.length + 1),
        eaSize: 0,
        shortName: "",
        fileId: 0n,
      }));
      const output = encodeDirectoryEntries(entries, FileInfoClass.FileDirectoryInformation);
      return reply(encodeQueryDirectoryResponse({ output }));
    }
    if (h.command === Command.QUERY_INFO) {
      const q = decodeQueryInfoRequest(req.message);
      const open = handleOf(q.fileId);
      const n = open && nodes.get(open.path);
      if (open === undefined || n === undefined) return reply(undefined, NtStatus.INVALID_HANDLE);
      log.push(`QUERY_INFO ${open.path} 0x${q.additionalInformation.toString(16)}`);
      if (q.infoType !== InfoType.SECURITY) return reply(undefined, NtStatus.INVALID_INFO_CLASS);
      if (options.queryStatus !== undefined) return reply(undefined, options.queryStatus);
      if ((open.access & Access.READ_CONTROL) === 0) return reply(undefined, NtStatus.ACCESS_DENIED);
      const wants = (bit: number): boolean => (q.additionalInformation & bit) !== 0;
      const sd: SecurityDescriptor = {
        control: wants(SecurityInformation.DACL) && n.protected ? SdControl.DACL_PROTECTED : 0,
        ...(wants(SecurityInformation.OWNER) && options.omitOwner !== true ? { owner: n.owner } : {}),
        ...(wants(SecurityInformation.DACL) ? { dacl: n.dacl } : {}),
      };
      return reply(encodeQueryInfoResponse({ output: encodeSecurityDescriptor(sd) }));
    }
    if (h.command === Command.SET_INFO) {
      const r = decodeSetInfoRequest(req.message);
      const open = handleOf(r.fileId);
      const n = open && nodes.get(open.path);
      if (open === undefined || n === undefined) return reply(undefined, NtStatus.INVALID_HANDLE);
      log.push(`SET_INFO ${open.path} 0x${r.additionalInformation.toString(16)}`);
      if (r.infoType !== InfoType.SECURITY) return reply(undefined, NtStatus.NOT_SUPPORTED);
      const status = options.setStatus?.(r.additionalInformation) ?? 0;
      if (status !== 0) return reply(undefined, status);
      if ((open.access & Access.WRITE_DAC) === 0) return reply(undefined, NtStatus.ACCESS_DENIED);
      const descriptor = decodeSecurityDescriptor(r.buffer);
      sets.push({ path: open.path, additionalInformation: r.additionalInformation, descriptor });
      options.beforeSet?.(open.path, nodes);
      if (options.setIgnored !== true && descriptor.dacl) {
        n.dacl = descriptor.dacl;
        n.protected = (descriptor.control & SdControl.DACL_PROTECTED) !== 0;
      }
      return reply(encodeSetInfoResponse());
    }
    return reply(undefined, NtStatus.NOT_SUPPORTED);
  });
  const { io } = await fakeTree(server);
  return { tree: new SmbTree(io), nodes, log, sets, server };
}
