/**
 * The SMB client's security operations (actors/smb/client/security-ops.ts) and mkdir on a fake
 * share with owners and DACLs (fake-acl-share.ts): the access each CREATE asks, links opened as
 * themselves, the AdditionalInformation and descriptor sent, and what a refusal becomes.
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { CreateOption } from "../../../actors/smb/codec/create.ts";
import {
  privateDirectoryDacl,
  SdControl,
  SecurityInformation,
} from "../../../actors/smb/codec/security-descriptor.ts";
import { NtStatus } from "../../../actors/smb/codec/status.ts";
import { startAclShare, type AclShare, type AclShareOptions } from "./fake-acl-share.ts";

const ACCOUNT = "S-1-5-21-1-2-3-1001";
const call = { timeoutMs: 2_000 };
const started: AclShare[] = [];
after(async () => {
  for (const s of started) await s.server.stop();
});

async function share(options: Partial<AclShareOptions> = {}): Promise<AclShare> {
  const s = await startAclShare({ account: ACCOUNT, nodes: { "Temp\\d": {} }, ...options });
  started.push(s);
  return s;
}

const READ_CONTROL = 0x20000;
const WRITE_DAC = 0x40000;
const AS_ITSELF = CreateOption.OPEN_REPARSE_POINT;

describe("smb client security", () => {
  it("client security - getSecurity opens with READ_CONTROL, as the object itself, and asks OWNER and DACL by default", async () => {
    const s = await share();
    const sd = await s.tree.getSecurity("Temp/d", call);
    assert.equal(sd.owner, ACCOUNT);
    assert.equal(sd.dacl?.aces.length, 4);
    assert.deepEqual(s.log.slice(0, 2), [
      `CREATE Temp\\d access=0x${READ_CONTROL.toString(16)} options=0x${AS_ITSELF.toString(16)}`,
      "QUERY_INFO Temp\\d 0x5",
    ]);
    const owner = await s.tree.getSecurity("Temp/d", { ...call, owner: true });
    assert.equal(owner.owner, ACCOUNT);
    assert.equal("dacl" in owner, false);
    assert.ok(s.log.includes("QUERY_INFO Temp\\d 0x1"), s.log.join("\n"));
    await s.tree.getSecurity("Temp/d", { ...call, dacl: true });
    assert.ok(s.log.includes("QUERY_INFO Temp\\d 0x4"), s.log.join("\n"));
  });

  it("client security - setDacl opens with WRITE_DAC and sends DACL|PROTECTED_DACL with SE_DACL_PROTECTED", async () => {
    const s = await share();
    await s.tree.setDacl("Temp\\d", privateDirectoryDacl(), { ...call, protected: true });
    assert.ok(
      s.log.includes(`CREATE Temp\\d access=0x${WRITE_DAC.toString(16)} options=0x${AS_ITSELF.toString(16)}`),
      s.log.join("\n"),
    );
    assert.equal(s.sets.length, 1);
    assert.equal(s.sets[0]?.additionalInformation, 0x80000004);
    assert.deepEqual(s.sets[0]?.descriptor, {
      control: SdControl.DACL_PROTECTED,
      dacl: privateDirectoryDacl(),
    });
    const back = await s.tree.getSecurity("Temp/d", call);
    assert.equal(back.control & SdControl.DACL_PROTECTED, SdControl.DACL_PROTECTED);
    assert.deepEqual(back.dacl, privateDirectoryDacl());
  });

  it("client security - an unprotected DACL says UNPROTECTED_DACL and no SE_DACL_PROTECTED", async () => {
    const s = await share();
    await s.tree.setDacl("Temp/d", privateDirectoryDacl(), { ...call, protected: false });
    assert.equal(
      s.sets[0]?.additionalInformation,
      SecurityInformation.DACL | SecurityInformation.UNPROTECTED_DACL,
    );
    assert.equal(s.sets[0]?.descriptor.control, 0);
  });

  it("client security - a server refusing the PROTECTED bit with INVALID_PARAMETER is asked again with DACL alone", async () => {
    const s = await share({
      setStatus: (info) => (info === SecurityInformation.DACL ? 0 : NtStatus.INVALID_PARAMETER),
    });
    await s.tree.setDacl("Temp/d", privateDirectoryDacl(), { ...call, protected: true });
    assert.deepEqual(
      s.log.filter((l) => l.startsWith("SET_INFO")),
      ["SET_INFO Temp\\d 0x80000004", "SET_INFO Temp\\d 0x4"],
    );
    assert.equal(s.nodes.get("Temp\\d")?.protected, true, "the descriptor's control carried the protection");
  });

  it("client security - refusals are SMB_STATUS with the server's status", async () => {
    const denied = await share({
      setStatus: () => NtStatus.ACCESS_DENIED,
      queryStatus: NtStatus.ACCESS_DENIED,
    });
    await assert.rejects(
      denied.tree.setDacl("Temp/d", privateDirectoryDacl(), { ...call, protected: true }),
      {
        code: "SMB_STATUS",
        status: NtStatus.ACCESS_DENIED,
      },
    );
    await assert.rejects(denied.tree.getSecurity("Temp/d", call), {
      code: "SMB_STATUS",
      status: NtStatus.ACCESS_DENIED,
    });
    const unsupported = await share({ queryStatus: NtStatus.NOT_SUPPORTED });
    await assert.rejects(unsupported.tree.getSecurity("Temp/d", call), {
      code: "SMB_STATUS",
      statusName: "STATUS_NOT_SUPPORTED",
    });
    await assert.rejects(unsupported.tree.getSecurity("Temp/missing", call), {
      code: "SMB_STATUS",
      status: NtStatus.OBJECT_NAME_NOT_FOUND,
    });
  });

  it("client security - an answer without the part asked for is MALFORMED_PACKET", async () => {
    const s = await share({ omitOwner: true });
    await assert.rejects(s.tree.getSecurity("Temp/d", { ...call, owner: true }), {
      code: "MALFORMED_PACKET",
    });
  });

  it("client security - mkdir says whether it created the directory, and sees a junction as itself", async () => {
    const s = await share({ nodes: { "Temp\\link": { reparse: true } } });
    assert.deepEqual(await s.tree.mkdir("Temp/new", call), { created: true, reparsePoint: false });
    assert.deepEqual(await s.tree.mkdir("Temp/new", call), { created: false, reparsePoint: false });
    assert.deepEqual(await s.tree.mkdir("Temp/link", call), { created: false, reparsePoint: true });
    const options = CreateOption.DIRECTORY_FILE | CreateOption.OPEN_REPARSE_POINT;
    assert.ok(
      s.log.every((l) => l.endsWith(`options=0x${options.toString(16)}`)),
      s.log.join("\n"),
    );
    await assert.rejects(s.tree.mkdir("Temp/absent/x", call), { status: NtStatus.OBJECT_PATH_NOT_FOUND });
  });
});
