/**
 * The Windows file channel's run directory (actors/smb/files.ts createRunDir over run-dir.ts),
 * end to end through a real SmbTree on a fake share with owners and DACLs (fake-acl-share.ts):
 * the private DACL set and read back, the owner checks of an existing run root and run directory,
 * links refused, files slipped in before the DACL refused, and servers without security
 * descriptors used with a warning.
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { smbFileChannel } from "../../../actors/smb/files.ts";
import { privateDirectoryDacl } from "../../../actors/smb/codec/security-descriptor.ts";
import { NtStatus } from "../../../actors/smb/codec/status.ts";
import { startAclShare, tempLikeDacl, type AclShare, type AclShareOptions } from "./fake-acl-share.ts";

const USER = "S-1-5-21-1-2-3-1001";
const OTHER = "S-1-5-21-1-2-3-1002";
const SYSTEM = "S-1-5-18";
const ADMINS = "S-1-5-32-544";
const ROOT = "Temp\\sumac";
const DIR = "Temp\\sumac\\r1";
const LOGS = "Temp\\sumac\\logs";

const started: AclShare[] = [];
after(async () => {
  for (const s of started) await s.server.stop();
});

async function setup(options: Partial<AclShareOptions> = {}) {
  const share = await startAclShare({ account: USER, ...options });
  started.push(share);
  const warnings: string[] = [];
  const files = smbFileChannel({
    openShare: () => Promise.resolve(share.tree),
    close: () => Promise.resolve(),
    onWarning: (line) => warnings.push(line),
  });
  const create = () => files.createRunDir("r1", { subdirs: ["staging"], timeoutMs: 5_000 });
  const logs = () => files.createPrivateDir("/ADMIN$/Temp/sumac/logs/r1", { timeoutMs: 5_000 });
  return { share, warnings, create, logs, files };
}

function isPrivate(share: AclShare, path: string): boolean {
  const n = share.nodes.get(path);
  return n !== undefined && n.protected && JSON.stringify(n.dacl) === JSON.stringify(privateDirectoryDacl());
}

describe("smb run directory", () => {
  it("run dir - a new run root and run directory get the private DACL, protected; subdirectories inherit it", async () => {
    const { share, warnings, create } = await setup();
    assert.equal(await create(), "/ADMIN$/Temp/sumac/r1");
    assert.ok(isPrivate(share, ROOT) && isPrivate(share, DIR));
    assert.deepEqual(
      share.sets.map((s) => [s.path, s.additionalInformation]),
      [
        [ROOT, 0x80000004],
        [DIR, 0x80000004],
      ],
    );
    assert.deepEqual(share.nodes.get(`${DIR}\\staging`)?.dacl, privateDirectoryDacl());
    assert.deepEqual(warnings, []);
  });

  for (const owner of [SYSTEM, ADMINS, USER]) {
    it(`run dir - an existing run root owned by ${owner} with Temp's DACL gets the private DACL again, read back`, async () => {
      const { share, warnings, create } = await setup({ nodes: { [ROOT]: { owner } } });
      await create();
      assert.deepEqual(
        share.sets.map((s) => s.path),
        [ROOT, DIR],
      );
      assert.ok(isPrivate(share, ROOT), "the run root's DACL is replaced");
      assert.ok(isPrivate(share, DIR));
      const rootSet = share.log.indexOf("SET_INFO Temp\\sumac 0x80000004");
      assert.ok(
        share.log.slice(rootSet + 1).some((l) => l === "QUERY_INFO Temp\\sumac 0x5"),
        `read back: ${share.log.join("\n")}`,
      );
      assert.deepEqual(warnings, []);
    });
  }

  it("run dir - a run root another account owns is refused, and the run directory made in it removed", async () => {
    const { share, create } = await setup({ nodes: { [ROOT]: { owner: OTHER } } });
    await assert.rejects(create(), (err: Error & { code?: string }) => {
      assert.equal(err.code, "PATH_REFUSED");
      assert.match(err.message, /\/ADMIN\$\/Temp\/sumac is owned by S-1-5-21-1-2-3-1002/);
      assert.match(err.message, /\(S-1-5-21-1-2-3-1001\)/, "names the account it compared with");
      return true;
    });
    assert.equal(share.nodes.has(DIR), false);
  });

  it("run dir - for an administrator owning by default through Administrators, a user's run root is still refused", async () => {
    const { create } = await setup({ account: ADMINS, nodes: { [ROOT]: { owner: USER } } });
    await assert.rejects(create(), { code: "PATH_REFUSED" });
  });

  it("run dir - a junction in place of the run root or the run directory is refused, nothing made through it", async () => {
    const root = await setup({ nodes: { [ROOT]: { reparse: true, owner: SYSTEM } } });
    await assert.rejects(root.create(), { code: "PATH_REFUSED", message: /Temp\/sumac is a junction/ });
    assert.equal(root.share.nodes.has(DIR), false);
    assert.deepEqual(root.share.sets, []);
    const dir = await setup({
      nodes: { [ROOT]: { owner: SYSTEM }, [DIR]: { reparse: true, owner: SYSTEM } },
    });
    await assert.rejects(dir.create(), { code: "PATH_REFUSED", message: /sumac\/r1 is a junction/ });
    assert.deepEqual(
      dir.share.sets.map((s) => s.path),
      [ROOT],
      "only the run root, SYSTEM's, gets the DACL",
    );
  });

  it("run dir - a file slipped into the run directory before its DACL was set is refused", async () => {
    const { create } = await setup({
      beforeSet: (path, nodes) => {
        if (path === DIR)
          nodes.set(`${DIR}\\node.exe`, {
            directory: false,
            owner: OTHER,
            dacl: tempLikeDacl,
            protected: false,
          });
      },
    });
    await assert.rejects(create(), {
      code: "PATH_REFUSED",
      message: /sumac\/r1\/node\.exe is owned by S-1-5-21-1-2-3-1002/,
    });
  });

  it("run dir - an entry slipped into a new run root before its DACL was set is refused, naming its owner", async () => {
    const { create } = await setup({
      beforeSet: (path, nodes) => {
        if (path === ROOT)
          nodes.set(`${ROOT}\\node_modules`, {
            directory: true,
            owner: OTHER,
            dacl: tempLikeDacl,
            protected: false,
          });
      },
    });
    await assert.rejects(create(), {
      code: "PATH_REFUSED",
      message: /\/ADMIN\$\/Temp\/sumac\/node_modules is owned by S-1-5-21-1-2-3-1002/,
    });
  });

  it("run dir - an existing run root's entry another account owns is refused once the root is private again", async () => {
    const { share, create } = await setup({
      nodes: { [ROOT]: { owner: ADMINS }, [`${ROOT}\\package.json`]: { owner: OTHER, directory: false } },
    });
    await assert.rejects(create(), {
      code: "PATH_REFUSED",
      message: /sumac\/package\.json is owned by S-1-5-21-1-2-3-1002/,
    });
    assert.ok(isPrivate(share, ROOT), "the DACL came first: nothing more gets in");
    assert.equal(share.nodes.has(DIR), false, "no run directory is made");
  });

  it("run dir - the run root's own entries (other runs, logs, cache) pass; a junction among them is refused even when SYSTEM's", async () => {
    const ok = await setup({
      nodes: {
        [ROOT]: { owner: SYSTEM },
        [`${ROOT}\\logs`]: { owner: ADMINS },
        [`${ROOT}\\cache`]: { owner: SYSTEM },
        [`${ROOT}\\r0`]: { owner: USER },
      },
    });
    await ok.create();
    assert.deepEqual(ok.warnings, []);
    const link = await setup({
      nodes: { [ROOT]: { owner: SYSTEM }, [`${ROOT}\\cache`]: { owner: SYSTEM, reparse: true } },
    });
    await assert.rejects(link.create(), {
      code: "PATH_REFUSED",
      message: /\/ADMIN\$\/Temp\/sumac\/cache is a junction or symbolic link/,
    });
    assert.equal(link.share.nodes.has(DIR), false);
  });

  it("run dir - a retry reuses its own run directory, learning the account from a probe, and sets the DACL again", async () => {
    const { share, warnings, create } = await setup({
      nodes: {
        [ROOT]: { owner: USER },
        [DIR]: { owner: USER },
        [`${DIR}\\agent.js`]: { owner: USER, directory: false },
      },
    });
    await create();
    assert.ok(isPrivate(share, DIR));
    const probes = share.log.filter((l) => l.startsWith("CREATE Temp\\sumac\\.sumac-owner-"));
    assert.ok(probes.length >= 1, share.log.join("\n"));
    assert.deepEqual(
      [...share.nodes.keys()].filter((p) => p.includes(".sumac-owner-")),
      [],
      "the probe is removed",
    );
    assert.deepEqual(warnings, []);
  });

  it("run dir - an existing run directory someone else owns is refused and left untouched", async () => {
    const { share, create } = await setup({ nodes: { [ROOT]: { owner: SYSTEM }, [DIR]: { owner: OTHER } } });
    await assert.rejects(create(), {
      code: "PATH_REFUSED",
      message: /sumac\/r1 is owned by S-1-5-21-1-2-3-1002/,
    });
    assert.deepEqual(
      share.sets.map((s) => s.path),
      [ROOT],
      "the run directory is left untouched",
    );
  });

  for (const status of [NtStatus.NOT_SUPPORTED, NtStatus.INVALID_INFO_CLASS, NtStatus.INVALID_PARAMETER]) {
    it(`run dir - a server answering 0x${status.toString(16)} to security requests is used without the DACL, and says so`, async () => {
      const { share, warnings, create } = await setup({ setStatus: () => status, queryStatus: status });
      assert.equal(await create(), "/ADMIN$/Temp/sumac/r1");
      assert.ok(share.nodes.has(`${DIR}\\staging`));
      assert.ok(warnings.length >= 2, warnings.join("\n"));
      assert.ok(
        warnings.some((w) => w.includes("sets no security descriptors")),
        warnings.join("\n"),
      );
      assert.ok(
        warnings.some(
          (w) =>
            w.includes("reads no security descriptors") &&
            w.includes("the run root's entries are not checked"),
        ),
        warnings.join("\n"),
      );
    });
  }

  it("run dir - a server that sets no DACL but reads owners still has the run root's owner checked, before any DACL is tried", async () => {
    const { share, create } = await setup({
      setStatus: () => NtStatus.NOT_SUPPORTED,
      nodes: { [ROOT]: { owner: OTHER } },
    });
    await assert.rejects(create(), {
      code: "PATH_REFUSED",
      message: /Temp\/sumac is owned by S-1-5-21-1-2-3-1002/,
    });
    assert.deepEqual(
      share.log.filter((l) => l.startsWith("SET_INFO")),
      [],
    );
  });

  it("run dir - a server that answers success but keeps its own DACL is named in a warning", async () => {
    const { warnings, create } = await setup({ setIgnored: true });
    await create();
    assert.equal(warnings.length, 2, warnings.join("\n"));
    assert.match(
      warnings[1] ?? "",
      /sumac\/r1: the server answered success but kept another DACL, inheriting: \(A;0x13;0x1f01ff;S-1-5-18\)/,
    );
  });

  it("run dir - access denied to a DACL's setting or reading is an error, not a warning", async () => {
    const set = await setup({ setStatus: () => NtStatus.ACCESS_DENIED });
    await assert.rejects(set.create(), { code: "SMB_STATUS", status: NtStatus.ACCESS_DENIED });
    assert.deepEqual(set.warnings, []);
    // impacket 0.10's SMB server: SET_INFO of security "succeeds" doing nothing, QUERY_INFO is denied.
    const impacket = await setup({ setIgnored: true, queryStatus: NtStatus.ACCESS_DENIED });
    await assert.rejects(impacket.create(), { code: "SMB_STATUS", status: NtStatus.ACCESS_DENIED });
  });

  it("private dir - logs/<run> is made level by level, each private, the run root's DACL first", async () => {
    const { share, warnings, logs } = await setup();
    assert.equal(await logs(), "/ADMIN$/Temp/sumac/logs/r1");
    assert.deepEqual(
      share.sets.map((s) => s.path),
      [ROOT, LOGS, `${LOGS}\\r1`],
    );
    for (const p of [ROOT, LOGS, `${LOGS}\\r1`]) assert.ok(isPrivate(share, p), p);
    for (const p of [LOGS, `${LOGS}\\r1`]) {
      // The first open decides what the level is: as itself, never through a link (mkdirp's 0x1).
      const first = share.log.find((l) => l.startsWith(`CREATE ${p} `)) ?? "";
      const options = Number(/options=(0x[0-9a-f]+)$/.exec(first)?.[1]);
      assert.ok((options & 0x00200000) !== 0, `FILE_OPEN_REPARSE_POINT: ${first}`);
    }
    assert.deepEqual(warnings, []);
  });

  it("private dir - an older sumac's logs with Temp's DACL gets the private DACL again; another account's logs is refused", async () => {
    const old = await setup({ nodes: { [ROOT]: { owner: ADMINS }, [LOGS]: { owner: ADMINS } } });
    await old.logs();
    assert.ok(isPrivate(old.share, LOGS) && isPrivate(old.share, `${LOGS}\\r1`));
    const foreign = await setup({ nodes: { [ROOT]: { owner: ADMINS }, [LOGS]: { owner: OTHER } } });
    await assert.rejects(foreign.logs(), {
      code: "PATH_REFUSED",
      message: /sumac\/logs is owned by S-1-5-21-1-2-3-1002/,
    });
    assert.equal(foreign.share.nodes.has(`${LOGS}\\r1`), false);
  });

  it("private dir - a junction in place of logs is refused and nothing is made through it", async () => {
    const { share, logs } = await setup({
      nodes: { [ROOT]: { owner: SYSTEM }, [LOGS]: { owner: SYSTEM, reparse: true } },
    });
    await assert.rejects(logs(), { code: "PATH_REFUSED", message: /sumac\/logs is a junction/ });
    assert.equal(share.nodes.has(`${LOGS}\\r1`), false);
  });

  it("private dir - a run's log directory already holding another account's file is refused", async () => {
    const { logs } = await setup({
      nodes: {
        [ROOT]: { owner: SYSTEM },
        [LOGS]: { owner: SYSTEM },
        [`${LOGS}\\r1`]: { owner: USER },
        [`${LOGS}\\r1\\agent.log`]: { owner: OTHER, directory: false },
      },
    });
    await assert.rejects(logs(), { code: "PATH_REFUSED", message: /logs\/r1\/agent\.log is owned by/ });
  });

  it("private dir - a path outside the run root or with an unsafe level is refused before anything is made", async () => {
    const { share, files } = await setup();
    for (const p of [
      "/ADMIN$/Temp/other/logs",
      "/ADMIN$/Temp/sumac",
      "/ADMIN$/Temp/sumac/logs/.x",
      "/ADMIN$/Temp/sumac/a:b",
    ])
      await assert.rejects(files.createPrivateDir(p), { code: "PATH_REFUSED" }, p);
    assert.equal(share.nodes.has(ROOT), false);
  });
});
