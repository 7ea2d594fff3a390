import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { connect } from "node:net";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { containerSkipReason, ensureImage, testLabels } from "../support/engine.ts";
import { holdSession, unsignedClient } from "../support/smb-test-clients.ts";
import {
  runTool,
  startWindowsStandin,
  withAuthFile,
  type ToolOutcome,
  type WindowsStandin,
} from "../support/windows-standin.ts";

/** Every client run here has a deadline. */
const commandTimeoutMs = 20_000;

const output = (r: ToolOutcome): string => `${r.stdout}${r.stderr}`;

const credentials = (s: WindowsStandin) => ({ user: s.user, password: s.password, domain: s.workgroup });

/** smbclient against ADMIN$ on the published 445 of `s`, running `commands` by `-c`. */
const smbclient = (s: WindowsStandin, options: readonly string[], commands = "ls") =>
  withAuthFile(credentials(s), (authFile) =>
    runTool(
      "smbclient",
      [`//${s.host}/ADMIN$`, "-p", String(s.port), "-A", authFile, ...options, "-c", commands],
      { timeoutMs: commandTimeoutMs },
    ),
  );

/** Resolves with the error code of a TCP connection to `host:port` (`"connected"` when it opens). */
const tcpOutcome = (host: string, port: number): Promise<string> =>
  new Promise((resolve) => {
    const socket = connect({ host, port, timeout: 5_000 });
    socket.once("connect", () => {
      socket.destroy();
      resolve("connected");
    });
    socket.once("timeout", () => {
      socket.destroy();
      resolve("timeout");
    });
    socket.once("error", (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
  });

const skip = await containerSkipReason();

describe("windows-standin - the policy chosen per container", { skip }, () => {
  // Started together: three containers in parallel take about as long as one (2 to 4 s).
  let smb2: WindowsStandin; // SMB 2.0.2 to 2.1, signing optional
  let sealed: WindowsStandin; // SMB 2.0.2 to 3.1.1, encryption required
  let netbios: WindowsStandin; // 139 only, encryption off
  let scratch: string;

  before(async () => {
    const started = await Promise.allSettled([
      startWindowsStandin({ minProtocol: "SMB2_02", maxProtocol: "SMB2_10", signing: "auto" }),
      startWindowsStandin({ minProtocol: "SMB2_02", encrypt: "required" }),
      startWindowsStandin({ ports: "139", encrypt: "off" }),
    ]);
    const failed = started.find((r) => r.status === "rejected");
    if (failed) {
      const up = started.flatMap((r) => (r.status === "fulfilled" ? [r.value] : []));
      await Promise.all(up.map((s) => s.stop()));
      throw failed.reason;
    }
    [smb2, sealed, netbios] = started.map((r) => (r as PromiseFulfilledResult<WindowsStandin>).value) as [
      WindowsStandin,
      WindowsStandin,
      WindowsStandin,
    ];
    scratch = await mkdtemp(join(tmpdir(), "sumac-standin-policy-"));
  });

  after(async () => {
    await Promise.all([smb2?.stop(), sealed?.stop(), netbios?.stop()]);
    if (scratch) await rm(scratch, { recursive: true, force: true });
  });

  it("windows-standin - the fixture reports the policy and the smbclient options it probed with", () => {
    assert.deepEqual(smb2.policy, {
      minProtocol: "SMB2_02",
      maxProtocol: "SMB2_10",
      signing: "auto",
      encrypt: "if_required",
      ports: "445+139",
    });
    assert.deepEqual(smb2.smbclientOptions, [
      "--option=client min protocol=SMB2_02",
      "--option=client max protocol=SMB2_10",
      "--option=client signing=if_required",
      "--option=client ipc signing=if_required",
    ]);
    assert.ok(sealed.smbclientOptions.includes("--option=client smb encrypt=required"));
    assert.equal(netbios.policy.ports, "139");
    for (const s of [smb2, sealed, netbios]) {
      assert.ok(Number.isInteger(s.port139) && s.port139 > 0 && s.port139 !== s.port, `port139 ${s.port139}`);
    }
  });

  it("windows-standin - maxProtocol SMB2_10: a client offering SMB2_10 gets SMB2_10", async () => {
    const held = await withAuthFile(credentials(smb2), (authFile) =>
      holdSession(
        smb2,
        [`//${smb2.host}/ADMIN$`, "-p", String(smb2.port), "-A", authFile, ...smb2.smbclientOptions],
        "ls\n",
        commandTimeoutMs,
      ),
    );
    assert.equal(held.exitCode, 0, held.out);
    const dialects = Object.values(held.status.sessions ?? {}).map((s) => s.session_dialect);
    assert.deepEqual(dialects, ["SMB2_10"]);
  });

  it("windows-standin - maxProtocol SMB2_10: a client that wants SMB3_00 or later is refused", async () => {
    const r = await smbclient(smb2, ["--option=client min protocol=SMB3_00"]);
    assert.notEqual(r.exitCode, 0);
    assert.match(output(r), /protocol negotiation failed: NT_STATUS_NOT_SUPPORTED/);
  });

  it("windows-standin - signing auto: a client that does not sign is served", async () => {
    // Under `mandatory` the same client's unsigned tree connect gets STATUS_ACCESS_DENIED
    // (windows-standin.test.ts).
    const r = await runTool(
      "/usr/bin/python3",
      ["-c", unsignedClient, smb2.host, String(smb2.port), smb2.user, smb2.workgroup, "210"],
      { timeoutMs: commandTimeoutMs, input: `${smb2.password}\n` },
    );
    assert.equal(r.exitCode, 0, `impacket client failed:\n${output(r)}`);
    const seen = JSON.parse(r.stdout) as Record<"signed" | "unsigned", Record<string, unknown>>;
    assert.deepEqual(seen.unsigned, {
      dialect: "210",
      signingActivated: false,
      treeConnect: "STATUS_SUCCESS",
    });
  });

  it("windows-standin - encrypt required: the session and ADMIN$ are encrypted", async () => {
    const held = await withAuthFile(credentials(sealed), (authFile) =>
      holdSession(
        sealed,
        [`//${sealed.host}/ADMIN$`, "-p", String(sealed.port), "-A", authFile, ...sealed.smbclientOptions],
        "ls\n",
        commandTimeoutMs,
      ),
    );
    assert.equal(held.exitCode, 0, held.out);
    const [session] = Object.values(held.status.sessions ?? {});
    assert.equal(session?.session_dialect, "SMB3_11");
    assert.equal(session?.encryption.degree, "full");
    assert.match(session?.encryption.cipher ?? "", /^AES-(128|256)-(GCM|CCM)$/);
    const tcon = Object.values(held.status.tcons ?? {}).find((t) => t.service === "ADMIN$");
    assert.equal(tcon?.encryption.degree, "full");
  });

  it("windows-standin - encrypt required: a client limited to SMB2_10 (no encryption) is refused", async () => {
    // The same container serves SMB2_02 and up: the refusal is about encryption, not the dialect.
    const r = await smbclient(sealed, [
      "--option=client max protocol=SMB2_10",
      "--option=client signing=required",
    ]);
    assert.notEqual(r.exitCode, 0);
    assert.match(output(r), /session setup failed: NT_STATUS_ACCESS_DENIED/);
  });

  it("windows-standin - ports 139: the same upload goes through 139 with 445 closed", async () => {
    assert.equal(await tcpOutcome(netbios.address, 445), "ECONNREFUSED");
    const name = `sumac-${randomBytes(6).toString("hex")}.txt`;
    const content = `written over 139 by ${process.pid} ${randomBytes(8).toString("hex")}\n`;
    const local = join(scratch, name);
    await writeFile(local, content);
    // -p 139 makes smbclient open with a NetBIOS session request calling the server's name.
    const r = await withAuthFile(credentials(netbios), (authFile) =>
      runTool(
        "smbclient",
        [
          `//${netbios.netbiosName}/ADMIN$`,
          "-I",
          netbios.address,
          "-p",
          "139",
          "-A",
          authFile,
          ...netbios.smbclientOptions,
          "-c",
          `put ${local} ${name}`,
        ],
        { timeoutMs: commandTimeoutMs },
      ),
    );
    assert.equal(r.exitCode, 0, output(r));
    const written = await netbios.exec(`cat /srv/windows/${name}`);
    assert.equal(written.exitCode, 0, written.stderr);
    assert.equal(written.stdout, content);
  });

  it("windows-standin - ports 139: the published 445 leads nowhere, the published 139 serves", async () => {
    const via445 = await smbclient(netbios, netbios.smbclientOptions);
    assert.notEqual(via445.exitCode, 0);
    assert.match(output(via445), /NT_STATUS_CONNECTION_(DISCONNECTED|RESET|REFUSED)/);
    const via139 = await withAuthFile(credentials(netbios), (authFile) =>
      runTool(
        "smbclient",
        [
          `//${netbios.host}/ADMIN$`,
          "-p",
          String(netbios.port139),
          "-A",
          authFile,
          ...netbios.smbclientOptions,
        ],
        { timeoutMs: commandTimeoutMs, input: "ls\nexit\n" },
      ),
    );
    assert.equal(via139.exitCode, 0, output(via139));
  });

  it("windows-standin - encrypt off: a client that requires encryption is refused", async () => {
    const r = await withAuthFile(credentials(netbios), (authFile) =>
      runTool(
        "smbclient",
        [
          `//${netbios.host}/ADMIN$`,
          "-p",
          String(netbios.port139),
          "-A",
          authFile,
          ...netbios.smbclientOptions.filter((o) => !o.includes("smb encrypt")),
          "--option=client smb encrypt=required",
          "-c",
          "ls",
        ],
        { timeoutMs: commandTimeoutMs },
      ),
    );
    assert.notEqual(r.exitCode, 0);
    assert.match(output(r), /server doesn't support SMB3 encryption/);
  });
});

describe("windows-standin - policy values refused", { skip }, () => {
  it("windows-standin - the fixture refuses combinations smbd cannot serve, before any container", async () => {
    await assert.rejects(
      startWindowsStandin({ minProtocol: "SMB3_02", maxProtocol: "SMB3_00" }),
      /minProtocol SMB3_02 is above maxProtocol SMB3_00/,
    );
    await assert.rejects(
      startWindowsStandin({ maxProtocol: "SMB2_10", minProtocol: "SMB2_02", encrypt: "required" }),
      /encrypt "required" needs maxProtocol SMB3_00 or later/,
    );
    await assert.rejects(startWindowsStandin({ ports: "445" as "139" }), /ports "445": one of 445\+139, 139/);
  });

  it("windows-standin - the entrypoint refuses a value it does not know, with status 2", async () => {
    const image = await ensureImage("windows-standin");
    const labels = Object.entries(testLabels("windows-standin-policy")).flatMap(([k, v]) => [
      "--label",
      `${k}=${v}`,
    ]);
    const cases: [string, RegExp][] = [
      ["SUMAC_SMB_MAX_PROTOCOL=SMB3_12", /bad SUMAC_SMB_MAX_PROTOCOL 'SMB3_12'/],
      ["SUMAC_SMB_MIN_PROTOCOL=NT1", /bad SUMAC_SMB_MIN_PROTOCOL 'NT1'/],
      ["SUMAC_SMB_SIGNING=disabled", /bad SUMAC_SMB_SIGNING 'disabled'/],
      ["SUMAC_SMB_ENCRYPT=yes", /bad SUMAC_SMB_ENCRYPT 'yes'/],
      ["SUMAC_SMB_PORTS=445", /bad SUMAC_SMB_PORTS '445'/],
    ];
    const outcomes = await Promise.all(
      cases.map(([env]) =>
        runTool("docker", ["run", "--rm", ...labels, "-e", env, image], { timeoutMs: commandTimeoutMs }),
      ),
    );
    cases.forEach(([env, said], i) => {
      const r = outcomes[i];
      assert.equal(r?.exitCode, 2, `${env}: ${r ? output(r) : "no outcome"}`);
      assert.match(r?.stderr ?? "", said);
    });
  });
});
