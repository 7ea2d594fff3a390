/**
 * The Windows file channel's private run directory (actors/smb/run-dir.ts) against Samba standing
 * in for Windows (test/support/windows-standin.ts), with Samba's own smbcacls as the independent
 * reader of what the server holds.
 *
 * The stand-in maps NT ACLs onto POSIX ACLs (no `vfs objects`: Samba 4.17's built-in
 * vfs_posixacl; Debian's samba-vfs-modules with acl_xattr is not in the image). A SID without a
 * Unix id, as SYSTEM (S-1-5-18) and BUILTIN\Administrators (S-1-5-32-544) are without winbind,
 * cannot be kept: Samba answers the SET_INFO of sumac's DACL with STATUS_SUCCESS and keeps the
 * DACL it derives from the mode bits. So what this shows is the warning path on a real server:
 * the run goes on, and the warning names the DACL Samba kept, which smbcacls reads back the same.
 * The owner checks work as on Windows: Samba gives every object the owner SID of its Unix owner
 * (S-1-22-1-0 for what the admin user creates, as root), and a run root that another Unix user
 * owns is refused.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { openSmbFiles, type SmbFiles } from "../../actors/smb/connect.ts";
import { containerSkipReason } from "../support/engine.ts";
import {
  runTool,
  startWindowsStandin,
  strictSmbclientOptions,
  withAuthFile,
  type WindowsStandin,
} from "../support/windows-standin.ts";

const skip = await containerSkipReason();
/** NetBIOS names unique to this run: other tests' stand-ins share the bridge and its broadcasts. */
const tag = randomBytes(2).toString("hex").toUpperCase();

describe("smb run dir - the private run directory against Samba standing in for Windows", { skip }, () => {
  let standin: WindowsStandin;
  const opened: SmbFiles[] = [];

  before(async () => {
    standin = await startWindowsStandin({ netbiosName: `R${tag}-DACL`, readyTimeoutMs: 60_000 });
  });
  after(async () => {
    await Promise.allSettled(opened.map((f) => f.close()));
    await standin?.stop();
  });

  async function open(runRoot?: string): Promise<{ files: SmbFiles; warnings: string[] }> {
    const warnings: string[] = [];
    const files = await openSmbFiles({
      host: standin.host,
      port: standin.port,
      netbios: "never",
      credentials: { user: standin.user, domain: standin.workgroup, password: standin.password },
      timeoutMs: 30_000,
      onWarning: (line) => warnings.push(line),
      ...(runRoot !== undefined ? { runRoot } : {}),
    });
    opened.push(files);
    return { files, warnings };
  }

  /** smbcacls --numeric on a path of ADMIN$: `CONTROL:...`, `OWNER:...`, `ACL:sid:type/flags/mask` lines. */
  async function cacls(path: string): Promise<string[]> {
    const credentials = { user: standin.user, password: standin.password, domain: standin.workgroup };
    const r = await withAuthFile(credentials, (authFile) =>
      runTool(
        "smbcacls",
        [`//${standin.address}/ADMIN$`, path, "-A", authFile, "--numeric", ...strictSmbclientOptions],
        { timeoutMs: 20_000 },
      ),
    );
    assert.equal(r.exitCode, 0, `smbcacls ${path}: ${r.stdout}${r.stderr}`);
    return r.stdout.split("\n").filter((l) => l !== "");
  }

  it("smb run dir - Samba answers success to sumac's DACL and keeps its own: the run goes on, and the warning names what smbcacls reads", async () => {
    const { files, warnings } = await open();
    const dir = await files.createRunDir("r1", { subdirs: ["staging"] });
    assert.equal(dir, "/ADMIN$/Temp/sumac/r1");
    assert.equal((await standin.exec("test -d /srv/windows/Temp/sumac/r1/staging")).exitCode, 0);

    assert.equal(warnings.length, 2, warnings.join("\n"));
    assert.match(
      warnings[0] ?? "",
      /^\/ADMIN\$\/Temp\/sumac: the server answered success but kept another DACL, protected: /,
    );
    assert.match(
      warnings[1] ?? "",
      /^\/ADMIN\$\/Temp\/sumac\/r1: the server answered success but kept another DACL, protected: /,
    );
    const read = await cacls("Temp\\sumac\\r1");
    assert.ok(read.includes("OWNER:S-1-22-1-0"), read.join("\n"));
    const aces = read.filter((l) => l.startsWith("ACL:"));
    assert.ok(aces.length > 0, read.join("\n"));
    assert.equal(
      aces.some((l) => l.startsWith("ACL:S-1-5-18:") || l.startsWith("ACL:S-1-5-32-544:")),
      false,
    );
    // The warning lists the same ACEs smbcacls reads: (A;flags;mask;sid) against ACL:sid:0/flags/mask.
    for (const ace of aces) {
      const [, sid = "", rest = ""] = /^ACL:([^:]+):(.*)$/.exec(ace) ?? [];
      const [, flags = "", mask = ""] = /^0\/(0x[0-9a-f]+)\/0x0*([0-9a-f]+)$/.exec(rest) ?? [];
      assert.ok(warnings[1]?.includes(`(A;${flags};0x${mask};${sid})`), `${ace} in: ${warnings[1]}`);
    }
  });

  it("smb run dir - a retry reuses the run directory the same account made", async () => {
    const { files } = await open();
    assert.equal(await files.createRunDir("r2"), "/ADMIN$/Temp/sumac/r2");
    const again = await open();
    assert.equal(await again.files.createRunDir("r2", { subdirs: ["staging"] }), "/ADMIN$/Temp/sumac/r2");
    const left = await standin.exec("ls -A /srv/windows/Temp/sumac");
    assert.equal(left.stdout.includes(".sumac-owner-"), false, `the probe is removed: ${left.stdout}`);
  });

  it("smb run dir - a run root another account owns is refused, and nothing of the run is left in it", async () => {
    const made = await standin.exec(
      "mkdir -p /srv/windows/Temp/foreign && chown nobody /srv/windows/Temp/foreign",
    );
    assert.equal(made.exitCode, 0, made.stderr);
    const owner = (await cacls("Temp\\foreign")).find((l) => l.startsWith("OWNER:"))?.slice("OWNER:".length);
    assert.ok(owner !== undefined && owner !== "S-1-22-1-0", `nobody's SID: ${owner}`);
    const { files } = await open("/ADMIN$/Temp/foreign");
    await assert.rejects(files.createRunDir("r3"), (err: Error & { code?: string }) => {
      assert.equal(err.code, "PATH_REFUSED");
      assert.ok(err.message.startsWith(`/ADMIN$/Temp/foreign is owned by ${owner}, `), err.message);
      assert.ok(err.message.includes("(S-1-22-1-0)"), err.message);
      return true;
    });
    const left = await standin.exec("ls -A /srv/windows/Temp/foreign");
    assert.equal(left.stdout.trim(), "", `left in the foreign run root: ${left.stdout}`);
  });

  it("smb run dir - an entry of an existing run root that another account owns is refused; logs/<run> is made private level by level", async () => {
    const made = await standin.exec(
      "mkdir -p /srv/windows/Temp/planted/node_modules && chown nobody /srv/windows/Temp/planted/node_modules",
    );
    assert.equal(made.exitCode, 0, made.stderr);
    const owner = (await cacls("Temp\\planted\\node_modules"))
      .find((l) => l.startsWith("OWNER:"))
      ?.slice("OWNER:".length);
    assert.ok(owner !== undefined && owner !== "S-1-22-1-0", `nobody's SID: ${owner}`);
    const { files } = await open("/ADMIN$/Temp/planted");
    await assert.rejects(files.createRunDir("r4"), (err: Error & { code?: string }) => {
      assert.equal(err.code, "PATH_REFUSED");
      assert.ok(
        err.message.startsWith(`/ADMIN$/Temp/planted/node_modules is owned by ${owner}, `),
        err.message,
      );
      return true;
    });
    assert.notEqual((await standin.exec("test -e /srv/windows/Temp/planted/r4")).exitCode, 0);

    const ours = await open();
    const logDir = await ours.files.createPrivateDir("/ADMIN$/Temp/sumac/logs/r4");
    assert.equal(logDir, "/ADMIN$/Temp/sumac/logs/r4");
    assert.equal((await standin.exec("test -d /srv/windows/Temp/sumac/logs/r4")).exitCode, 0);
    // Samba keeps its own DACL: each level is named in a warning rather than silently left.
    for (const level of ["logs", "logs/r4"])
      assert.ok(
        ours.warnings.some((w) =>
          w.startsWith(`/ADMIN$/Temp/sumac/${level}: the server answered success but kept`),
        ),
        ours.warnings.join("\n"),
      );
  });
});
