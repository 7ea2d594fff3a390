import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { TreeIo } from "../../../actors/smb/client/tree-io.ts";
import { list, remove, removeTree } from "../../../actors/smb/client/file-ops.ts";
import {
  CreateOption,
  decodeCreateRequest,
  encodeCreateResponse,
  FileAttribute,
} from "../../../actors/smb/codec/create.ts";
import { Command } from "../../../actors/smb/codec/header.ts";
import { FileInfoClass } from "../../../actors/smb/codec/file-info.ts";
import {
  decodeQueryDirectoryRequest,
  encodeDirectoryEntries,
  encodeQueryDirectoryResponse,
} from "../../../actors/smb/codec/query-directory.ts";
import { NtStatus } from "../../../actors/smb/codec/status.ts";
import { fakeTree } from "./fake-tree.ts";
import { answer, startFakeServer, type FakeServer } from "../../support/smb-fake-server.ts";

const servers: FakeServer[] = [];
after(async () => {
  for (const s of servers) await s.stop();
});

const closed = Buffer.concat([Buffer.from([60, 0]), Buffer.alloc(58)]);
const DIR = FileAttribute.DIRECTORY;
const JUNCTION = FileAttribute.DIRECTORY | FileAttribute.REPARSE_POINT;

/**
 * A share holding `d` with a junction `d\link` to a directory outside it (which holds `victim`),
 * and a file `d\f`. Opened without FILE_OPEN_REPARSE_POINT the junction is its target, as on
 * Windows; `names` overrides what the listing of `d` says.
 */
async function share(names?: string[]): Promise<{ io: TreeIo; server: FakeServer; opens: string[] }> {
  const opens: string[] = [];
  const handles = new Map<number, string>();
  const listed = new Set<number>();
  const server = await startFakeServer((req, s) => {
    const h = req.header;
    if (h.command === Command.CREATE) {
      const create = decodeCreateRequest(req.message);
      const reparse = (create.createOptions & CreateOption.OPEN_REPARSE_POINT) !== 0;
      opens.push(`${create.name}${reparse ? " (reparse point)" : ""}`);
      const attributes: Record<string, number> = {
        d: DIR,
        "d\\f": 0x80,
        "d\\link": reparse ? JUNCTION : DIR,
        "d\\link\\victim": 0x80,
      };
      const fileAttributes = attributes[create.name];
      if (fileAttributes === undefined) {
        s.send(answer(h, { status: NtStatus.OBJECT_NAME_NOT_FOUND, credits: 8 }));
        return;
      }
      const id = handles.size + 1;
      handles.set(id, create.name);
      const body = encodeCreateResponse({
        oplockLevel: 0,
        flags: 0,
        createAction: 1,
        creationTime: 0n,
        lastAccessTime: 0n,
        lastWriteTime: 0n,
        changeTime: 0n,
        allocationSize: 0n,
        endOfFile: 0n,
        fileAttributes,
        fileId: Buffer.alloc(16, id),
        createContexts: Buffer.alloc(0),
      });
      s.send(answer(h, { credits: 8 }, body));
    } else if (h.command === Command.CLOSE) {
      s.send(answer(h, { credits: 8 }, closed));
    } else if (h.command === Command.QUERY_DIRECTORY) {
      const id = decodeQueryDirectoryRequest(req.message).fileId.readUInt8(0);
      const path = handles.get(id);
      if (listed.has(id)) {
        s.send(answer(h, { status: NtStatus.NO_MORE_FILES, credits: 8 }));
        return;
      }
      listed.add(id);
      const entries = (path === "d" ? (names ?? ["link", "f"]) : ["victim"]).map((fileName) => ({
        fileIndex: 0,
        creationTime: 0n,
        lastAccessTime: 0n,
        lastWriteTime: 0n,
        changeTime: 0n,
        endOfFile: 0n,
        allocationSize: 0n,
        fileAttributes: fileName === "link" ? JUNCTION : 0x80,
        fileName,
        eaSize: 0,
        shortName: "",
        fileId: 0n,
      }));
      const output = encodeDirectoryEntries(entries, FileInfoClass.FileDirectoryInformation);
      s.send(answer(h, { credits: 8 }, encodeQueryDirectoryResponse({ output })));
    }
  });
  servers.push(server);
  const { io } = await fakeTree(server);
  return { io, server, opens };
}

describe("smb client remove tree on a hostile or shared server", () => {
  it("remove tree - a junction is removed as a link: nothing under it is opened", async () => {
    const { io, opens } = await share();
    await removeTree(io, "d", { timeoutMs: 2_000 });
    assert.deepEqual(
      opens.filter((o) => o.includes("victim")),
      [],
    );
    assert.ok(
      opens.includes("d\\link (reparse point)"),
      `the junction itself is deleted: ${opens.join(", ")}`,
    );
    assert.ok(!opens.includes("d\\link"), `the junction is never opened through: ${opens.join(", ")}`);
  });

  it("remove - a file is opened for deletion as a reparse point, so a symbolic link's target stays", async () => {
    const { io, opens } = await share();
    await remove(io, "d\\f", { timeoutMs: 2_000 });
    assert.deepEqual(opens, ["d\\f (reparse point)"]);
  });

  for (const bad of ["..\\..\\Windows", "a/b", "a:stream", "", "x\0y"]) {
    it(`list - a name ${JSON.stringify(bad)} in a listing is MALFORMED_PACKET, and removeTree opens nothing by it`, async () => {
      const { io, opens } = await share([bad]);
      await assert.rejects(list(io, "d", { timeoutMs: 2_000 }), { code: "MALFORMED_PACKET" });
      const before = opens.length;
      await assert.rejects(removeTree(io, "d", { timeoutMs: 2_000 }), { code: "MALFORMED_PACKET" });
      assert.deepEqual(
        opens.slice(before).filter((o) => o !== "d" && o !== "d (reparse point)"),
        [],
      );
    });
  }
});

describe("smb client remove tree on a server with huge listings", () => {
  it("remove tree - the listings held along the walk are bounded: OUTPUT_TOO_LARGE, not a heap of them", async () => {
    // Every directory lists 60,000 subdirectories: depth first, the client would hold one such
    // listing per level (64 levels: millions of entries) before deleting anything.
    const WIDE = 60_000;
    const handles = new Map<number, string>();
    const served = new Map<number, number>();
    const server = await startFakeServer((req, s) => {
      const h = req.header;
      if (h.command === Command.CREATE) {
        const name = decodeCreateRequest(req.message).name;
        const id = handles.size + 1;
        handles.set(id, name);
        const fileId = Buffer.alloc(16);
        fileId.writeUInt32LE(id);
        const body = encodeCreateResponse({
          oplockLevel: 0,
          flags: 0,
          createAction: 1,
          creationTime: 0n,
          lastAccessTime: 0n,
          lastWriteTime: 0n,
          changeTime: 0n,
          allocationSize: 0n,
          endOfFile: 0n,
          fileAttributes: DIR,
          fileId,
          createContexts: Buffer.alloc(0),
        });
        s.send(answer(h, { credits: 8 }, body));
      } else if (h.command === Command.CLOSE) {
        s.send(answer(h, { credits: 8 }, closed));
      } else if (h.command === Command.QUERY_DIRECTORY) {
        const id = decodeQueryDirectoryRequest(req.message).fileId.readUInt32LE(0);
        const from = served.get(id) ?? 0;
        if (from >= WIDE) {
          s.send(answer(h, { status: NtStatus.NO_MORE_FILES, credits: 8 }));
          return;
        }
        const n = Math.min(800, WIDE - from);
        served.set(id, from + n);
        const entries = Array.from({ length: n }, (_, i) => ({
          fileIndex: 0,
          creationTime: 0n,
          lastAccessTime: 0n,
          lastWriteTime: 0n,
          changeTime: 0n,
          endOfFile: 0n,
          allocationSize: 0n,
          fileAttributes: DIR,
          fileName: `d${from + i}`,
          eaSize: 0,
          shortName: "",
          fileId: 0n,
        }));
        const output = encodeDirectoryEntries(entries, FileInfoClass.FileDirectoryInformation);
        s.send(answer(h, { credits: 8 }, encodeQueryDirectoryResponse({ output })));
      }
    });
    servers.push(server);
    const { io, conn } = await fakeTree(server);
    await assert.rejects(removeTree(io, "top", { timeoutMs: 8_000 }), { code: "OUTPUT_TOO_LARGE" });
    conn.destroy();
  });
});
