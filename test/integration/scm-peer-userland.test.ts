import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { gzipSync } from "node:zlib";
import { containerSkipReason } from "../support/engine.ts";
import { waitUntil } from "../support/container.ts";
import {
  runScmClient,
  scmClientSkipReason,
  ServiceState,
  startScmPeer,
  type ScmClientResult,
  type ScmPeer,
  type ScmStep,
} from "../support/scm-peer.ts";

// Win32 error codes (MS-ERREF 2.2) asserted below.
const ERROR_INVALID_HANDLE = 6;
const ERROR_INVALID_PARAMETER = 87;
const ERROR_INSUFFICIENT_BUFFER = 122;
const ERROR_BAD_EXE_FORMAT = 193;
const ERROR_MORE_DATA = 234;
const ERROR_SERVICE_SPECIFIC_ERROR = 1066;
/** MS-SCMR 2.2.47 and 3.1.4.11 values. */
const SERVICE_WIN32_OWN_PROCESS = 0x10;
const SERVICE_KERNEL_DRIVER = 0x1;
const SERVICE_DEMAND_START = 3;
const SERVICE_ERROR_IGNORE = 0;
const SERVICE_ACTIVE = 1;
/** ENUM_SERVICE_STATUSW's size in the buffer, and QUERY_SERVICE_CONFIGW's fixed part. */
const ENUM_ENTRY_SIZE = 36;
const CONFIG_FIXED_SIZE = 36;

const SR = "%SystemRoot%";
const SYS32 = `${SR}\\System32`;
/** A file that starts with MZ named node.exe: the test bed's loader runs it as Linux Node. */
const NODE_EXE = Buffer.concat([Buffer.from("MZ"), Buffer.alloc(4094, 0x90)]);
/** Stands in for the agent: reports itself as the publicKey line would, with a child in its group. */
const AGENT_JS = `const fs = require("fs"), path = require("path"), cp = require("child_process");
const child = cp.spawn("sleep", ["300"], { stdio: "ignore" });
fs.appendFileSync(path.join(path.dirname(process.argv[1]), "agent-out.jsonl"), JSON.stringify({
  event: "publicKey", pid: process.pid, child: child.pid, argv: process.argv, cwd: process.cwd(),
  systemRoot: process.env.SystemRoot, path: process.env.PATH }) + "\\n");
setInterval(() => {}, 1000);
`;
/** Writes its pid to the file named by $1 and sleeps. */
const PROBE = '#!/bin/sh\necho $$ > "$1"\nexec sleep 300\n';

const b64 = (b: Buffer | string): string => Buffer.from(b).toString("base64");
const sha256 = (b: Buffer | string): string => createHash("sha256").update(b).digest("hex");

/** A gzip-compressed ustar archive of regular files (POSIX.1-1988 header, 512-byte blocks). */
function tgz(files: { name: string; data: Buffer | string }[]): Buffer {
  const blocks: Buffer[] = [];
  const octal = (n: number, width: number): string => `${n.toString(8).padStart(width - 1, "0")}\0`;
  for (const f of files) {
    const data = Buffer.from(f.data);
    const h = Buffer.alloc(512);
    h.write(f.name, 0, 100);
    h.write(octal(0o644, 8), 100);
    h.write(octal(0, 8), 108);
    h.write(octal(0, 8), 116);
    h.write(octal(data.length, 12), 124);
    h.write(octal(1_700_000_000, 12), 136);
    h.write("        ", 148);
    h.write("0", 156);
    h.write("ustar\x0000", 257);
    const sum = h.reduce((a, b) => a + b, 0);
    h.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148);
    blocks.push(h, data, Buffer.alloc((512 - (data.length % 512)) % 512));
  }
  return gzipSync(Buffer.concat([...blocks, Buffer.alloc(1024)]));
}

/** The service binary path of the Windows run design ("The service"), for one run and target. */
function agentLine(runId: string, targetId: string, nodeSha: string, bundleSha: string): string {
  const check = (file: string, sha: string): string =>
    `("${SYS32}\\certutil.exe" -hashfile ${file} SHA256 | "${SYS32}\\findstr.exe" /x /i ${sha} >nul)`;
  return (
    `${SYS32}\\cmd.exe /d /q /s /c "cd /d "${SR}\\Temp\\sumac\\${runId}" && "${SYS32}\\tar.exe" -xzf node.tgz` +
    ` && ${check("node.exe", nodeSha)} && ${check("agent.js", bundleSha)}` +
    ` && start "sumac-agent" /b node.exe agent.js sumac-run=${runId}:${targetId} --dialogue=files"`
  );
}

/** A cmd.exe service line that runs `inner` in the run directory. */
const cmdLine = (runId: string, inner: string): string =>
  `${SYS32}\\cmd.exe /d /q /s /c "cd /d "${SR}\\Temp\\sumac\\${runId}" && ${inner}"`;

const upload = (runId: string, name: string, data: Buffer | string): ScmStep => ({
  op: "upload",
  path: `Temp\\sumac\\${runId}\\${name}`,
  content_b64: b64(data),
});

async function scm(peer: ScmPeer, steps: ScmStep[]): Promise<ScmClientResult> {
  const r = await runScmClient(peer, steps, { timeoutMs: 60_000 });
  assert.equal(r.login.ok, true, `login: ${JSON.stringify(r.login)}`);
  assert.equal(r.error, undefined, `client error: ${r.error}`);
  assert.equal(r.steps.length, steps.length, `steps: ${JSON.stringify(r.steps)}`);
  return r;
}

const codes = (r: ScmClientResult): (number | undefined)[] => r.steps.map((s) => s.error_code);

/** Creates, starts and waits for STOPPED, then deletes: steps for one short-lived service. */
function runService(name: string, binaryPath: string, displayName?: string): ScmStep[] {
  return [
    { op: "open_scm", as: "scm" },
    { op: "create", scm: "scm", name, binary_path: binaryPath, as: "svc", display_name: displayName ?? name },
    { op: "start", handle: "svc" },
    { op: "wait", handle: "svc", state: ServiceState.STOPPED, timeout_ms: 30_000 },
    { op: "delete", handle: "svc" },
    { op: "close", handle: "svc" },
  ];
}

const skip = (await containerSkipReason()) ?? (await scmClientSkipReason());
describe("scm-peer userland - the Windows programs of sumac's service line", { skip }, () => {
  let peer: ScmPeer;
  let agent: { pid: number; child: number };
  const sh = async (cmd: string): Promise<string> => {
    const out = await peer.exec(cmd);
    assert.equal(out.exitCode, 0, `${cmd}: ${out.stderr}`);
    return out.stdout;
  };
  const alive = async (pids: number[]): Promise<string> =>
    (await peer.exec(`ps -o pid=,pgid=,stat=,args= -p ${pids.join(",")}`)).stdout.trim();
  const gone = (pids: number[]): Promise<void> =>
    waitUntil(
      `processes ${pids.join(",")} to end`,
      async () => {
        const left = await alive(pids);
        if (left) throw new Error(left);
      },
      5_000,
    );

  before(async () => {
    peer = await startScmPeer();
  });
  after(async () => {
    await peer?.stop();
  });

  it("scm-peer userland - the contract's line unpacks node.tgz, checks both hashes and leaves Node running after the service stopped", async () => {
    const steps = runService(
      "sumac-run1-0",
      // findstr /i: a hash in capitals matches certutil's lowercase line.
      agentLine("run1", "t1", sha256(NODE_EXE), sha256(AGENT_JS).toUpperCase()),
      "sumac agent run1 t1",
    );
    const r = await scm(peer, [
      upload("run1", "node.tgz", tgz([{ name: "node.exe", data: NODE_EXE }])),
      upload("run1", "agent.js", AGENT_JS),
      ...steps,
    ]);
    assert.deepEqual(codes(r), [0, 0, 0, 0, 0, 0, 0, 0]);
    const stopped = r.steps[5];
    assert.equal(stopped?.timed_out, undefined, "the service stopped: cmd exited after start /b");
    assert.equal(stopped?.status?.win32_exit_code, 0);
    assert.equal(Number(await sh("stat -c %s /windows/Temp/sumac/run1/node.exe")), NODE_EXE.length);
    let line = "";
    await waitUntil("the agent's publicKey line", async () => {
      line = (await sh("cat /windows/Temp/sumac/run1/agent-out.jsonl")).trim();
      if (!line) throw new Error("no line yet");
    });
    const seen = JSON.parse(line) as {
      pid: number;
      child: number;
      argv: string[];
      cwd: string;
      systemRoot: string;
      path: string;
    };
    assert.deepEqual(seen.argv.slice(1), [
      "/windows/Temp/sumac/run1/agent.js",
      "sumac-run=run1:t1",
      "--dialogue=files",
    ]);
    assert.match(seen.argv[0] ?? "", /^\/usr\/(local\/)?bin\/node(js)?$/, "the image's Linux Node");
    assert.equal(seen.cwd, "/windows/Temp/sumac/run1");
    assert.equal(seen.systemRoot, "/windows");
    assert.match(seen.path, /^\/windows\/System32:/);
    agent = { pid: seen.pid, child: seen.child };
    const rows = (await alive([agent.pid, agent.child])).split("\n").map((row) => row.trim().split(/\s+/));
    assert.equal(rows.length, 2, "Node and its child live on after the service stopped");
    assert.ok(
      rows.every(([, pgid]) => Number(pgid) === agent.pid),
      `Node leads a process group of its own (start /b), its child is in it: ${JSON.stringify(rows)}`,
    );
  });

  it("scm-peer userland - a wrong bundle hash stops the line: findstr's 1 ends the service and Node never starts", async () => {
    const r = await scm(peer, [
      upload("run2", "node.tgz", tgz([{ name: "node.exe", data: NODE_EXE }])),
      upload("run2", "agent.js", AGENT_JS),
      ...runService("sumac-run2-0", agentLine("run2", "t1", sha256(NODE_EXE), sha256("another bundle"))),
    ]);
    assert.deepEqual(codes(r), [0, 0, 0, 0, 0, 0, 0, 0]);
    const status = r.steps[5]?.status;
    assert.equal(status?.win32_exit_code, ERROR_SERVICE_SPECIFIC_ERROR);
    assert.equal(status?.service_exit_code, 1, "findstr found no line: errorlevel 1");
    assert.equal(
      await sh("ls /windows/Temp/sumac/run2 | sort | tr '\\n' ' '"),
      "agent.js node.exe node.tgz ",
    );
    const nodes = await peer.exec("ps -eo args= | grep -c '^/usr/bin/node agent.js sumac-run=run2' || true");
    assert.equal(nodes.stdout.trim(), "0");
  });

  it("scm-peer userland - tar.exe refuses an archive with a '..' member and extracts nothing", async () => {
    const evil = tgz([
      { name: "ok.txt", data: "fine" },
      { name: "../escape.txt", data: "out" },
    ]);
    const r = await scm(peer, [
      upload("run3", "evil.tgz", evil),
      ...runService(
        "sumac-run3-0",
        cmdLine("run3", `"${SYS32}\\tar.exe" -xzf evil.tgz && echo done>done.txt`),
      ),
    ]);
    assert.deepEqual(codes(r), [0, 0, 0, 0, 0, 0, 0]);
    assert.equal(r.steps[4]?.status?.service_exit_code, 1);
    assert.equal(await sh("ls /windows/Temp/sumac/run3"), "evil.tgz\n");
    assert.equal((await peer.exec("ls /windows/Temp/sumac/escape.txt")).exitCode, 2);
    assert.match(
      await sh("cat /var/log/scm-peer/sumac-run3-0.log"),
      /\.\.\/escape\.txt: path contains '\.\.': refused/,
    );
  });

  it("scm-peer userland - netsh.exe adds, shows in netsh's format and deletes rules, and concurrent adds all land", async () => {
    const netsh = "/windows/System32/netsh.exe advfirewall firewall";
    const rule = `'name=sumac run=run1 target=t1 port=5000'`;
    assert.equal(
      await sh(
        `${netsh} add rule ${rule} dir=in action=allow protocol=TCP localport=5000 remoteip=172.17.0.1 profile=any`,
      ),
      "Ok.\r\n\r\n",
    );
    const shown = await sh(`${netsh} show rule name=all dir=in`);
    const rows = [
      ["Rule Name:", "sumac run=run1 target=t1 port=5000"],
      null,
      ["Enabled:", "Yes"],
      ["Direction:", "In"],
      ["Profiles:", "Domain,Private,Public"],
      ["Grouping:", ""],
      ["LocalIP:", "Any"],
      ["RemoteIP:", "172.17.0.1/32"],
      ["Protocol:", "TCP"],
      ["LocalPort:", "5000"],
      ["RemotePort:", "Any"],
      ["Edge traversal:", "No"],
      ["Action:", "Allow"],
    ].map((row) => (row ? row[0]!.padEnd(38) + row[1]! : "-".repeat(70)));
    assert.equal(shown, `\r\n${rows.join("\r\n")}\r\nOk.\r\n\r\n`);

    await sh(
      `for i in $(seq 1 12); do ${netsh} add rule "name=busy $i" dir=in action=allow protocol=TCP localport=$((6000+i)) remoteip=10.0.0.9 & done; wait`,
    );
    const names = (await sh(`${netsh} show rule name=all`)).match(/^Rule Name: +busy \d+\r$/gm) ?? [];
    assert.equal(names.length, 12, "every concurrent add kept (firewall.json under a lock)");
    for (let i = 1; i <= 12; i++) await sh(`${netsh} delete rule 'name=busy ${i}'`);
    const none = await peer.exec(`${netsh} delete rule 'name=busy 1'`);
    assert.deepEqual([none.exitCode, none.stdout], [1, "\r\nNo rules match the specified criteria.\r\n\r\n"]);
  });

  it("scm-peer userland - the forced-stop line: taskkill /T ends Node and its child, then netsh deletes the rule", async () => {
    assert.ok(agent, "needs Node from the first test");
    const kill =
      `${SYS32}\\cmd.exe /d /q /s /c ""${SYS32}\\taskkill.exe" /F /T /PID ${agent.pid}` +
      ` & "${SYS32}\\netsh.exe" advfirewall firewall delete rule "name=sumac run=run1 target=t1 port=5000""`;
    const r = await scm(peer, runService("sumac-run1-0-kill", kill));
    assert.deepEqual(codes(r), [0, 0, 0, 0, 0, 0]);
    assert.equal(
      r.steps[3]?.status?.win32_exit_code,
      0,
      "netsh deleted the rule: the line's errorlevel is 0",
    );
    await gone([agent.pid, agent.child]);
    const log = await sh("cat /var/log/scm-peer/sumac-run1-0-kill.log");
    assert.match(
      log,
      new RegExp(`SUCCESS: The process with PID ${agent.pid} \\(child process of PID \\d+\\)`),
    );
    assert.match(log, /Deleted 1 rule\(s\)\.\r\nOk\./);
    const again = await peer.exec(`/windows/System32/taskkill.exe /F /T /PID ${agent.pid}`);
    assert.deepEqual(
      [again.exitCode, again.stdout],
      [128, `ERROR: The process "${agent.pid}" not found.\r\n`],
    );
    const rules = await peer.exec(
      "/windows/System32/netsh.exe advfirewall firewall show rule name=all dir=in",
    );
    assert.deepEqual([rules.exitCode, rules.stdout], [1, "\r\nNo rules match the specified criteria.\r\n"]);
  });

  it("scm-peer userland - stopping a service signals its own group only: what it started with start /b lives on", async () => {
    const line = cmdLine("run4", `start "probe" /b probe.sh /tmp/started.pid && probe.sh /tmp/waited.pid`);
    const r = await scm(peer, [
      upload("run4", "probe.sh", PROBE),
      { op: "open_scm", as: "scm" },
      { op: "create", scm: "scm", name: "sumac-run4-0", binary_path: line, as: "svc" },
      { op: "start", handle: "svc" },
    ]);
    assert.deepEqual(codes(r), [0, 0, 0, 0]);
    const pids: number[] = [];
    await waitUntil("both probes' pid files", async () => {
      const out = await peer.exec("cat /tmp/started.pid /tmp/waited.pid");
      if (out.exitCode !== 0) throw new Error(out.stderr);
      pids.splice(0, 2, ...out.stdout.trim().split("\n").map(Number));
    });
    const stop = await scm(peer, [
      { op: "open_scm", as: "scm" },
      { op: "open", scm: "scm", name: "sumac-run4-0", as: "svc" },
      { op: "query", handle: "svc" },
      { op: "stop", handle: "svc" },
      { op: "delete", handle: "svc" },
      { op: "close", handle: "svc" },
    ]);
    assert.deepEqual(codes(stop), [0, 0, 0, 0, 0, 0]);
    assert.equal(stop.steps[2]?.status?.state, ServiceState.RUNNING, "cmd waits for the second probe");
    assert.equal(stop.steps[3]?.status?.state, ServiceState.STOPPED);
    const [started, waited] = pids as [number, number];
    await gone([waited]);
    const [pid, pgid] = (await alive([started])).split(/\s+/).map(Number);
    assert.deepEqual([pid, pgid], [started, started], "the start /b probe lives on, leading its own group");
    await sh(`/windows/System32/taskkill.exe /F /T /PID ${started}`);
  });

  it("scm-peer userland - cmd.exe: || runs on failure, & always, an unknown program is cmd's message and errorlevel", async () => {
    const inner = `(nosuch arg || echo fallback>f1.txt) & echo always>f2.txt & nosuch2 2>nul`;
    const r = await scm(peer, [
      upload("run5", "keep.txt", "x"),
      ...runService("sumac-run5-0", cmdLine("run5", inner)),
      ...runService("sumac-run5-1", cmdLine("run5", "echo never>f3.txt & && echo no")),
    ]);
    assert.deepEqual(codes(r), [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    assert.equal(r.steps[4]?.status?.service_exit_code, 255, "9009 does not fit an exit status: 255");
    assert.equal(r.steps[10]?.status?.service_exit_code, 255, "a syntax error");
    assert.equal(
      await sh("cat /windows/Temp/sumac/run5/f1.txt /windows/Temp/sumac/run5/f2.txt"),
      "fallback\r\nalways \r\n",
    );
    assert.equal(
      (await peer.exec("ls /windows/Temp/sumac/run5/f3.txt")).exitCode,
      2,
      "nothing of a bad line runs",
    );
    const log = await sh("cat /var/log/scm-peer/sumac-run5-0.log /var/log/scm-peer/sumac-run5-1.log");
    assert.match(log, /^'nosuch' is not recognized as an internal or external command,\r\noperable program/m);
    assert.doesNotMatch(log, /nosuch2/, "2>nul hides the second");
    assert.match(log, /^&& was unexpected at this time\.\r$/m);
  });

  it("scm-peer userland - certutil.exe prints certutil's three lines, and FAILED lines with a nonzero exit for a missing file", async () => {
    const certutil = "cd /windows/Temp/sumac/run1 && /windows/System32/certutil.exe -hashfile";
    assert.equal(
      await sh(`${certutil} node.exe SHA256`),
      `SHA256 hash of node.exe:\r\n${sha256(NODE_EXE)}\r\nCertUtil: -hashfile command completed successfully.\r\n`,
    );
    const missing = await peer.exec(`${certutil} missing.exe SHA256`);
    assert.equal(missing.exitCode, 2);
    assert.match(
      missing.stdout,
      /^CertUtil: -hashfile command FAILED: 0x80070002 \(WIN32: 2 ERROR_FILE_NOT_FOUND\)\r\n/,
    );
  });

  it("scm-peer userland - a Windows program other than node.exe cannot be a service image (193)", async () => {
    const r = await scm(peer, [
      upload("run6", "other.exe", NODE_EXE),
      { op: "open_scm", as: "scm" },
      {
        op: "create",
        scm: "scm",
        name: "sumac-run6-0",
        binary_path: `${SR}\\Temp\\sumac\\run6\\other.exe`,
        as: "svc",
      },
      { op: "start", handle: "svc" },
      { op: "delete", handle: "svc" },
      { op: "close", handle: "svc" },
    ]);
    assert.deepEqual(codes(r), [0, 0, 0, ERROR_BAD_EXE_FORMAT, 0, 0]);
  });

  it("scm-peer userland - REnumServicesStatusW and RQueryServiceConfigW answer impacket's own client, sizes and resume included", async () => {
    const line = cmdLine("run7", "probe.sh /tmp/run7.pid");
    const display = "sumac agent run7 t1";
    const r = await scm(peer, [
      upload("run7", "probe.sh", PROBE),
      { op: "open_scm", as: "scm" },
      { op: "create", scm: "scm", name: "sumac-run7-0", binary_path: line, as: "run", display_name: display },
      { op: "create", scm: "scm", name: "sumac-run7-1", binary_path: line, as: "idle" },
      { op: "start", handle: "run" },
      { op: "enum", scm: "scm" },
      { op: "enum", scm: "scm", service_state: SERVICE_ACTIVE },
      { op: "enum", scm: "scm", buf_size: 0 },
      { op: "query_config", handle: "run" },
      { op: "query_config", handle: "run", buf_size: 0 },
      { op: "enum", scm: "scm", service_type: SERVICE_KERNEL_DRIVER },
      { op: "enum", scm: "scm", service_type: 0 },
      { op: "enum", scm: "run", buf_size: 1000 },
    ]);
    assert.deepEqual(codes(r), [
      0,
      0,
      0,
      0,
      0,
      0,
      0,
      ERROR_MORE_DATA,
      0,
      ERROR_INSUFFICIENT_BUFFER,
      0,
      ERROR_INVALID_PARAMETER,
      ERROR_INVALID_HANDLE,
    ]);
    const all = r.steps[5]?.services ?? [];
    assert.deepEqual(
      all.slice(-2).map((s) => [s.name, s.display_name, s.status.type, s.status.state]),
      [
        ["sumac-run7-0", display, SERVICE_WIN32_OWN_PROCESS, ServiceState.RUNNING],
        ["sumac-run7-1", "sumac-run7-1", SERVICE_WIN32_OWN_PROCESS, ServiceState.STOPPED],
      ],
    );
    assert.deepEqual(
      r.steps[6]?.services?.map((s) => s.name),
      ["sumac-run7-0"],
      "SERVICE_ACTIVE only",
    );
    const size = (s: { name: string; display_name: string }): number =>
      ENUM_ENTRY_SIZE + 2 * (s.name.length + 1) + 2 * (s.display_name.length + 1);
    const total = all.reduce((n, s) => n + size(s), 0);
    assert.deepEqual(
      [r.steps[7]?.bytes_needed, r.steps[7]?.services_returned, r.steps[7]?.bytes, r.steps[7]?.resume_index],
      [total, 0, 0, null],
    );
    assert.deepEqual(r.steps[8]?.config, {
      service_type: SERVICE_WIN32_OWN_PROCESS,
      start_type: SERVICE_DEMAND_START,
      error_control: SERVICE_ERROR_IGNORE,
      binary_path: line,
      load_order_group: "",
      tag_id: 0,
      dependencies: "",
      start_name: "LocalSystem",
      display_name: display,
    });
    const needed =
      CONFIG_FIXED_SIZE +
      2 * (line.length + 1) +
      2 +
      2 +
      2 * ("LocalSystem".length + 1) +
      2 * (display.length + 1);
    assert.equal(r.steps[9]?.bytes_needed, needed);
    assert.deepEqual(r.steps[10]?.services, [], "no driver here");

    // A buffer for the first entry only, then the rest after the resume index it answered.
    const first = all[0]!;
    const paged = await scm(peer, [
      { op: "open_scm", as: "scm" },
      { op: "enum", scm: "scm", buf_size: size(first) + 1, resume_index: 0 },
      { op: "open", scm: "scm", name: "sumac-run7-0", as: "run" },
      { op: "query_config", handle: "run", buf_size: needed - 1 },
      { op: "query_config", handle: "run", buf_size: needed },
    ]);
    assert.deepEqual(codes(paged), [0, ERROR_MORE_DATA, 0, ERROR_INSUFFICIENT_BUFFER, 0]);
    const page = paged.steps[1]!;
    assert.deepEqual(
      page.services?.map((s) => [s.name, s.display_name]),
      [[first.name, first.display_name]],
    );
    assert.deepEqual(
      [page.services_returned, page.bytes, page.bytes_needed],
      [1, size(first) + 1, total - size(first)],
    );
    assert.equal(paged.steps[4]?.config?.binary_path, line);
    const rest = await scm(peer, [
      { op: "open_scm", as: "scm" },
      { op: "enum", scm: "scm", buf_size: total, resume_index: page.resume_index ?? -1 },
      { op: "open", scm: "scm", name: "sumac-run7-0", as: "run" },
      { op: "stop", handle: "run" },
      { op: "delete", handle: "run" },
      { op: "open", scm: "scm", name: "sumac-run7-1", as: "idle" },
      { op: "delete", handle: "idle" },
    ]);
    assert.deepEqual(codes(rest), [0, 0, 0, 0, 0, 0, 0]);
    assert.deepEqual(
      rest.steps[1]?.services?.map((s) => s.name),
      all.slice(1).map((s) => s.name),
      "the rest, in order, after the resume index",
    );
    assert.equal(rest.steps[1]?.resume_index, 0, "0 once the enumeration is complete");
  });
});
