/**
 * The text a Windows target is told to run (actors/target/windows/commands.ts): the run's paths as
 * Windows sees them, the services' names, and the two command lines the SCM starts, checked to the
 * character against docs/windows.md, and every unsafe character refused where a job's text goes in.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  agentServiceCommand,
  agentServiceName,
  killServiceCommand,
  killServiceName,
  runOfServiceName,
  windowsPathOf,
  type AgentCommandParts,
} from "../../../actors/target/windows/commands.ts";
import { AgentStartError } from "../../../actors/target/errors.ts";

const RUN = "20250612-153012-042-3fa9c1";
const RUN_DIR = String.raw`%SystemRoot%\Temp\sumac\20250612-153012-042-3fa9c1`;
const MARKER = `sumac-run=${RUN}:win-1`;
const NODE_SHA = "AB".repeat(32);
const BUNDLE_SHA = "0123456789ABCDEF".repeat(4);
const PARTS: AgentCommandParts = {
  runDir: RUN_DIR,
  nodeSha256: NODE_SHA,
  bundleSha256: BUNDLE_SHA,
  marker: MARKER,
};

/** The line of docs/windows.md with `dir` and `marker` put in, as commands.ts must write it. */
function expectedLine(dir: string, marker: string): string {
  const s = String.raw`%SystemRoot%\System32`;
  const node = "ab".repeat(32);
  const bundle = "0123456789abcdef".repeat(4);
  return (
    `${s}\\cmd.exe /d /q /s /c "cd /d "${dir}" && "${s}\\tar.exe" -xzf node.tgz` +
    ` && ("${s}\\certutil.exe" -hashfile node.exe SHA256 | "${s}\\findstr.exe" /x /i ${node} >nul)` +
    ` && ("${s}\\certutil.exe" -hashfile agent.cjs SHA256 | "${s}\\findstr.exe" /x /i ${bundle} >nul)` +
    ` && start "sumac-agent" /b node.exe agent.cjs ${marker} --dialogue=files"`
  );
}

/** Every character a job must never get into a command line, as text and as a name for messages. */
const UNSAFE: readonly string[] = [
  '"',
  "&",
  "|",
  "<",
  ">",
  "^",
  "!",
  "(",
  ")",
  "\n",
  "\r",
  "\t",
  "\0",
  "\x1b",
  "\x7f",
  "\u0085",
];

function refused(fn: () => unknown, what: string): void {
  assert.throws(fn, AgentStartError, what);
}

describe("windows commands", () => {
  it("windows paths - ADMIN$ is %SystemRoot%, in any case, with backslashes and no empty segment", () => {
    assert.equal(windowsPathOf("/ADMIN$/Temp/sumac/x"), String.raw`%SystemRoot%\Temp\sumac\x`);
    assert.equal(windowsPathOf("/admin$/Temp//sumac/x/"), String.raw`%SystemRoot%\Temp\sumac\x`);
    assert.equal(windowsPathOf("/ADMIN$"), "%SystemRoot%");
    assert.equal(windowsPathOf(`/ADMIN$/Temp/sumac/${RUN}`), RUN_DIR);
  });

  it("windows paths - a drive's administrative share is that drive, its letter upper-cased", () => {
    assert.equal(windowsPathOf("/C$/ProgramData/sumac/x"), String.raw`C:\ProgramData\sumac\x`);
    assert.equal(windowsPathOf("/d$/sumac"), String.raw`D:\sumac`);
    assert.equal(windowsPathOf("/C$"), "C:");
  });

  it("windows paths - any other share has no path a program starts from: refused", () => {
    for (const path of ["/IPC$/x", "/data/sumac", "/CC$/x", "/C/x", "/1$/x", "ADMIN$/Temp/sumac", "/"])
      refused(() => windowsPathOf(path), path);
  });

  it("windows paths - a path with a character unsafe in a command line is refused", () => {
    for (const bad of [...UNSAFE, "%", "%TEMP%"])
      refused(() => windowsPathOf(`/ADMIN$/Temp/su${bad}mac/x`), JSON.stringify(bad));
  });

  it("windows paths - a run root with spaces is kept whole and quoted in the agent's line", () => {
    const dir = windowsPathOf(`/C$/Program Data/sumac runs/${RUN}`);
    assert.equal(dir, String.raw`C:\Program Data\sumac runs\20250612-153012-042-3fa9c1`);
    const line = agentServiceCommand({ ...PARTS, runDir: dir });
    assert.equal(line, expectedLine(dir, MARKER));
    assert.ok(line.includes(`cd /d "C:\\Program Data\\sumac runs\\${RUN}" && `));
  });

  it("agent command - the exact line of docs/windows.md for fixed inputs, hashes lower-cased", () => {
    const line = agentServiceCommand(PARTS);
    assert.equal(line, expectedLine(RUN_DIR, MARKER));
    assert.ok(!line.includes(NODE_SHA) && !line.includes(BUNDLE_SHA), "hashes are lower-cased");
    assert.ok(line.endsWith(` ${MARKER} --dialogue=files"`));
  });

  it("agent command - every program but node.exe is named by its full System32 path", () => {
    const line = agentServiceCommand(PARTS);
    const exes = [...line.matchAll(/([^\s"\\]+)\.exe/g)].map((m) => ({
      name: m[1],
      system32: line.slice(0, m.index).endsWith("%SystemRoot%\\System32\\"),
      before: line.slice(Math.max(0, (m.index ?? 0) - 10), m.index),
    }));
    assert.deepEqual(
      exes.filter((e) => e.system32).map((e) => e.name),
      ["cmd", "tar", "certutil", "findstr", "certutil", "findstr"],
    );
    // node.exe is the one unpacked into the run directory (cd'd into): hashed, then started.
    assert.deepEqual(
      exes.filter((e) => !e.system32).map((e) => [e.name, e.before]),
      [
        ["node", "-hashfile "],
        ["node", 'agent" /b '],
      ],
    );
  });

  it("agent command - a hash that is not 64 hex digits is refused", () => {
    for (const bad of ["", "ab".repeat(31), "ab".repeat(33), `${"ab".repeat(31)}zz`, `${"ab".repeat(32)}\n`])
      for (const key of ["nodeSha256", "bundleSha256"] as const)
        refused(() => agentServiceCommand({ ...PARTS, [key]: bad }), `${key} ${JSON.stringify(bad)}`);
  });

  it("agent command - every unsafe character in the run directory or the marker is refused", () => {
    const places = [
      (bad: string) => ({ ...PARTS, runDir: `${RUN_DIR}${bad}x` }),
      (bad: string) => ({ ...PARTS, marker: `sumac-run=${RUN}:w${bad}in` }),
      (bad: string) => ({ ...PARTS, marker: `${bad}sumac-run=${RUN}:win` }),
      (bad: string) => ({ ...PARTS, marker: `sumac-run=${RUN}:win${bad}` }),
    ];
    for (const place of places)
      for (const bad of [...UNSAFE, "%"]) {
        const parts = place(bad);
        refused(() => agentServiceCommand(parts), JSON.stringify(parts));
      }
  });

  it("agent command - % is allowed only as %SystemRoot% at the start of a path", () => {
    assert.doesNotThrow(() => agentServiceCommand({ ...PARTS, runDir: String.raw`%SystemRoot%\Temp\x` }));
    for (const dir of [
      String.raw`C:\%SystemRoot%\x`,
      String.raw`%SystemRoot%\Temp\%USERNAME%`,
      String.raw`%TEMP%\sumac`,
      String.raw`%SystemRoot%%SystemRoot%`,
      String.raw`%systemroot%\Temp`,
    ])
      refused(() => agentServiceCommand({ ...PARTS, runDir: dir }), dir);
  });

  it("agent command - a leading or trailing space in the run directory or the marker is refused", () => {
    for (const runDir of [` ${RUN_DIR}`, `${RUN_DIR} `])
      refused(() => agentServiceCommand({ ...PARTS, runDir }), JSON.stringify(runDir));
    for (const marker of [` ${MARKER}`, `${MARKER} `, " "])
      refused(() => agentServiceCommand({ ...PARTS, marker }), JSON.stringify(marker));
    refused(() => agentServiceCommand({ ...PARTS, marker: "" }), "an empty marker");
  });

  it("kill command - without a process id (the agent is gone) only the firewall rule is removed", () => {
    assert.equal(
      killServiceCommand(undefined, "sumac run=20250612-153012-042-3fa9c1 target=win-1 port=62286"),
      String.raw`%SystemRoot%\System32\cmd.exe /d /q /s /c ""%SystemRoot%\System32\netsh.exe" advfirewall firewall delete rule "name=sumac run=20250612-153012-042-3fa9c1 target=win-1 port=62286""`,
    );
  });

  it("kill command - the exact line: taskkill of a node.exe by that id, then netsh whatever taskkill did", () => {
    const rule = `sumac run=${RUN} target=win-1 port=62286`;
    assert.equal(
      killServiceCommand(4242, rule),
      String.raw`%SystemRoot%\System32\cmd.exe /d /q /s /c ""%SystemRoot%\System32\taskkill.exe" /F /T /FI "IMAGENAME eq node.exe" /PID 4242 & "%SystemRoot%\System32\netsh.exe" advfirewall firewall delete rule "name=sumac run=20250612-153012-042-3fa9c1 target=win-1 port=62286""`,
    );
  });

  it("kill command - a process id that is not a positive safe integer is refused", () => {
    for (const pid of [0, -1, -4242, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 53])
      refused(() => killServiceCommand(pid, "sumac run=r target=t port=1"), String(pid));
    assert.doesNotThrow(() => killServiceCommand(1, "sumac run=r target=t port=1"));
    assert.doesNotThrow(() => killServiceCommand(2 ** 53 - 1, "sumac run=r target=t port=1"));
  });

  it("kill command - every unsafe character in the rule name is refused", () => {
    for (const bad of [...UNSAFE, "%"]) {
      refused(() => killServiceCommand(7, `sumac run=r target=t${bad} port=1`), JSON.stringify(bad));
      refused(() => killServiceCommand(7, `sumac run=r${bad}`), JSON.stringify(bad));
    }
    for (const rule of [" sumac run=r", "sumac run=r ", ""])
      refused(() => killServiceCommand(7, rule), JSON.stringify(rule));
  });

  it("service names - the agent's and the kill service's names give back their run", () => {
    assert.equal(agentServiceName(RUN, 3), `sumac-${RUN}-3`);
    assert.equal(killServiceName(RUN, 3), `sumac-${RUN}-3-kill`);
    assert.equal(runOfServiceName(agentServiceName(RUN, 3)), RUN);
    assert.equal(runOfServiceName(killServiceName(RUN, 0)), RUN);
    assert.equal(runOfServiceName(agentServiceName(RUN, 1234)), RUN);
  });

  it("service names - a name that is not sumac's run id and index gives no run", () => {
    for (const name of [
      "sumac-foo",
      "sumac-foo-1",
      `sumac-${RUN}`,
      `sumac-${RUN}-`,
      `sumac-${RUN}-x`,
      `sumac-${RUN}-1-kill-kill`,
      `sumac-${RUN}-1-stop`,
      `sumac-${RUN.toUpperCase()}-1`,
      `SUMAC-${RUN}-1`,
      `xsumac-${RUN}-1`,
      `sumac-${RUN}-1\n`,
      `sumac-${RUN}-1 `,
      `sumac-20250612-153012-42-3fa9c1-1`,
      `sumac-20250612-153012-042-3fa9c-1`,
      "Spooler",
      "",
    ])
      assert.equal(runOfServiceName(name), undefined, JSON.stringify(name));
  });

  it("service names - a run id that cannot go into a command line is refused", () => {
    refused(() => agentServiceName("r&calc", 1), "&");
    refused(() => killServiceName('r"x', 1), '"');
  });

  it("agent command - for any marker or run directory, the line is refused or carries it verbatim and safe", () => {
    const allowed = /^[A-Za-z0-9 ._:@=[\]$\\-]*$/;
    const alphabet = [..."aZ09 ._:@=[]$\\-", ...UNSAFE, "%", "é", "\u00a0", "\u2028", "+", ",", ";", "/"];
    const text = fc.oneof(
      fc.string(),
      fc.string({ unit: "binary" }),
      fc.string({ unit: fc.constantFrom(...alphabet), maxLength: 12 }),
      fc.string({ unit: fc.constantFrom(...alphabet), maxLength: 12 }).map((s) => `%SystemRoot%${s}`),
    );
    let accepted = 0;
    let rejected = 0;
    fc.assert(
      fc.property(text, fc.boolean(), (s, asMarker) => {
        const parts = asMarker ? { ...PARTS, marker: s } : { ...PARTS, runDir: s };
        let line: string;
        try {
          line = agentServiceCommand(parts);
        } catch (error) {
          assert.ok(error instanceof AgentStartError, String(error));
          rejected++;
          return;
        }
        accepted++;
        assert.equal(line, asMarker ? expectedLine(RUN_DIR, s) : expectedLine(s, MARKER));
        // The one variable allowed is %SystemRoot% at the start; the rest comes from the narrow set.
        const rest = s.startsWith("%SystemRoot%") ? s.slice("%SystemRoot%".length) : s;
        assert.match(rest, allowed);
        assert.equal(s.trim(), s);
        assert.notEqual(s, "");
      }),
      { numRuns: 1000 },
    );
    assert.ok(accepted > 50 && rejected > 50, `accepted ${accepted}, rejected ${rejected}`);
  });
});
