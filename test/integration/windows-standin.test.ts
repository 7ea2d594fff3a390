import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { containerSkipReason } from "../support/engine.ts";
import { holdSession, unsignedClient } from "../support/smb-test-clients.ts";
import {
  runTool,
  startWindowsStandin,
  strictSmbclientOptions,
  withAuthFile,
  type ToolOutcome,
  type WindowsStandin,
} from "../support/windows-standin.ts";

/** Every client run here has a deadline. */
const commandTimeoutMs = 20_000;

const skip = await containerSkipReason();

describe("windows-standin - Samba as a Windows server's file sharing", { skip }, () => {
  let standin: WindowsStandin;
  let scratch: string;

  before(async () => {
    standin = await startWindowsStandin({ netbiosName: "WINTARGET" });
    scratch = await mkdtemp(join(tmpdir(), "sumac-standin-test-"));
  });

  after(async () => {
    await standin?.stop();
    if (scratch) await rm(scratch, { recursive: true, force: true });
  });

  const credentials = (password = standin.password) => ({
    user: standin.user,
    password,
    domain: standin.workgroup,
  });

  /** smbclient against a share of the stand-in, with `commands` run by `-c`. */
  const smbclient = (share: string, authFile: string, options: readonly string[], commands: string) =>
    runTool(
      "smbclient",
      [`//${standin.host}/${share}`, "-p", String(standin.port), "-A", authFile, ...options, "-c", commands],
      { timeoutMs: commandTimeoutMs },
    );

  const output = (r: ToolOutcome): string => `${r.stdout}${r.stderr}`;

  it("windows-standin - smbclient writes a file into ADMIN$ over a signed SMB3_11 session", async () => {
    const name = `sumac-${randomBytes(6).toString("hex")}.txt`;
    const content = `written over SMB by ${process.pid} ${randomBytes(8).toString("hex")}\n`;
    const local = join(scratch, name);
    await writeFile(local, content);

    await withAuthFile(credentials(), async (authFile) => {
      // smbclient reads commands from stdin while it holds the session open, so the server can be
      // asked about the session while it lasts.
      const held = await holdSession(
        standin,
        [`//${standin.host}/ADMIN$`, "-p", String(standin.port), "-A", authFile, ...strictSmbclientOptions],
        `put ${local} ${name}\n`,
        commandTimeoutMs,
        async (_, out) => {
          const r = await standin.exec(`test -f /srv/windows/${name}`);
          if (r.exitCode !== 0)
            throw new Error(`no file ${name} in /srv/windows yet (smbclient said: ${out})`);
        },
      );
      const { status } = held;
      const sessions = Object.values(status.sessions ?? {}).filter((s) => s.username === standin.user);
      assert.equal(sessions.length, 1, `one session of ${standin.user}: ${JSON.stringify(status)}`);
      const [session] = sessions;
      assert.equal(session?.session_dialect, "SMB3_11");
      assert.equal(session?.signing.degree, "full");
      assert.match(session?.signing.cipher ?? "", /^AES-128-(GMAC|CMAC)$/);
      const tcon = Object.values(status.tcons ?? {}).find((t) => t.service === "ADMIN$");
      assert.equal(tcon?.signing.degree, "full");
      assert.equal(held.exitCode, 0, `smbclient failed:\n${held.out}`);
      assert.match(held.out, new RegExp(`putting file .* as \\\\${name}`));
    });

    const written = await standin.exec(`cat /srv/windows/${name}`);
    assert.equal(written.exitCode, 0, written.stderr);
    assert.equal(written.stdout, content);
  });

  it("windows-standin - the share list over signed IPC$ shows ADMIN$, C$ and IPC$", async () => {
    const r = await withAuthFile(credentials(), (authFile) =>
      runTool(
        "smbclient",
        [
          "-L",
          `//${standin.host}`,
          "-p",
          String(standin.port),
          "-A",
          authFile,
          "-g",
          ...strictSmbclientOptions,
        ],
        { timeoutMs: commandTimeoutMs },
      ),
    );
    assert.equal(r.exitCode, 0, output(r));
    const shares = r.stdout
      .split("\n")
      .filter((line) => /^(Disk|IPC)\|/.test(line))
      .map((line) => line.split("|").slice(0, 2).join("|"))
      .sort();
    assert.deepEqual(shares, ["Disk|ADMIN$", "Disk|C$", "IPC|IPC$"]);
  });

  it("windows-standin - the password file copied in at start is gone", async () => {
    const r = await standin.exec("ls -A /etc/sumac-standin");
    assert.deepEqual(r, { exitCode: 0, stdout: "", stderr: "" });
  });

  it("windows-standin - a wrong password is refused", async () => {
    const r = await withAuthFile(credentials(`${standin.password}x`), (authFile) =>
      smbclient("ADMIN$", authFile, strictSmbclientOptions, "ls"),
    );
    assert.notEqual(r.exitCode, 0);
    assert.match(output(r), /NT_STATUS_LOGON_FAILURE/);
  });

  it("windows-standin - a client that offers only SMB2_02 is refused", async () => {
    const r = await withAuthFile(credentials(), (authFile) =>
      smbclient(
        "ADMIN$",
        authFile,
        ["--option=client min protocol=SMB2_02", "--option=client max protocol=SMB2_02"],
        "ls",
      ),
    );
    assert.notEqual(r.exitCode, 0);
    assert.match(output(r), /protocol negotiation failed: NT_STATUS_NOT_SUPPORTED/);
  });

  it("windows-standin - a client that offers only SMB1 (NT1) is refused", async () => {
    const r = await withAuthFile(credentials(), (authFile) =>
      smbclient(
        "ADMIN$",
        authFile,
        ["--option=client min protocol=NT1", "--option=client max protocol=NT1"],
        "ls",
      ),
    );
    assert.notEqual(r.exitCode, 0);
    assert.match(output(r), /protocol negotiation failed/);
  });

  it("windows-standin - a client that stops signing after it authenticates is refused", async () => {
    const r = await runTool(
      "/usr/bin/python3",
      ["-c", unsignedClient, standin.host, String(standin.port), standin.user, standin.workgroup, "311"],
      { timeoutMs: commandTimeoutMs, input: `${standin.password}\n` },
    );
    assert.equal(r.exitCode, 0, `impacket client failed:\n${output(r)}`);
    const seen = JSON.parse(r.stdout) as Record<"signed" | "unsigned", Record<string, unknown>>;
    // The control: the same client, signing, is served; so the refusal below is about signing.
    assert.deepEqual(seen.signed, { dialect: "311", signingActivated: true, treeConnect: "STATUS_SUCCESS" });
    assert.deepEqual(seen.unsigned, {
      dialect: "311",
      signingActivated: true,
      treeConnect: "STATUS_ACCESS_DENIED",
    });
  });

  it("windows-standin - nmbd resolves its NetBIOS name to the container's address", async () => {
    const r = await runTool("nmblookup", ["-U", standin.address, standin.netbiosName], {
      timeoutMs: commandTimeoutMs,
    });
    assert.equal(r.exitCode, 0, `nmblookup -U ${standin.address} ${standin.netbiosName}: ${output(r)}`);
    const answers = r.stdout.split("\n").filter((line) => /<00>\s*$/.test(line));
    assert.deepEqual(answers, [`${standin.address} ${standin.netbiosName}<00>`]);
  });

  it("windows-standin - nmbd does not resolve an unknown name", async () => {
    // At debug level 3 nmblookup reports nmbd's negative answer: an nmbd that does not answer at
    // all also fails the query, but without this line.
    const r = await runTool("nmblookup", ["-d", "3", "-U", standin.address, "NOSUCHHOST"], {
      timeoutMs: commandTimeoutMs,
    });
    assert.notEqual(r.exitCode, 0);
    assert.match(output(r), /Negative name query response, rcode 0x03/);
    assert.match(output(r), /name_query failed to find name NOSUCHHOST/);
    assert.doesNotMatch(r.stdout, /<00>/);
  });
});
